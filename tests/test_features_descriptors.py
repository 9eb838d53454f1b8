"""Gabor bank, multi-scale LBP, region HOG and BoVW: shapes, determinism, rebuilding, tiny
fits (scikit-learn's checks for every descriptor are in test_common).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from classicfer.exceptions import ConfigError, ModelError
from classicfer.features import (
    FEATURES,
    BoVWFeatures,
    GaborFeatures,
    MultiLBPFeatures,
    feature_params,
    make_features,
)


@pytest.mark.parametrize("name", ["gabor", "multilbp", "regionhog", "bovw"])
def test_registered_shape_deterministic_and_rebuildable(name):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    est = make_features(name)
    assert type(est) is FEATURES[name]
    F = est.fit_transform(X)
    assert F.shape == (6, len(est.get_feature_names_out()))
    assert F.dtype == np.float32 and np.isfinite(F).all()
    perm = rng.permutation(6)
    np.testing.assert_allclose(est.transform(X[perm]), F[perm], rtol=1e-6)
    # stateless: rebuilt from its JSON parameters it gives the same matrix
    params = json.loads(json.dumps(feature_params(est)))
    np.testing.assert_allclose(make_features(name, params).transform(X), F, rtol=1e-6)
    # informative: a flat crop and a textured crop differ
    flat = np.full((1, 48, 48), 128, np.uint8)
    assert not np.allclose(est.transform(flat), F[:1])


def test_gabor_flat_crop_gives_zero_response():
    F = GaborFeatures().transform(np.full((2, 48, 48), 77, np.uint8))
    assert np.allclose(F, 0, atol=1e-3)


def test_multilbp_sqrt_is_hellinger_map():
    X = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    raw = MultiLBPFeatures(sqrt=False, grid=2).transform(X)
    np.testing.assert_allclose(MultiLBPFeatures(sqrt=True, grid=2).transform(X) ** 2, raw,
                               rtol=1e-5, atol=1e-7)
    # each cell histogram of each scale sums to 1
    assert np.allclose(raw.sum(1), 2 * 2 * 3)


@pytest.mark.parametrize("bad", [
    ("gabor", {"wavelengths": []}), ("gabor", {"wavelengths": [1.0]}),
    ("multilbp", {"scales": [[0, 1]]}), ("multilbp", {"scales": [[8, -1]]}),
    ("multilbp", {"chi2_steps": 2}), ("multilbp", {"chi2_steps": 4, "sqrt": False}),
    ("regionhog", {"regions": {"eyes": [0.6, 0.2, 0, 1]}}),
    ("bovw", {"pyramid": []}), ("bovw", {"pyramid": [0, 2]}), ("bovw", {"soft": 0}),
    ("bovw", {"vocabulary": "imagenet"}),
])
def test_bad_params_raise_config_error(bad):
    name, params = bad
    with pytest.raises(ConfigError, match=name):
        make_features(name, params)


def test_tiny_fit_pipeline_learns(tiny_ckplus48):
    """Each new descriptor in a real pipeline fits on the tiny CK+48 and beats chance on train."""
    from classicfer.datasets import load_dataset
    from classicfer.pipeline import make_pipeline

    ds = load_dataset(tiny_ckplus48)
    for name in ("gabor", "multilbp", "regionhog", "bovw", "hog+gabor+multilbp+regionhog"):
        pipe = make_pipeline(name, "logreg", {"pca": 20}).fit(ds.images, ds.labels)
        assert (pipe.predict(ds.images) == ds.labels).mean() > 2 / len(ds.classes)
        assert clone(pipe).get_params(deep=False).keys() == pipe.get_params(deep=False).keys()


def test_bovw_dense_descriptors_are_skimage_hog_blocks():
    from skimage.feature import hog

    from classicfer.features import dense_descriptors

    X = np.random.default_rng(2).integers(0, 256, (2, 40, 48), dtype=np.uint8)
    D = dense_descriptors(X, cell=4)
    ref = hog(X[1], orientations=8, pixels_per_cell=(4, 4), cells_per_block=(4, 4),
              block_norm="L2-Hys", feature_vector=False)
    assert D.shape == (2, 7 * 9, 128)
    np.testing.assert_allclose(D[1], ref.reshape(7 * 9, 128), atol=1e-5)


def test_bovw_hard_assignment_counts_nearest_words():
    from classicfer.features._bovw import (
        _positions,
        bovw_encode,
        dense_descriptors,
        load_vocabulary,
    )

    X = np.random.default_rng(3).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    words, scale = load_vocabulary("fer2013-k64")
    F = BoVWFeatures(soft=1, pyramid=(1, 2)).transform(X)
    assert F.shape == (3, 64 * 5)
    D = dense_descriptors(X)
    nearest = ((D[:, :, None, :] - words[None, None]) ** 2).sum(-1).argmin(-1)
    for i in range(3):
        counts = np.bincount(nearest[i], minlength=64) / D.shape[1]
        np.testing.assert_allclose(F[i, :64] ** 2, counts, atol=1e-5)
    # every pyramid cell is a Hellinger-mapped histogram: squares sum to one
    cells = (F ** 2).reshape(3, 5, 64).sum(-1)
    np.testing.assert_allclose(cells, 1.0, atol=1e-5)
    # soft assignment spreads mass but keeps each cell normalised
    soft = bovw_encode(D, _positions((48, 48), 4), words, scale, pyramid=(1,), soft=5)
    assert ((soft ** 2).sum(1) == pytest.approx(1.0, abs=1e-5))
    assert (soft > 0).sum() > (F[:, :64] > 0).sum()


def test_bovw_vocabulary_checksum_is_verified():
    import hashlib
    import io

    from classicfer.features._bovw import read_vocabulary

    buf = io.BytesIO()
    np.save(buf, np.ones((4, 128), np.float32))
    raw = buf.getvalue()
    meta = {"sha256": hashlib.sha256(raw).hexdigest(), "scale": 0.5}
    words, scale = read_vocabulary(raw, meta)
    assert words.shape == (4, 128) and scale == 0.5
    damaged = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(ModelError, match="sha256"):
        read_vocabulary(damaged, meta)
    # an object array (a pickle inside .npy) is refused even with a matching checksum
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    evil = buf.getvalue()
    with pytest.raises(ModelError, match="not a numeric"):
        read_vocabulary(evil, {"sha256": hashlib.sha256(evil).hexdigest(), "scale": 1.0})


def test_multilbp_chi2_map_approximates_the_chi2_kernel():
    from sklearn.metrics.pairwise import additive_chi2_kernel

    X = np.random.default_rng(4).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    raw = MultiLBPFeatures(sqrt=False, grid=2).transform(X).astype(np.float64)
    mapped = MultiLBPFeatures(sqrt=False, chi2_steps=2, grid=2).transform(X)
    assert mapped.shape == (4, 3 * raw.shape[1])
    assert mapped.shape[1] == len(MultiLBPFeatures(sqrt=False, chi2_steps=2, grid=2)
                                  .fit(X).get_feature_names_out())
    # chi2(x, y) = sum 2 x y / (x + y); additive_chi2_kernel is -sum (x - y)^2 / (x + y)
    exact = (raw.sum(1)[:, None] + raw.sum(1)[None, :] + additive_chi2_kernel(raw)) / 2
    # the sampled map reproduces the kernel up to one global factor (0.9 at 2 steps),
    # which the scaler in front of every classifier removes
    ratio = (mapped @ mapped.T) / exact
    assert 0.85 < ratio.mean() < 1.0 and ratio.std() / ratio.mean() < 0.01
