"""Eye-line re-alignment of crops before the appearance descriptors (align='eyes')."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_crop

from classicfer.exceptions import ConfigError
from classicfer.features import align_crops, feature_params, make_features
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


def test_large_batches_are_memoised_by_content(tilted, monkeypatch):
    from classicfer.features import _align

    monkeypatch.setattr(_align, "_MEMO_MIN_BATCH", 2)
    a = align_crops(tilted, margin=0.0)
    assert align_crops(tilted.copy(), margin=0.0) is a
    assert align_crops(tilted, margin=0.05) is not a
    assert not a.flags.writeable
    for i in range(2 * _align._MEMO_ENTRIES):  # bounded: old batches are dropped
        align_crops(np.roll(tilted, i + 1, axis=2)[:2], margin=0.0)
    assert len(_align._MEMO) <= _align._MEMO_ENTRIES


def test_small_batches_are_kept_in_a_small_bounded_memo(tilted):
    from classicfer.features import _align

    before = len(_align._MEMO)
    one = align_crops(tilted[:1], margin=0.0)
    assert len(_align._MEMO) == before
    assert align_crops(tilted[:1].copy(), margin=0.0) is one
    for i in range(3 * _align._MEMO_ENTRIES):
        align_crops(np.roll(tilted[:1], i + 1, axis=1), margin=0.0)
    assert len(_align._SMALL) <= _align._MEMO_ENTRIES


def test_align_is_a_descriptor_parameter(tilted):
    union = make_features("hog+lbp+landmarks", {"align": "eyes", "align_margin": -0.05})
    params = feature_params(union)
    assert params["hog"]["align"] == params["lbp"]["align"] == "eyes"
    assert params["hog"]["align_margin"] == -0.05
    assert "align" not in params["landmarks"]  # geometry is already pose-normalised
    rebuilt = make_features("hog+lbp+landmarks", params)
    assert np.allclose(rebuilt.transform(tilted), union.transform(tilted))
    plain = make_features("hog").transform(tilted)
    aligned = make_features("hog", {"align": "eyes"}).transform(tilted)
    assert aligned.shape == plain.shape and not np.allclose(aligned, plain)
    # same as describing the re-cut crops
    assert np.allclose(aligned, make_features("hog").transform(align_crops(tilted)))


@pytest.mark.parametrize("params", [{"align": "nose"}, {"align_margin": 5},
                                    {"hog__align": True}])
def test_bad_align_values_name_the_parameter(params):
    with pytest.raises(ConfigError, match="align"):
        make_features("hog+lbp", params)


def test_small_batches_share_one_landmark_pass(tilted, monkeypatch):
    """align='eyes' descriptors + landmarks on one kiosk crop: one shape-predictor pass."""
    from classicfer.features import _dlib

    calls = []
    real = _dlib._crop_landmarks
    monkeypatch.setattr(_dlib, "_crop_landmarks",
                        lambda c, side: calls.append(len(c)) or real(c, side))
    monkeypatch.setattr(_dlib, "_RECENT", type(_dlib._RECENT)())
    crop = tilted[:1]
    union = make_features("hog+lbp+landmarks", {"align": "eyes"})
    first = union.transform(crop)
    assert calls == [1]  # align (hog, lbp) and landmarks reuse the same points
    assert np.array_equal(union.transform(crop.copy()), first)
    assert calls == [1]
    pts = _dlib.crop_landmarks(crop)
    pts += 100  # callers get a copy
    assert not np.array_equal(_dlib.crop_landmarks(crop), pts)
