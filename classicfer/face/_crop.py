"""The face crop: one function, :func:`crop_face`, with named framings.

Every crop of a face in classicfer (the runtime's model input, :class:`FaceCropper`,
:func:`align_face`, :func:`crop_box`) is cut here, as a single affine warp of the
image into the output size (borders replicated by default), so faces at the frame
edge still give a full crop. Framings:

``"whole"``
    The image is already a face crop (FER-2013, CK+48): resize it.
``"box"``
    Square around the detection box, framed like FER-2013: side ``scale * max(w, h)``,
    centre moved down by ``shift * h``; both default per detector (:data:`BOX_SCALE`,
    :data:`BOX_SHIFT`: detectors frame faces differently; a Haar box enlarged by ~1.1
    and moved down by ~5 % of its height frames the astronaut photo like FER-2013
    PublicTest images).
``"level"``
    FER-2013 framing from the eyes: rotate so that the eyes are level, side
    ``LEVEL_EYE_SCALE`` eye distances, eye line at ``LEVEL_EYE_Y`` of the height
    (measured on FER-2013). Independent of the detector's framing. Falls back to
    ``"box"`` without usable eye points.
``"aligned"``
    The face stage's alignment: eye line level, eyes ``IOD_FRACTION`` of the face
    square apart at ``ALIGNED_EYE_Y`` of its height, plus ``margin`` of context on
    each side (0.1 by default; 0.1 frames like FER-2013). Falls back to ``"box"``
    without landmarks.
``"square"``
    The largest centred square of the box grown by ``margin`` on each side (no
    rotation; ``box=None``: the central square of the image).

The runtime's model folders name their framing in ``input.crop`` (:data:`CROP_MODES`).
Shrinking is anti-aliased: ``"box"`` and ``"level"`` supersample the warp and
area-average it, ``"aligned"`` and ``"square"`` area-reduce the needed region before
the warp (each framing keeps the resampling its models were made with).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError

FRAMINGS = ("whole", "box", "level", "aligned", "square")
#: The framings a model folder may ask for (sidecar ``input.crop``).
CROP_MODES = ("whole", "box", "level", "aligned")
#: Square side / box side per detector, to match FER-2013 framing (``"box"``).
BOX_SCALE = {"haar": 1.1, "dlib-hog": 1.4, "dlib-cnn": 1.3, "mtcnn": 1.2, "blazeface": 1.15}
#: Downward shift of the square's centre as a fraction of the box height (``"box"``).
BOX_SHIFT = {"haar": 0.05, "dlib-hog": 0.0, "dlib-cnn": 0.05, "mtcnn": 0.0, "blazeface": 0.0}
#: ``"box"`` scale of a detector missing from :data:`BOX_SCALE`.
DEFAULT_BOX_SCALE = 1.25
#: ``"level"``: crop side as a multiple of the distance between the eye centres, and the
#: height of the eye line as a fraction of the side. Measured on FER-2013: dlib 5-point
#: landmarks on 90 PublicTest crops give side/IOD median 2.84 (IQR 2.63-3.25) and eye
#: line at 0.41 of the height.
LEVEL_EYE_SCALE = 2.8
LEVEL_EYE_Y = 0.41
#: ``"aligned"``: inter-ocular distance as a fraction of the face square's side, and the
#: height of the eye line below the square's top as a fraction of its side.
IOD_FRACTION = 0.45
ALIGNED_EYE_Y = 0.36
#: ``margin`` of the framings that take one.
DEFAULT_MARGIN = {"aligned": 0.1, "square": 0.0}

_BORDERS = ("replicate", "constant", "reflect")


def border_mode(border: str) -> int:
    """OpenCV border flag for ``"replicate"``, ``"constant"`` or ``"reflect"``."""
    import cv2

    if border not in _BORDERS:
        raise ConfigError(f"unknown border {border!r}; choose from {', '.join(_BORDERS)}")
    return {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT,
            "reflect": cv2.BORDER_REFLECT_101}[border]


def transform_points(points, matrix) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``(K, 2)`` points."""
    p = np.asarray(points, np.float64)
    return p @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


# ------------------------------------------------------------------ geometry
def alignment_matrix(landmarks, size: int = 48, *, margin: float = 0.1,
                     layout: str | None = None) -> np.ndarray:
    """The 2x3 similarity transform of the ``"aligned"`` framing (a ``size`` square).

    The face square has side ``iod / IOD_FRACTION`` with the eye line at
    ``ALIGNED_EYE_Y`` of its height; the crop adds ``margin`` times that side on
    each side.
    """
    from ._types import eye_centers

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
    dst = np.array([size / 2.0, size * (margin + ALIGNED_EYE_Y) / span])
    t = dst - lin @ mid
    return np.hstack([lin, t[:, None]])


def _square_matrix(cx, cy, side, size, angle=0.0):
    """Affine matrix sending the square (centre, side, rotation) onto the output."""
    h, w = size
    s = w / side
    ca, sa = np.cos(angle) * s, np.sin(angle) * s
    # output = R*s * (p - c) + (w/2, h/2)
    return np.array([[ca, sa, w / 2 - ca * cx - sa * cy],
                     [-sa, ca, h / 2 + sa * cx - ca * cy]], dtype=np.float64)


def _box_matrix(box, size, detector, scale, shift):
    x, y, w, h = (float(v) for v in box)
    m = BOX_SCALE.get(detector, DEFAULT_BOX_SCALE) if scale is None else float(scale)
    sh = BOX_SHIFT.get(detector, 0.0) if shift is None else float(shift)
    side = m * max(w, h)
    return _square_matrix(x + w / 2, y + h / 2 + sh * h, side, size)


def _eye_points(landmarks, layout=None):
    """(image-left, image-right) eye centres, or None when they cannot be read."""
    from ._types import eye_centers

    if landmarks is None:
        return None
    try:
        a, b = eye_centers(landmarks, layout)
    except ConfigError:  # not (K, 2) points of a known layout
        return None
    return (a, b) if a[0] <= b[0] else (b, a)


def _level_matrix(box, landmarks, size, layout):
    """The ``"level"`` transform, or None when the eye points are missing or implausible."""
    eyes = _eye_points(landmarks, layout)
    if eyes is None:
        return None
    (lx, ly), (rx, ry) = eyes
    dist = float(np.hypot(rx - lx, ry - ly))
    w = float(box[2])
    if not 0.2 * w < dist < 0.8 * w:  # a landmark failure: the eye distance must fit the box
        return None
    angle = float(np.arctan2(ry - ly, rx - lx))
    side = LEVEL_EYE_SCALE * dist
    ex, ey = (lx + rx) / 2, (ly + ry) / 2
    # centre = eye midpoint moved (0.5 - LEVEL_EYE_Y) * side along the face's down axis
    d = (0.5 - LEVEL_EYE_Y) * side
    cx, cy = ex - np.sin(angle) * d, ey + np.cos(angle) * d
    return _square_matrix(cx, cy, side, size, angle)


def _square_box_matrix(image, box, side_px, margin):
    if box is None:
        H, W = image.shape[:2]
        side = min(H, W)
        box = ((W - side) / 2, (H - side) / 2, side, side)
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    s = side_px / side
    return np.array([[s, 0, side_px / 2 - s * cx], [0, s, side_px / 2 - s * cy]])


# ------------------------------------------------------------------- warping
def _warp_supersampled(image, m, size, border):
    """warpAffine, supersampled then area-averaged when shrinking (no aliasing)."""
    import cv2

    h, w = size
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    k = int(min(4, max(1, np.floor(1.0 / scale)))) if scale > 0 else 1
    if k > 1:
        m = m * k
        big = cv2.warpAffine(image, m, (w * k, h * k), flags=cv2.INTER_LINEAR,
                             borderMode=border)
        return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


def _warp_region(img, m, side, border):
    """WarpAffine onto a ``side`` square.

    When the transform shrinks by more than 2x, the needed region is first reduced
    with INTER_AREA (no aliasing).
    """
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], float)
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
    return cv2.warpAffine(img, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=border)


def _resize(image, size):
    import cv2

    interp = cv2.INTER_AREA if image.shape[0] > size[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (size[1], size[0]), interpolation=interp)


def _check_crop_size(size) -> tuple[int, int]:
    pair = (size, size) if np.ndim(size) == 0 else tuple(size)
    try:
        ok = len(pair) == 2 and all(int(v) == v and int(v) >= 1 for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"size must be a positive integer or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def _square_framing(image, box, landmarks, framing, size, margin, layout, border):
    """``"aligned"`` / ``"square"``: a square warp, resized when ``size`` is not square."""
    import cv2

    side = size[0]
    if margin is None:
        margin = DEFAULT_MARGIN[framing]
    if framing == "aligned":
        m = alignment_matrix(landmarks, side, margin=margin, layout=layout)
    else:
        m = _square_box_matrix(image, box, side, margin)
    out = _warp_region(image, m, side, border)
    if out.shape[:2] != size:
        out = cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out


def crop_face(image, box=None, landmarks=None, *, framing: str = "level", size=48,
              detector: str | None = "haar", scale: float | None = None,
              shift: float | None = None, margin: float | None = None,
              layout: str | None = None, border: str = "replicate") -> np.ndarray:
    """Cut a face out of ``image`` with a named framing (see the module docstring).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 ndarray
        Used as it is (convert colour first, e.g. with
        :func:`classicfer.imageio.as_uint8_image`).
    box : (x, y, w, h), optional
        Detection box. ``"box"`` and ``"level"`` without one resize the whole image
        (``"whole"``); ``"square"`` without one takes the central square.
    landmarks : (K, 2) ndarray, optional
        Points holding the eyes (68-point, dlib 5-point, or any layout of
        :data:`classicfer.face.LAYOUTS` named by ``layout``), for ``"level"`` and
        ``"aligned"``; either falls back to ``"box"`` without them.
    framing : {"whole", "box", "level", "aligned", "square"}
    size : int or (int, int)
        Output ``(height, width)``; an int is a square.
    detector : str, optional
        The detector that made ``box``: picks the ``"box"`` defaults.
    scale, shift : float, optional
        ``"box"``: square side over the box's longer side, and downward shift of
        the centre as a fraction of the box height (defaults per ``detector``).
    margin : float, optional
        ``"aligned"``, ``"square"``: context on each side as a fraction of the face
        square (defaults 0.1 and 0).
    layout : str, optional
        Landmark layout name (a key of :data:`classicfer.face.LAYOUTS`).
    border : {"replicate", "constant", "reflect"}
        How pixels outside the image are filled.

    Returns
    -------
    uint8 ndarray of shape ``size`` (plus the colour axis of ``image``)

    Raises
    ------
    ConfigError
        Unknown framing or border, a bad size, or (``"aligned"``) eye points that
        coincide.
    """
    if framing not in FRAMINGS:
        raise ConfigError(f"unknown framing {framing!r}; choose from {', '.join(FRAMINGS)}")
    size = _check_crop_size(size)
    mode = border_mode(border)
    if framing == "square" or (framing == "aligned" and landmarks is not None):
        return _square_framing(image, box, landmarks, framing, size, margin, layout, mode)
    if framing == "whole" or box is None:
        return _resize(image, size)
    m = _level_matrix(box, landmarks, size, layout) if framing == "level" else None
    if m is None:
        m = _box_matrix(box, size, detector, scale, shift)
    return _warp_supersampled(image, m, size, mode)


__all__ = [
    "ALIGNED_EYE_Y",
    "BOX_SCALE",
    "BOX_SHIFT",
    "CROP_MODES",
    "FRAMINGS",
    "IOD_FRACTION",
    "LEVEL_EYE_SCALE",
    "LEVEL_EYE_Y",
    "alignment_matrix",
    "border_mode",
    "crop_face",
    "transform_points",
]
