"""Feature cache: each (image set, feature step) is computed once.

Stored with :class:`joblib.Memory` under ``<cache root>/features``, the cache root
being :func:`classicfer.config.cache_root` (``$CLASSICFER_CACHE``, else
``$XDG_CACHE_HOME/classicfer`` or ``~/.cache/classicfer``); ``CLASSICFER_CACHE=off``
computes every time and writes nothing. The key is a content hash of the
images (shape, dtype and bytes; or a caller-supplied key such as a dataset
manifest hash) plus the JSON of the feature step (:func:`~classicfer.features.feature_config`:
spec, parameters, alignment), so a grid over classifiers, a second ``fit`` or
another process reuses the matrix. ``n_jobs`` is not part of the key.
"""

from __future__ import annotations

import json

import numpy as np

from ..config import cache_root
from ._base import images_key

__all__ = ["cache_root", "compute_features", "images_key", "is_cached", "memory"]


def memory():
    """The :class:`joblib.Memory` of the feature cache, or None when caching is off."""
    from joblib import Memory

    root = cache_root()
    return None if root is None else Memory(str(root / "features"), verbose=0)


def _describe(config_json: str, key: str, images, n_jobs=None):
    from . import features_from_config

    est = features_from_config(json.loads(config_json))
    if n_jobs is not None:
        _set_n_jobs(est, n_jobs)
    return np.asarray(est.transform(images), np.float32)


def _set_n_jobs(est, n_jobs):
    from sklearn.pipeline import FeatureUnion

    parts = [p for _, p in est.transformer_list] if isinstance(est, FeatureUnion) else [est]
    aligner = getattr(est, "aligner", None)
    for p in [*parts, *([aligner] if aligner is not None else [])]:
        if "n_jobs" in p.get_params(deep=False):
            p.set_params(n_jobs=n_jobs)


def _config_json(transformer) -> str:
    from . import feature_config

    return json.dumps(feature_config(transformer), sort_keys=True)


def compute_features(transformer, images, *, key: str | None = None, cache: bool = True,
                     n_jobs=None) -> np.ndarray:
    """``transformer.transform(images)``, read from / written to the cache.

    Parameters
    ----------
    transformer : estimator from :func:`classicfer.features.make_features`
    images : (N, H, W) uint8 ndarray
    key : str, optional
        Identity of ``images`` (e.g. a dataset manifest hash + split); by default
        a hash of the array content.
    cache : bool
        False computes without touching the cache (as ``CLASSICFER_CACHE=off`` does).
    n_jobs : int, optional
        Processes for the extraction (not part of the cache key).
    """
    from ._base import as_image_batch

    config_json = _config_json(transformer)
    images = as_image_batch(images)
    mem = memory() if cache else None
    if mem is None:
        return _describe(config_json, "", images, n_jobs)
    if key is None:
        key = images_key(images)
    func = mem.cache(_describe, ignore=["images", "n_jobs"])
    return func(config_json, key, images, n_jobs)


def is_cached(transformer, images, *, key: str | None = None) -> bool:
    """Whether :func:`compute_features` would read these features from the cache."""
    mem = memory()
    if mem is None:
        return False
    if key is None:
        key = images_key(images)
    func = mem.cache(_describe, ignore=["images", "n_jobs"])
    return func.check_call_in_cache(_config_json(transformer), key, None, None)
