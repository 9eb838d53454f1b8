"""Cutting a model-ready crop out of a frame, framed like FER-2013.

FER-2013 crops show the whole face, forehead to chin, centred, with a small
margin: the side is ~2.8 eye distances, the eyes at ~41 % of the height
(measured, see :data:`EYE_SCALE`); a Haar box enlarged by ~1.1 and moved down by
~5 % of its height frames the astronaut photo alike (compared visually against
FER-2013 PublicTest images). Modes:

``"whole"``
    The image is already a face crop (FER-2013, CK+48): resize it.
``"box"``
    Square around the detection box: side ``margin * max(w, h)``, centre moved
    down by ``shift * h``. ``margin`` defaults per detector (:data:`BOX_MARGIN`),
    as detectors frame faces differently.
``"level"``
    Needs eye landmarks: rotate so that the eyes are level, side
    ``EYE_SCALE * eye distance``, eyes at ``EYE_Y`` of the height. Independent of
    the detector's framing. Falls back to ``"box"`` without landmarks.
``"aligned"``
    The face stage's ``align_face(image, landmarks, size)``.

Every mode is a single ``cv2.warpAffine`` into the model's input size (borders
replicated), so faces at the frame edge still give a full crop.
"""

from __future__ import annotations

import numpy as np

CROP_MODES = ("whole", "box", "level", "aligned")
#: Square-side factor applied to each detector's box to match FER-2013 framing.
BOX_MARGIN = {"haar": 1.1, "dlib-hog": 1.4, "dlib-cnn": 1.3, "mtcnn": 1.2, "blazeface": 1.15}
BOX_SHIFT = {"haar": 0.05, "dlib-hog": 0.0, "dlib-cnn": 0.05, "mtcnn": 0.0, "blazeface": 0.0}
#: Crop side as a multiple of the distance between the eye centres ("level" mode), and the
#: height of the eye line as a fraction of the side. Measured on FER-2013: dlib 5-point
#: landmarks on 90 PublicTest crops give side/IOD median 2.84 (IQR 2.63-3.25) and eye
#: line at 0.41 of the height.
EYE_SCALE = 2.8
EYE_Y = 0.41


def eye_centres(landmarks, layout=None) -> tuple[np.ndarray, np.ndarray] | None:
    """(left-in-image, right-in-image) eye centres from landmarks, or None.

    ``layout`` names the landmark layout (``"dlib5"``, ``"mtcnn5"``, ``"ibug68"``);
    inferred from the number of points when omitted.
    """
    if landmarks is None:
        return None
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2:
        return None
    if layout is not None:
        try:
            from ..face._types import LAYOUTS

            lay = LAYOUTS[layout]
            a, b = lm[lay["left_eye"]].mean(0), lm[lay["right_eye"]].mean(0)
            return (a, b) if a[0] <= b[0] else (b, a)
        except (ImportError, KeyError, IndexError):
            pass
    if len(lm) == 68:
        a, b = lm[36:42].mean(0), lm[42:48].mean(0)
    elif len(lm) == 5:  # dlib 5-point: two corners per eye, then the nose
        a, b = lm[0:2].mean(0), lm[2:4].mean(0)
    else:
        return None
    return (a, b) if a[0] <= b[0] else (b, a)


def _warp(image, m, size):
    """warpAffine, supersampled then area-averaged when shrinking (no aliasing)."""
    import cv2

    h, w = size
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    k = int(min(4, max(1, np.floor(1.0 / scale)))) if scale > 0 else 1
    if k > 1:
        m = m * k
        big = cv2.warpAffine(image, m, (w * k, h * k), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _square_matrix(cx, cy, side, size, angle=0.0):
    """Affine matrix sending the square (centre, side, rotation) onto the output."""
    h, w = size
    s = w / side
    ca, sa = np.cos(angle) * s, np.sin(angle) * s
    # output = R*s * (p - c) + (w/2, h/2)
    return np.array([[ca, sa, w / 2 - ca * cx - sa * cy],
                     [-sa, ca, h / 2 + sa * cx - ca * cy]], dtype=np.float64)


def crop_face(image, box=None, landmarks=None, *, size=(48, 48), mode="box",
              detector="haar", margin=None, shift=None, layout=None):
    """Return a uint8 crop of ``size`` (H, W) framed like FER-2013.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 ndarray
    box : (x, y, w, h), optional
        Detection box; required unless ``mode == "whole"``.
    landmarks : (K, 2) ndarray, optional
        5- or 68-point landmarks, for ``"level"`` and ``"aligned"``.
    mode : {"whole", "box", "level", "aligned"}
        See the module docstring.
    """
    import cv2

    size = (int(size[0]), int(size[1]))
    if mode == "whole" or box is None:
        interp = cv2.INTER_AREA if image.shape[0] > size[0] else cv2.INTER_LINEAR
        return cv2.resize(image, (size[1], size[0]), interpolation=interp)
    x, y, w, h = (float(v) for v in box)
    if mode == "aligned" and landmarks is not None:
        from ..face import align_face

        out = align_face(image, landmarks, size=size[0], gray=image.ndim == 2, layout=layout)
        if out.shape[:2] != size:
            out = cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return out
    eyes = eye_centres(landmarks, layout) if mode in ("level", "aligned") else None
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes
        dist = float(np.hypot(rx - lx, ry - ly))
        # Guard against a landmark failure: the eye distance must fit the box.
        if 0.2 * w < dist < 0.8 * w:
            angle = float(np.arctan2(ry - ly, rx - lx))
            side = EYE_SCALE * dist
            ex, ey = (lx + rx) / 2, (ly + ry) / 2
            # centre = eye midpoint moved (0.5 - EYE_Y) * side along the face's down axis
            d = (0.5 - EYE_Y) * side
            cx, cy = ex - np.sin(angle) * d, ey + np.cos(angle) * d
            return _warp(image, _square_matrix(cx, cy, side, size, angle), size)
    m = BOX_MARGIN.get(detector, 1.25) if margin is None else float(margin)
    sh = BOX_SHIFT.get(detector, 0.0) if shift is None else float(shift)
    side = m * max(w, h)
    cx, cy = x + w / 2, y + h / 2 + sh * h
    return _warp(image, _square_matrix(cx, cy, side, size), size)
