"""Face alignment: rotate the eye line to horizontal, scale by the inter-ocular
distance, crop a square with a margin; plus pixel normalisation."""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ..imageio import as_uint8_image
from ._types import eye_centers

#: Inter-ocular distance as a fraction of the face box side (eye centres).
IOD_FRACTION = 0.45
#: Height of the eye line below the face box's top, as a fraction of its side.
EYE_Y = 0.36

_BORDERS = ("replicate", "constant", "reflect")
NORMALIZE = (None, "equalize", "clahe", "minmax")


def alignment_matrix(landmarks, size: int = 48, *, margin: float = 0.1,
                     layout: str | None = None) -> np.ndarray:
    """The 2x3 similarity transform used by :func:`align_face`.

    The face box is a square of side ``iod / IOD_FRACTION`` with the eye line at
    ``EYE_Y`` of its height; the crop adds ``margin`` times that side on each side.
    """
    if margin <= -0.4:
        raise ConfigError(f"margin must be > -0.4, got {margin}")
    left, right = eye_centers(landmarks, layout)
    d = right - left
    iod = float(np.hypot(*d))
    if not np.isfinite(iod) or iod < 1e-6:
        raise ConfigError("the two eye centres coincide; cannot align this face")
    angle = np.arctan2(d[1], d[0])
    span = 1.0 + 2.0 * margin
    s = size * IOD_FRACTION / (iod * span)
    c, si = np.cos(angle) * s, np.sin(angle) * s
    lin = np.array([[c, si], [-si, c]])
    mid = (left + right) / 2.0
    dst = np.array([size / 2.0, size * (margin + EYE_Y) / span])
    t = dst - lin @ mid
    return np.hstack([lin, t[:, None]])


def transform_points(points, matrix) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``(K, 2)`` points."""
    p = np.asarray(points, np.float64)
    return p @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


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


def _border(border):
    import cv2

    if border not in _BORDERS:
        raise ConfigError(f"unknown border {border!r}; choose from {', '.join(_BORDERS)}")
    return {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT,
            "reflect": cv2.BORDER_REFLECT_101}[border]


def _warp(img, m, size, border):
    """warpAffine with anti-aliasing: when the transform shrinks by more than 2x,
    the needed region is first reduced with INTER_AREA."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
        src = transform_points(corners, inv)
        H, W = img.shape[:2]
        x0, y0 = (int(max(0, np.floor(v))) for v in src.min(axis=0))
        x1 = int(min(W, np.ceil(src[:, 0].max()) + 1))
        y1 = int(min(H, np.ceil(src[:, 1].max()) + 1))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = scale * 2.0
            region = img[y0:y1, x0:x1]
            rw, rh = max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))
            small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            fx, fy = (x1 - x0) / rw, (y1 - y0) / rh
            pre = np.array([[fx, 0, x0], [0, fy, y0], [0, 0, 1]], float)
            m = m @ pre
            img = small
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def align_face(image, landmarks, size: int = 48, *, margin: float = 0.1, gray: bool = True,
               layout: str | None = None, normalize: str | None = None,
               border: str = "replicate", return_matrix: bool = False):
    """Aligned square face crop.

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
    crop = _warp(img, m, size, _border(border))
    crop = normalize_crop(crop, normalize)
    return (crop, m) if return_matrix else crop


def crop_box(image, box=None, size: int = 48, *, margin: float = 0.0, gray: bool = True,
             normalize: str | None = None, border: str = "replicate") -> np.ndarray:
    """Square crop around a box (no landmarks, no rotation): the largest centred
    square of the box grown by ``margin`` on each side, resized to ``size``.
    ``box=None`` uses the central square of the whole image."""

    size = _check_size(size)
    img = as_uint8_image(image, gray=gray)
    H, W = img.shape[:2]
    if box is None:
        side = min(H, W)
        box = ((W - side) / 2, (H - side) / 2, side, side)
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    s = size / side
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    crop = _warp(img, m, size, _border(border))
    return normalize_crop(crop, normalize)
