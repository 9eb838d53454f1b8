"""Descriptors: HOG against scikit-image, LBP histograms, registry, parameters, cache."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

from classicfer.exceptions import ConfigError
from classicfer.features import (
    FEATURES,
    HOGFeatures,
    LBPFeatures,
    feature_params,
    feature_spec_of,
    hog_descriptors,
    lbp_histograms,
    lbp_n_bins,
    make_features,
)
from classicfer.features.cache import compute_features, is_cached


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 48, 48)).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("ppc,cpb,norm", [(6, 2, "L2-Hys"), (8, 3, "L1"), (5, 2, "L2"),
                                          ((4, 6), (1, 2), "L1-sqrt")])
def test_hog_matches_skimage(crops, dtype, ppc, cpb, norm):
    from skimage.feature import hog

    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    imgs = crops.astype(dtype)
    ref = np.stack([hog(im, 9, pixels_per_cell=pair(ppc), cells_per_block=pair(cpb),
                        block_norm=norm) for im in imgs])
    got = hog_descriptors(imgs, 9, ppc, cpb, block_norm=norm)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("size,ppc,cpb,orient", [(48, 6, 2, 9), (48, 8, 2, 12), (40, 5, 3, 6)])
def test_hog_size_formula(size, ppc, cpb, orient):
    est = HOGFeatures(orientations=orient, pixels_per_cell=ppc, cells_per_block=cpb)
    out = est.fit_transform(np.zeros((2, size, size), np.uint8))
    n_blocks = size // ppc - cpb + 1
    assert out.shape == (2, n_blocks * n_blocks * cpb * cpb * orient)
    assert len(est.get_feature_names_out()) == out.shape[1]


def test_hog_too_small():
    with pytest.raises(ValueError, match="too small"):
        HOGFeatures(pixels_per_cell=8, cells_per_block=3).fit(np.zeros((1, 20, 20), np.uint8))


@pytest.mark.parametrize("method,bins", [("nri_uniform", 59), ("uniform", 10),
                                         ("default", 256), ("ror", 256)])
def test_lbp_histograms(crops, method, bins):
    from skimage.feature import local_binary_pattern

    assert lbp_n_bins(8, method) == bins
    got = lbp_histograms(crops, 8, 1.0, grid=(6, 6), method=method)
    assert got.shape == (len(crops), 36 * bins)
    cells = got.reshape(len(crops), 36, bins)
    np.testing.assert_allclose(cells.sum(-1), 1.0, rtol=1e-5)
    # the top-left cell of image 0 is the histogram of the codes in its 8x8 window
    codes = local_binary_pattern(crops[0], 8, 1.0, method)[:8, :8].astype(int)
    ref = np.bincount(codes.ravel(), minlength=bins) / 64
    np.testing.assert_allclose(cells[0, 0], ref, rtol=1e-6)


def test_lbp_uneven_grid_tiles_whole_crop():
    out = LBPFeatures(grid=(5, 7), method="uniform").fit_transform(
        np.full((1, 48, 48), 7, np.uint8))
    assert out.shape == (1, 35 * 10)


def test_lbp_too_small():
    with pytest.raises(ValueError, match="too small"):
        LBPFeatures(grid=10).fit(np.zeros((1, 8, 8), np.uint8))


def test_parallel_equals_serial():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (600, 24, 24)).astype(np.uint8)
    est = HOGFeatures(pixels_per_cell=4)
    a = est.transform(X)
    b = clone(est).set_params(n_jobs=2).transform(X)
    np.testing.assert_array_equal(a, b)


def test_flattened_square_and_float_inputs(crops):
    est = HOGFeatures()
    a = est.transform(crops)
    np.testing.assert_allclose(est.transform(crops.reshape(len(crops), -1)), a)
    np.testing.assert_allclose(est.transform(crops / 255.0), a, atol=1e-5)


@pytest.mark.parametrize("bad,msg", [(np.zeros((3, 10)), "not a square"),
                                     (np.zeros((0, 48, 48)), "0 images"),
                                     (np.full((1, 48, 48), np.nan), "NaN")])
def test_bad_inputs(bad, msg):
    with pytest.raises(ValueError, match=msg):
        HOGFeatures().transform(bad)


def test_make_features_union_and_params():
    f = make_features("hog+lbp", {"orientations": 12, "lbp__P": 4, "grid": 4})
    assert isinstance(f, FeatureUnion)
    assert [n for n, _ in f.transformer_list] == ["hog", "lbp"]
    assert f.get_params()["hog__orientations"] == 12
    assert f.get_params()["lbp__P"] == 4 and f.get_params()["lbp__grid"] == 4
    assert feature_spec_of(f) == "hog+lbp"
    # round trip through the JSON form the runtime stores
    import json

    params = json.loads(json.dumps(feature_params(f)))
    g = make_features("hog+lbp", params)
    X = np.random.default_rng(2).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    np.testing.assert_array_equal(f.transform(X), g.transform(X))
    assert f.transform(X).shape[1] == len(f.get_feature_names_out())


def test_unknown_feature_lists_valid():
    with pytest.raises(ConfigError, match="unknown feature 'hgo'; choose from hog, lbp"):
        make_features("hgo+lbp")


@pytest.mark.parametrize("params,msg", [({"colour": 3}, "'colour' is not a parameter"),
                                        ({"hog__P": 8}, "hog has no parameter 'P'"),
                                        ({"orientations": 0}, "orientations"),
                                        ({"method": "fancy"}, "method")])
def test_bad_feature_params(params, msg):
    with pytest.raises(ConfigError, match=msg):
        make_features("hog+lbp", params)


def test_registry_names():
    assert {"hog", "lbp", "landmarks", "embedding"} <= set(FEATURES)


def test_cache_computes_once(monkeypatch, tmp_path, crops):
    monkeypatch.setenv("CLASSICFER_CACHE", str(tmp_path))
    f = make_features("hog")
    assert not is_cached(f, crops)
    a = compute_features(f, crops)
    assert is_cached(f, crops)
    assert (tmp_path / "features").is_dir()
    calls = []
    monkeypatch.setattr(HOGFeatures, "_describe_batch",
                        lambda self, x: calls.append(1) or np.zeros((len(x), 1)))
    b = compute_features(make_features("hog"), crops)
    np.testing.assert_array_equal(a, b)
    assert calls == []
    # other parameters or other images are another entry
    assert not is_cached(make_features("hog", {"orientations": 8}), crops)
    assert not is_cached(f, crops[::-1])


def test_cache_off_writes_no_feature_cache(monkeypatch, tmp_path, crops):
    """CLASSICFER_CACHE=off disables the feature cache as it does the dataset cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLASSICFER_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    f = make_features("hog")
    a = compute_features(f, crops)
    np.testing.assert_array_equal(a, f.transform(crops))
    assert not is_cached(f, crops)
    assert list(tmp_path.iterdir()) == []  # no ./off/features, nothing under XDG either


def test_feature_cache_honours_xdg_cache_home(monkeypatch, tmp_path, crops):
    monkeypatch.delenv("CLASSICFER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    f = make_features("hog")
    compute_features(f, crops)
    assert is_cached(f, crops)
    assert (tmp_path / "xdg" / "classicfer" / "features").is_dir()
