"""Face alignment and photometric normalisation.

:func:`align_face` (eye line level, scaled by the inter-ocular distance) and
:func:`crop_box` (a square around a box) are the ``"aligned"`` and ``"square"``
framings of :func:`classicfer.face.crop_face`, with colour conversion and
photometric normalisation around them.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ..imageio import as_uint8_image
from ._crop import IOD_FRACTION, alignment_matrix, crop_face, transform_points

NORMALIZE = (None, "equalize", "clahe", "minmax")


def normalize_crop(crop: np.ndarray, method: str | None) -> np.ndarray:
    """uint8 -> uint8 photometric normalisation.

    method : {None, 'equalize', 'clahe', 'minmax'}
        - ``None``: unchanged;
        - ``'equalize'``: global histogram equalisation (per channel on the
          luminance for colour crops);
        - ``'clahe'``: contrast-limited adaptive equalisation (clip 2, 4x4 tiles);
        - ``'minmax'``: stretch the crop's range to 0..255.
    """
    import cv2

    if method not in NORMALIZE:
        raise ConfigError(f"unknown normalize {method!r}; choose from "
                          f"{', '.join(str(m) for m in NORMALIZE)}")
    if method is None:
        return crop
    if crop.ndim == 3:
        ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
        ycc[:, :, 0] = normalize_crop(np.ascontiguousarray(ycc[:, :, 0]), method)
        return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    if method == "equalize":
        return cv2.equalizeHist(crop)
    if method == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(crop)
    lo, hi = int(crop.min()), int(crop.max())
    if hi <= lo:
        return crop.copy()
    return ((crop.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def normalize_pixels(crops, method: str = "unit") -> np.ndarray:
    """uint8 crops -> float32 network/feature input.

    method : {'unit', 'symmetric', 'zscore'}
        - ``'unit'``: divide by 255 (range [0, 1]);
        - ``'symmetric'``: range [-1, 1];
        - ``'zscore'``: per crop, zero mean and unit standard deviation.
    """
    x = np.asarray(crops, dtype=np.float32)
    if method == "unit":
        return x / 255.0
    if method == "symmetric":
        return x / 127.5 - 1.0
    if method == "zscore":
        axes = tuple(range(1, x.ndim)) if x.ndim >= 3 else None
        m = x.mean(axis=axes, keepdims=True)
        sd = x.std(axis=axes, keepdims=True)
        return (x - m) / np.maximum(sd, 1e-6)
    raise ConfigError(f"unknown pixel normalisation {method!r}; choose from unit, symmetric, "
                      "zscore")


def _check_size(size):
    if int(size) != size or int(size) < 8:
        raise ConfigError(f"size must be an integer >= 8 pixels, got {size!r}")
    return int(size)


def align_face(image, landmarks, size: int = 48, *, margin: float = 0.1, gray: bool = True,
               layout: str | None = None, normalize: str | None = None,
               border: str = "replicate", return_matrix: bool = False):
    """Aligned square face crop: the ``"aligned"`` framing of :func:`crop_face`.

    Parameters
    ----------
    image : array-like
        Any image accepted by :func:`classicfer.imageio.as_uint8_image`.
    landmarks : (K, 2) array or Face
        68-point, dlib 5-point, MTCNN 5-point (``layout="mtcnn5"``) or two eye
        centres; a :class:`Face` with landmarks brings its own layout.
    size : int
        Output side in pixels (48 for FER-2013-like models, 64, 224...).
    margin : float
        Extra context on each side, as a fraction of the face box side
        (``iod / IOD_FRACTION``); 0.1 gives crops framed like FER-2013.
    gray : bool
        ``(size, size)`` grayscale, else ``(size, size, 3)`` RGB.
    normalize : {None, 'equalize', 'clahe', 'minmax'}
        Photometric normalisation, see :func:`normalize_crop`.
    border : {'replicate', 'constant', 'reflect'}
        How pixels outside the image are filled.
    return_matrix : bool
        Also return the 2x3 transform (map landmarks with :func:`transform_points`).

    Returns
    -------
    crop : uint8 ndarray
        The eye line is horizontal, the eyes are ``size * IOD_FRACTION /
        (1 + 2 margin)`` pixels apart and centred horizontally.
    """
    from ._types import Face

    if isinstance(landmarks, Face):
        if landmarks.landmarks is None:
            raise ConfigError("this Face has no landmarks; call face_landmarks first")
        layout = layout or landmarks.layout
        landmarks = landmarks.landmarks
    size = _check_size(size)
    img = as_uint8_image(image, gray=gray)
    m = alignment_matrix(landmarks, size, margin=margin, layout=layout)
    crop = crop_face(img, None, landmarks, framing="aligned", size=size, margin=margin,
                     layout=layout, border=border)
    crop = normalize_crop(crop, normalize)
    return (crop, m) if return_matrix else crop


def crop_box(image, box=None, size: int = 48, *, margin: float = 0.0, gray: bool = True,
             normalize: str | None = None, border: str = "replicate") -> np.ndarray:
    """Square crop around a box (no landmarks, no rotation).

    The largest centred square of the box grown by ``margin`` on each side, resized
    to ``size``.
    ``box=None`` uses the central square of the whole image. The ``"square"``
    framing of :func:`crop_face`.
    """
    size = _check_size(size)
    img = as_uint8_image(image, gray=gray)
    crop = crop_face(img, box, framing="square", size=size, margin=margin, border=border)
    return normalize_crop(crop, normalize)


__all__ = ["IOD_FRACTION", "NORMALIZE", "align_face", "alignment_matrix", "crop_box",
           "normalize_crop", "normalize_pixels", "transform_points"]
