"""Eye-line re-alignment of crops: the EyeAligner step ahead of the appearance descriptors."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest
from conftest import face_crop

from classicfer.exceptions import ConfigError
from classicfer.features import (
    DescriptorUnion,
    EyeAligner,
    HOGFeatures,
    align_crops,
    feature_alignment,
    feature_config,
    feature_params,
    features_from_config,
    make_features,
)
from classicfer.features._dlib import crop_landmarks


def _eye_line(crops):
    pts = crop_landmarks(crops)
    left, right = pts[:, 36:42].mean(1), pts[:, 42:48].mean(1)
    d = right - left
    return np.degrees(np.arctan2(d[:, 1], d[:, 0])), np.hypot(d[:, 0], d[:, 1])


@pytest.fixture(scope="module")
def tilted():
    rng = np.random.default_rng(0)
    return np.stack([face_crop(a, rng) for a in (-18, -9, 9, 18)])


def _count_predictor_passes(monkeypatch):
    from classicfer.features import _dlib

    calls = []
    real = _dlib._crop_landmarks
    monkeypatch.setattr(_dlib, "_crop_landmarks",
                        lambda c, side: calls.append(len(c)) or real(c, side))
    return calls


def test_align_levels_the_eyes_and_fixes_their_distance(tilted):
    before, _ = _eye_line(tilted)
    assert np.abs(before).min() > 6  # the fixture really is tilted
    for margin in (0.0, -0.1):
        out = align_crops(tilted, margin=margin)
        assert out.shape == tilted.shape and out.dtype == np.uint8
        roll, iod = _eye_line(out)
        assert np.abs(roll).max() < 4, roll
        expected = 48 * 0.45 / (1 + 2 * margin)
        assert np.allclose(iod, expected, rtol=0.15), (iod, expected)


def test_crops_without_a_face_are_left_as_they_are():
    blank = np.zeros((2, 48, 48), np.uint8)
    assert np.array_equal(align_crops(blank), blank)
    assert np.array_equal(EyeAligner().fit_transform(blank), blank)


def test_alignment_is_a_step_before_the_appearance_descriptors(tilted):
    union = make_features("hog+lbp+landmarks", {"align": "eyes", "align_margin": -0.05})
    assert isinstance(union, DescriptorUnion) and isinstance(union.aligner, EyeAligner)
    assert union.aligner.margin == -0.05
    assert all("align" not in p and "align_margin" not in p
               for p in feature_params(union).values())  # not a descriptor parameter
    assert feature_alignment(union) == {"method": "eyes", "margin": -0.05,
                                        "parts": ["hog", "lbp"]}  # landmarks: crops as given
    out = union.transform(tilted)
    aligned = align_crops(tilted, margin=-0.05)
    appearance = make_features("hog+lbp").transform(aligned)
    expected = np.hstack([appearance, make_features("landmarks").transform(tilted)])
    np.testing.assert_array_equal(out, expected)
    assert not np.allclose(appearance, make_features("hog+lbp").transform(tilted))
    np.testing.assert_array_equal(union.fit_transform(tilted), out)
    # the sidecar's features block rebuilds the same step
    config = json.loads(json.dumps(feature_config(union)))
    assert config["align"]["parts"] == ["hog", "lbp"]
    np.testing.assert_array_equal(features_from_config(config).transform(tilted), out)
    # one descriptor with alignment is the same step
    hog = make_features("hog", {"align": "eyes"})
    np.testing.assert_array_equal(hog.transform(tilted),
                                  make_features("hog").transform(align_crops(tilted)))


def test_descriptor_level_align_of_older_models_builds_the_step(tilted):
    """Sidecars written when descriptors aligned crops themselves still load alike."""
    new = make_features("hog+lbp+landmarks", {"align": "eyes", "align_margin": -0.05})
    legacy = {name: dict(p) for name, p in feature_params(new).items()}
    for name in ("hog", "lbp"):
        legacy[name].update(align="eyes", align_margin=-0.05)
    old = make_features("hog+lbp+landmarks", legacy)
    assert feature_config(old) == feature_config(new)
    np.testing.assert_array_equal(old.transform(tilted), new.transform(tilted))
    # one descriptor aligned, the other not: the step runs before that one only
    legacy["lbp"].update(align="none")
    one = make_features("hog+lbp+landmarks", legacy)
    assert feature_alignment(one)["parts"] == ["hog"]
    np.testing.assert_array_equal(
        one.transform(tilted)[:, :1764], make_features("hog").transform(align_crops(
            tilted, margin=-0.05)))
    np.testing.assert_array_equal(one.transform(tilted)[:, 1764:],
                                  make_features("lbp+landmarks").transform(tilted))
    # without alignment there is no step at all
    plain = {name: {**p, "align": "none", "align_margin": 0.0}
             for name, p in feature_params(make_features("hog+lbp")).items()}
    assert feature_alignment(make_features("hog+lbp", plain)) is None


@pytest.mark.parametrize("params", [{"align": "nose"}, {"align_margin": 5},
                                    {"hog__align": True},
                                    {"hog__align": "eyes", "lbp__align": "eyes",
                                     "hog__align_margin": 0.0, "lbp__align_margin": -0.1}])
def test_bad_align_values_name_the_parameter(params):
    with pytest.raises(ConfigError, match="align"):
        make_features("hog+lbp", params)


def test_alignment_needs_a_descriptor_of_aligned_crops():
    with pytest.raises(ConfigError, match="align: no descriptor of landmarks"):
        make_features("landmarks", {"align": "eyes"})
    with pytest.raises(ConfigError, match="landmarks__align: landmarks finds the landmarks"):
        make_features("hog+landmarks", {"landmarks__align": "eyes"})
    # embedding keeps its own align parameter
    emb = make_features("embedding", {"align": "landmarks"})
    assert emb.align == "landmarks" and feature_alignment(emb) is None


@pytest.mark.parametrize("block", ["eyes", {"method": "mouth"}, {"margin": 3},
                                   {"parts": ["landmarks"]}, {"parts": ["lbp"]}])
def test_bad_align_block_is_refused(block):
    with pytest.raises(ConfigError, match="features.align"):
        make_features("hog+landmarks", {}, align=block)


def test_one_landmark_pass_per_call_and_nothing_kept_between_calls(tilted, monkeypatch):
    """Aligner and landmarks share the predictor within one call; no memo outlives it."""
    from classicfer.features import _dlib

    calls = _count_predictor_passes(monkeypatch)
    crop = tilted[:1]
    union = make_features("hog+lbp+landmarks", {"align": "eyes"})
    first = union.transform(crop)
    assert calls == [1]  # align (hog, lbp) and landmarks read the same points
    assert _dlib._SHARED.get() is None
    np.testing.assert_array_equal(union.transform(crop.copy()), first)
    assert calls == [1, 1]  # a new call finds the points again: no process-wide memo
    align_crops(tilted)
    align_crops(tilted)
    assert calls == [1, 1, 4, 4]
    pts = crop_landmarks(crop)
    pts += 100  # callers get a copy
    assert not np.array_equal(crop_landmarks(crop), pts)


def test_make_pipeline_puts_the_step_in_the_feature_step():
    from classicfer.pipeline import make_pipeline

    pipe = make_pipeline("hog+landmarks", "logreg", {"align": "eyes", "align_margin": -0.1,
                                                     "C": 0.5})
    feat = pipe.named_steps["features"]
    assert feature_alignment(feat) == {"method": "eyes", "margin": -0.1, "parts": ["hog"]}
    assert pipe.get_params()["features__aligner__margin"] == -0.1
    assert pipe.get_params()["classifier__C"] == 0.5
    with pytest.raises(ConfigError, match="align"):
        make_pipeline(HOGFeatures(), "logreg", {"align": "eyes"})


def test_pickled_descriptor_that_aligned_itself_is_refused():
    state = HOGFeatures().__getstate__()
    fresh = pickle.loads(pickle.dumps(HOGFeatures()))
    assert "align" not in vars(fresh)
    old = HOGFeatures.__new__(HOGFeatures)
    old.__setstate__({**state, "align": "none", "align_margin": 0.0})  # harmless
    assert "align" not in vars(old)
    with pytest.raises(ConfigError, match="alignment is now its own step"):
        HOGFeatures.__new__(HOGFeatures).__setstate__({**state, "align": "eyes",
                                                       "align_margin": 0.0})


def test_deployed_models_old_and_new_sidecars_align_alike(tmp_path, tilted, monkeypatch):
    from classicfer.export import save_model
    from classicfer.pipeline import fit_pipeline, make_pipeline
    from classicfer.runtime import load_model

    X = np.concatenate([tilted, tilted[:, :, ::-1]] * 2)
    y = np.array(["happy", "sad"] * 8)
    pipe = fit_pipeline(make_pipeline("hog+landmarks", "logreg",
                                      {"align": "eyes", "align_margin": -0.05}), X, y,
                        cache=False)
    out = save_model(pipe, tmp_path / "m", dataset_name="tiny", check_images=X)
    meta = json.loads((out / "model.json").read_text())
    assert meta["features"]["align"] == {"method": "eyes", "margin": -0.05, "parts": ["hog"]}
    assert "align" not in meta["features"]["params"]["hog"]
    ref = pipe.named_steps["features"].transform(X)
    np.testing.assert_array_equal(load_model(out, cache=False).features(X), ref)
    # the sidecar as classicfer wrote it when descriptors aligned crops themselves
    legacy = dict(meta)
    feats = legacy.pop("features")
    params = {k: dict(v) for k, v in feats["params"].items()}
    params["hog"].update(align="eyes", align_margin=-0.05)
    legacy["features"] = {"spec": feats["spec"], "params": params}
    (out / "model.json").write_text(json.dumps(legacy))
    model = load_model(out, cache=False)
    np.testing.assert_array_equal(model.features(X), ref)
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), atol=1e-4)
    # a failing import of the feature code is raised as it is, not disguised as a bad model
    monkeypatch.setitem(sys.modules, "classicfer.features", None)
    with pytest.raises(ImportError, match="classicfer.features"):
        load_model(out, cache=False).features(X)
