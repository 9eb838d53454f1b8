"""Feature cache: each (image set, feature spec + params) is computed once.

Stored with :class:`joblib.Memory` under ``$CLASSICFER_CACHE/features``
(default ``~/.cache/classicfer/features``). The key is a content hash of the
images (shape, dtype and bytes; or a caller-supplied key such as a dataset
manifest hash) plus the JSON of the feature spec and parameters, so a grid over
classifiers, a second ``fit`` or another process reuses the matrix. ``n_jobs``
is not part of the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def cache_root() -> Path:
    """``$CLASSICFER_CACHE`` or ``~/.cache/classicfer``."""
    env = os.environ.get("CLASSICFER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "classicfer"


def memory():
    """The :class:`joblib.Memory` of the feature cache."""
    from joblib import Memory

    return Memory(str(cache_root() / "features"), verbose=0)


def images_key(images) -> str:
    """Content hash of an image batch (shape, dtype, bytes)."""
    arr = np.ascontiguousarray(images)
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{arr.shape}|{arr.dtype}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def _describe(spec: str, params_json: str, key: str, images, n_jobs=None):
    from . import make_features

    params = json.loads(params_json)
    est = make_features(spec, params)
    if n_jobs is not None:
        _set_n_jobs(est, n_jobs)
    return np.asarray(est.transform(images), np.float32)


def _set_n_jobs(est, n_jobs):
    from sklearn.pipeline import FeatureUnion

    parts = est.transformer_list if isinstance(est, FeatureUnion) else [(None, est)]
    for _, p in parts:
        if "n_jobs" in p.get_params(deep=False):
            p.set_params(n_jobs=n_jobs)


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
        False computes without touching the cache.
    n_jobs : int, optional
        Processes for the extraction (not part of the cache key).
    """
    from . import feature_params, feature_spec_of
    from ._base import as_image_batch

    spec = feature_spec_of(transformer)
    params = feature_params(transformer)
    params_json = json.dumps(params, sort_keys=True)
    images = as_image_batch(images)
    if not cache:
        return _describe(spec, params_json, "", images, n_jobs)
    if key is None:
        key = images_key(images)
    func = memory().cache(_describe, ignore=["images", "n_jobs"])
    return func(spec, params_json, key, images, n_jobs)


def is_cached(transformer, images, *, key: str | None = None) -> bool:
    """Whether :func:`compute_features` would read these features from the cache."""
    from . import feature_params, feature_spec_of

    spec = feature_spec_of(transformer)
    params_json = json.dumps(feature_params(transformer), sort_keys=True)
    if key is None:
        key = images_key(images)
    func = memory().cache(_describe, ignore=["images", "n_jobs"])
    return func.check_call_in_cache(spec, params_json, key, None, None)
