"""Fit a pipeline with its features from the cache."""

from __future__ import annotations

import time

import numpy as np

from ..exceptions import DataError
from ._build import head_of


def check_training_labels(y, *, min_per_class: int = 3) -> None:
    """Refuse a training set with fewer than two classes or a near-empty class.

    Raises
    ------
    DataError
        An empty set, one class, or a class with fewer than ``min_per_class`` images.
    """
    y = np.asarray(y)
    if y.size == 0:
        raise DataError("the training set is empty; check --data and the split")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the training set has one class ({str(classes[0])!r}); a classifier needs "
                        "at least two")
    small = [f"{str(c)!r} ({n})" for c, n in zip(classes, counts, strict=True) if n < min_per_class]
    if small:
        raise DataError(f"classes with fewer than {min_per_class} training images: "
                        f"{', '.join(small)}; add images or drop the class")


def _calibration_jobs(pipeline, n_jobs) -> None:
    """Let a calibrated classifier fit its folds in ``n_jobs`` processes.

    Same result, measured 2x faster for linear-svm on FER-2013 with 2 cores.
    """
    from sklearn.calibration import CalibratedClassifierCV

    clf = pipeline.named_steps.get("classifier")
    if n_jobs not in (None, 1) and isinstance(clf, CalibratedClassifierCV) and clf.n_jobs is None:
        clf.set_params(n_jobs=n_jobs)


def fit_pipeline(pipeline, images, y, *, cache: bool = True, key: str | None = None,
                 n_jobs=None, extra_images=None, extra_y=None):
    """Fit ``pipeline`` with features from the cache (computed once per images + params).

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        From :func:`~classicfer.pipeline.make_pipeline`.
    images : (N, H, W) uint8 ndarray
        Training crops.
    y : (N,) array-like of str
        Their labels.
    cache : bool
        Read and write the feature cache.
    key : str, optional
        Cache key of ``images`` (skips hashing them).
    n_jobs : int, optional
        Processes for feature extraction and calibration folds.
    extra_images, extra_y : optional
        More training crops (e.g. horizontal flips), appended after feature extraction
        (their features are cached too).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``pipeline``, fitted; ``pipeline.fit_info_`` holds timings.
    """
    from ..features.cache import compute_features, is_cached

    y = np.asarray(y)
    check_training_labels(y)
    feat = pipeline.named_steps["features"]
    t0 = time.perf_counter()
    hit = cache and is_cached(feat, images, key=key)
    F = compute_features(feat, images, key=key, cache=cache, n_jobs=n_jobs)
    if extra_images is not None:
        F2 = compute_features(feat, extra_images, cache=cache, n_jobs=n_jobs)
        F = np.concatenate([F, F2])
        y = np.concatenate([y, np.asarray(extra_y)])
    t1 = time.perf_counter()
    _calibration_jobs(pipeline, n_jobs)
    head_of(pipeline).fit(F, y)
    t2 = time.perf_counter()
    pipeline.fit_info_ = {"feature_seconds": round(t1 - t0, 3), "fit_seconds": round(t2 - t1, 3),
                          "features_from_cache": bool(hit), "n_train": len(y),
                          "n_features": int(F.shape[1])}
    return pipeline
