"""Base class of the image transformers (descriptors and the eye-alignment step)."""

from __future__ import annotations

import functools
import hashlib
import math
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..exceptions import ConfigError


def images_key(images) -> str:
    """Content hash of an image batch (shape, dtype, bytes)."""
    arr = np.ascontiguousarray(images)
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{arr.shape}|{arr.dtype}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def as_image_batch(X, *, name: str = "X") -> np.ndarray:
    """Return ``X`` as an (N, H, W) uint8 array.

    Accepts an (N, H, W) array, a list of equal-size (H, W) arrays, or an
    (N, H*W) array of flattened square images (what sklearn's common tests and
    some tabular pipelines pass).

    Raises
    ------
    ValueError
        For any other shape, for non-finite values, or for an empty batch.
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise ValueError(f"{name}: sparse input is not supported; pass dense (N, H, W) crops")
    if isinstance(X, (list, tuple)):
        shapes = {np.shape(x) for x in X}
        if len(shapes) > 1:
            raise ValueError(f"{name}: images have different sizes {sorted(shapes)[:3]}; "
                             "resize the crops to one size first")
    arr = np.asarray(X)
    if arr.dtype == object:
        raise ValueError(f"{name}: expected a numeric image array, got dtype=object")
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1] or side == 0:
            raise ValueError(f"{name}: expected (N, H, W) face crops or (N, H*W) flattened square "
                             f"crops; got shape {arr.shape} (2-D with {arr.shape[1]} columns, "
                             "not a square number)")
        arr = arr.reshape(arr.shape[0], side, side)
    elif arr.ndim == 4 and arr.shape[-1] in (3, 4):
        # colour crops: ITU-R 601 luma, as OpenCV and Pillow do
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    elif arr.ndim != 3:
        raise ValueError(f"{name}: expected (N, H, W) face crops; got an array of shape "
                         f"{arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: got 0 images; at least one is required")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: Complex data not supported; pass real-valued pixels")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise ValueError(f"{name}: expected numeric pixels, got dtype={arr.dtype}")
        farr = arr.astype(np.float64)
        if not np.isfinite(farr).all():
            raise ValueError(f"{name}: contains NaN or infinity")
        # floats in [0, 1] are scaled; anything else is clipped to the uint8 range
        if np.issubdtype(arr.dtype, np.floating) and farr.size and farr.min() >= 0 \
                and farr.max() <= 1.0:
            farr = farr * 255.0
        arr = np.clip(np.rint(farr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


@functools.cache
def _param_names(cls) -> tuple:
    return tuple(cls._get_param_names())


class ImageTransformer(TransformerMixin, BaseEstimator):
    """Shared behaviour of the transformers in :mod:`classicfer.features`.

    Subclasses store their parameters in ``__init__``, declare their constraints in
    ``_parameter_constraints`` (those of the shared parameters, :attr:`_shared_constraints`,
    are added for them), implement ``_describe_batch(images) -> (N, n_features) float32``
    and ``_n_features(shape)``, and may override ``_check_more_params`` and
    ``_feature_prefix``.

    The transformers are stateless: ``fit`` validates and records the image
    size, nothing is learned, and ``transform`` works without ``fit`` (like
    ``FunctionTransformer``), so a deployed model can rebuild them from their
    JSON parameters alone.
    """

    #: minimum (H, W) a subclass accepts; checked in ``_check_shape``
    _min_size = (8, 8)
    #: constraints of the parameters several transformers share, declared here once: a
    #: subclass taking one of them gets its constraint in ``_parameter_constraints``
    _shared_constraints: ClassVar[dict] = {"n_jobs": [Integral, None]}
    #: whether the eye-alignment step (:class:`~classicfer.features.EyeAligner`) runs
    #: before this descriptor when alignment is asked for; False for the descriptors that
    #: find the face's landmarks themselves
    takes_aligned_crops: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = cls._get_param_names()
        shared = {k: v for k, v in ImageTransformer._shared_constraints.items() if k in names}
        cls._parameter_constraints = {**getattr(cls, "_parameter_constraints", {}), **shared}

    def __setstate__(self, state):
        # descriptors pickled when they aligned crops themselves carry align/align_margin
        if "align" not in _param_names(type(self)):
            legacy = state.pop("align", "none")
            state.pop("align_margin", None)
            if legacy != "none":
                raise ConfigError(
                    f"this {type(self).__name__} was pickled by an older classicfer that "
                    f"aligned crops inside the descriptor (align={legacy!r}); alignment is now "
                    "its own step: rebuild the pipeline (make_pipeline(..., {'align': 'eyes'})) "
                    "and fit it again")
        super().__setstate__(state)

    def __sklearn_is_fitted__(self):
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # any pixel dtype -> float32
        return tags

    # -- sklearn API -------------------------------------------------------
    def fit(self, X, y=None):
        """Validate ``X`` and the parameters; learn nothing. Returns ``self``."""
        self._check_params()
        # transform need not validate these values again (and so leaves __dict__ unchanged)
        self._checked_params = self._param_values()
        images = as_image_batch(X)
        self._check_shape(images.shape[1:])
        self.image_shape_ = images.shape[1:]
        self.n_features_out_ = self._n_features(self.image_shape_)
        return self

    def transform(self, X):
        """Describe each crop: (N, H, W) uint8 -> (N, n_features) float32."""
        # validate once per parameter values, not on every call (a kiosk calls this per
        # crop, and sklearn's validation introspects the signature each time)
        snapshot = self._param_values()
        if getattr(self, "_checked_params", None) != snapshot:
            self._check_params()
            self._checked_params = snapshot
        images = as_image_batch(X)
        self._check_shape(images.shape[1:])
        return self._parallel(images)

    def get_feature_names_out(self, input_features=None):
        shape = getattr(self, "image_shape_", (48, 48))
        n = self._n_features(shape)
        prefix = self._feature_prefix()
        return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)

    # -- helpers -------------------------------------------------------------
    def _param_values(self) -> list:
        return [getattr(self, name) for name in _param_names(type(self))]

    def _feature_prefix(self) -> str:
        return type(self).__name__.lower().replace("features", "") + "_"

    def _check_params(self) -> None:
        """Sklearn's ``_parameter_constraints`` plus :meth:`_check_more_params`.

        Any ValueError/TypeError becomes a one-line ConfigError named after the
        descriptor.
        """
        try:
            if hasattr(self, "_parameter_constraints"):
                self._validate_params()
            self._check_more_params()
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{self._param_error_name}: {e}") from None
        n_jobs = getattr(self, "n_jobs", None)
        if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0):
            raise ConfigError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")

    #: how parameter errors name the descriptor (its registry name)
    _param_error_name = "features"

    def _check_more_params(self) -> None:
        """Checks beyond the declared constraints; raise ValueError with the reason."""

    def _check_shape(self, shape) -> None:
        h, w = shape
        mh, mw = self._min_size_for()
        if h < mh or w < mw:
            raise ValueError(f"crop is {h}x{w}; {type(self).__name__} with these parameters "
                             f"needs at least {mh}x{mw} (too small)")

    def _min_size_for(self):
        return self._min_size

    def _parallel(self, images: np.ndarray) -> np.ndarray:
        n_jobs = getattr(self, "n_jobs", None)
        if n_jobs in (None, 1) or len(images) < 512:
            return self._describe_batch(images)
        from joblib import Parallel, delayed, effective_n_jobs

        n = effective_n_jobs(n_jobs)
        chunks = np.array_split(images, max(n * 4, 1))
        parts = Parallel(n_jobs=n_jobs)(delayed(self._describe_batch)(c) for c in chunks if len(c))
        return np.concatenate(parts, axis=0)

    def _describe_batch(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _n_features(self, shape) -> int:  # pragma: no cover
        raise NotImplementedError
