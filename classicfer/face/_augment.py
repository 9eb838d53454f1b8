"""Geometric and photometric augmentation that keeps landmarks consistent."""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ._types import LAYOUTS, resolve_layout


def flip_landmarks(landmarks, width: int, layout: str | None = None) -> np.ndarray:
    """Landmarks of the horizontally flipped image (``x -> width - 1 - x``).

    Re-ordered so each index keeps its meaning (the image-left eye stays index set
    ``left_eye``, etc.).
    """
    pts = np.asarray(landmarks, np.float64)
    perm = LAYOUTS[resolve_layout(pts, layout)]["flip"]
    out = pts.copy()
    out[:, 0] = (width - 1) - out[:, 0]
    return out[perm]


def augment_face(image, landmarks=None, *, angle: float = 0.0, scale: float = 1.0,
                 shift=(0.0, 0.0), flip: bool = False, brightness: float = 0.0,
                 contrast: float = 1.0, layout: str | None = None, border: str = "replicate"):
    """Apply one deterministic augmentation to an image and its landmarks.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 ndarray
    landmarks : (K, 2) array, optional
        Transformed with the image (and re-ordered by a flip).
    angle : float
        Rotation in degrees, counter-clockwise, about the image centre.
    scale : float
        Zoom factor (> 1 zooms in).
    shift : (float, float)
        Translation as fractions of (width, height).
    flip : bool
        Horizontal mirror (applied after the geometric transform).
    brightness : float
        Added to the pixels as a fraction of 255 (e.g. 0.1 = +25.5).
    contrast : float
        Multiplies deviations from mid-grey (128).

    Returns
    -------
    image : uint8 ndarray, same shape
    landmarks : (K, 2) ndarray or None
    """
    import cv2

    from ._crop import border_mode

    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ConfigError(f"expected a uint8 (H, W) or (H, W, 3) image, got {img.dtype} "
                          f"{img.shape}; use classicfer.imageio.as_uint8_image first")
    if scale <= 0:
        raise ConfigError(f"scale must be > 0, got {scale}")
    H, W = img.shape[:2]
    m = cv2.getRotationMatrix2D(((W - 1) / 2.0, (H - 1) / 2.0), float(angle), float(scale))
    m[0, 2] += float(shift[0]) * W
    m[1, 2] += float(shift[1]) * H
    identity = np.allclose(m, [[1, 0, 0], [0, 1, 0]])
    out = img if identity else cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR,
                                              borderMode=border_mode(border))
    pts = None
    if landmarks is not None:
        p = np.asarray(landmarks, np.float64)
        lay = resolve_layout(p, layout)
        pts = p @ m[:, :2].T + m[:, 2]
    if flip:
        out = out[:, ::-1]
        if pts is not None:
            pts = flip_landmarks(pts, W, lay)
    if brightness or contrast != 1.0:
        f = (out.astype(np.float32) - 128.0) * float(contrast) + 128.0 + float(brightness) * 255
        out = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out), pts


def random_augment(image, landmarks=None, *, random_state=None, max_angle: float = 10.0,
                   scale_range=(0.9, 1.1), max_shift: float = 0.05, flip_prob: float = 0.5,
                   max_brightness: float = 0.1, contrast_range=(0.9, 1.1),
                   layout: str | None = None):
    """:func:`augment_face` with parameters drawn uniformly from the given ranges."""
    rng = np.random.default_rng(random_state) if not isinstance(
        random_state, np.random.Generator) else random_state
    return augment_face(
        image, landmarks,
        angle=rng.uniform(-max_angle, max_angle),
        scale=rng.uniform(*scale_range),
        shift=(rng.uniform(-max_shift, max_shift), rng.uniform(-max_shift, max_shift)),
        flip=bool(rng.random() < flip_prob),
        brightness=rng.uniform(-max_brightness, max_brightness),
        contrast=rng.uniform(*contrast_range),
        layout=layout)
