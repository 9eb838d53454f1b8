"""Private dlib helpers: model files of face-recognition-models, 68-point landmarks on crops.

The face stage (``classicfer.face``) is preferred when it provides
``face_landmarks``; this module is the fallback and the batched fast path for
crops whose face fills the whole image.

Inside :func:`shared_landmarks` (opened by one ``DescriptorUnion`` call) each crop
batch goes through the shape predictor once: the eye-alignment step and the
``landmarks`` descriptor read the same points. Nothing is kept after the block.
"""

from __future__ import annotations

import contextlib
import functools
import os
from contextvars import ContextVar
from importlib.util import find_spec

import numpy as np

from ._base import images_key

#: crops are upscaled to this side before the shape predictor runs (dlib's
#: predictor was trained on faces of roughly 80-300 px)
LANDMARK_SIDE = 192


def model_path(filename: str) -> str:
    """Path of a dlib model shipped by ``face-recognition-models``.

    Raises
    ------
    FileNotFoundError
        With the install command when the package or the file is missing.
    """
    spec = find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"dlib model {filename} not found: install it with "
            "`pip install face-recognition-models`")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "models", filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dlib model {path} is missing: reinstall with "
                                "`pip install --force-reinstall face-recognition-models`")
    return path


@functools.cache
def shape_predictor_68():
    import dlib

    return dlib.shape_predictor(model_path("shape_predictor_68_face_landmarks.dat"))


@functools.cache
def face_recognition_model():
    import dlib

    return dlib.face_recognition_model_v1(model_path("dlib_face_recognition_resnet_model_v1.dat"))


def upscale(crop: np.ndarray, side: int) -> np.ndarray:
    import cv2

    if crop.shape[0] == side and crop.shape[1] == side:
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_LINEAR if side > crop.shape[0] else cv2.INTER_AREA
    return cv2.resize(crop, (side, side), interpolation=interp)


def crop_shapes(crops: np.ndarray, side: int = LANDMARK_SIDE):
    """Dlib ``full_object_detection`` of each crop upscaled to ``side``, whole image as box."""
    import dlib

    pred = shape_predictor_68()
    rect = dlib.rectangle(0, 0, side - 1, side - 1)
    ups, shapes = [], []
    for crop in crops:
        up = upscale(crop, side)
        ups.append(up)
        shapes.append(pred(up, rect))
    return ups, shapes


#: the landmarks found inside the current :func:`shared_landmarks` block, or None outside
_SHARED: ContextVar[dict | None] = ContextVar("classicfer_shared_landmarks", default=None)


@contextlib.contextmanager
def shared_landmarks():
    """Within the block, :func:`crop_landmarks` runs the predictor once per (crops, side).

    The points are keyed by the crops' content and dropped when the block ends, so
    the memory they take lasts one call (one batch of a ``DescriptorUnion``).
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def crop_landmarks(crops: np.ndarray, side: int = LANDMARK_SIDE) -> np.ndarray:
    """68 (x, y) landmarks of each crop, in the crop's own pixel coordinates.

    Returns
    -------
    (N, 68, 2) float32 ndarray
        A new array on every call (inside :func:`shared_landmarks` too).
    """
    crops = np.ascontiguousarray(crops)
    shared = _SHARED.get()
    if shared is None:
        return _crop_landmarks(crops, side)
    key = (images_key(crops), int(side))
    if key not in shared:
        shared[key] = _crop_landmarks(crops, side)
    return shared[key].copy()


def _crop_landmarks(crops: np.ndarray, side: int) -> np.ndarray:
    n, h, w = crops.shape
    _, shapes = crop_shapes(crops, side)
    pts = np.array([[(p.x, p.y) for p in s.parts()] for s in shapes], np.float32)
    pts = pts.reshape(n, 68, 2)
    # pixel centres: map [0, side) back to [0, w) / [0, h)
    pts[..., 0] = (pts[..., 0] + 0.5) * (w / side) - 0.5
    pts[..., 1] = (pts[..., 1] + 0.5) * (h / side) - 0.5
    return pts
