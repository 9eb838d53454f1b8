"""Facial landmarks with dlib's shape predictors (68 or 5 points) on any box."""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ..imageio import as_uint8_image
from . import _models

#: model name -> layout name
MODELS = {"68": "ibug68", "5": "dlib5"}

#: Box adjustment (dx, dy, dw, dh as fractions of the box width/height) mapping
#: each detector's box onto a dlib-HOG-like box, on which dlib's shape predictors
#: were trained. Set from a preliminary run of ``benchmarks/face.py`` (250 crops per
#: dataset): for the detectors, the mean of the paired-box median on padded
#: FER-2013/CK+48 crops and the paired boxes on the astronaut photo; ``"crop"`` is
#: the HOG box inside a whole face crop. ``results/face_detection.md`` shows the
#: current re-measurement next to these values.
BOX_ADJUST = {
    "haar": (0.05, 0.17, -0.11, -0.11),
    "dlib-hog": (0.0, 0.0, 0.0, 0.0),
    "dlib-cnn": (0.04, 0.07, 0.01, 0.01),
    "mtcnn": (-0.04, 0.17, 0.08, -0.18),
    # blazeface: mean of the full-set crop median and the 24-view photo median
    # (results/face_detection.md, 2026-11-26)
    "blazeface": (0.005, -0.015, 0.0, 0.0),
    "crop": (0.03, 0.135, -0.06, -0.06),
    None: (0.0, 0.0, 0.0, 0.0),
}


def adjust_box(box, method: str | None):
    """Shift/scale a detector box so it resembles dlib's HOG boxes.

    Those are what the shape predictors were trained on. ``method="crop"`` is for
    whole-image boxes of face crops such as FER-2013.
    """
    if method not in BOX_ADJUST:
        raise ConfigError(f"unknown box source {method!r}; choose from "
                          f"{', '.join(str(k) for k in BOX_ADJUST if k)}")
    x, y, w, h = (float(v) for v in box)
    dx, dy, dw, dh = BOX_ADJUST[method]
    return (x + dx * w, y + dy * h, w * (1 + dw), h * (1 + dh))


def face_landmarks(image, box=None, model: str = "68", *, source: str | None = None,
                   upscale_to: int | None = None) -> np.ndarray:
    """Landmarks of the face in ``box``.

    Parameters
    ----------
    image : array-like
        Any image accepted by :func:`classicfer.imageio.as_uint8_image`.
    box : (x, y, w, h) or Face, optional
        The face box in image pixels; ``None`` uses the whole image (for datasets
        that are already face crops; use ``source="crop"``).
    model : {'68', '5'}
        - ``'68'``: dlib's iBUG 300-W 68-point predictor (the training data's
          licence forbids commercial use);
        - ``'5'``: dlib's 5-point predictor (eye corners and nose; fine to ship).
    source : str, optional
        Which detector made the box (``haar``, ``dlib-hog``, ``dlib-cnn``,
        ``mtcnn``, ``blazeface``, ``crop``); the box is then adjusted by :data:`BOX_ADJUST`.
        Taken from ``box.method`` when ``box`` is a :class:`Face`.
    upscale_to : int, optional
        If the box is smaller than this many pixels, the image is upscaled first
        (dlib predictors work poorly on tiny faces). Defaults to 160 for
        ``box=None`` and 0 (no upscaling) otherwise; coordinates are returned in
        the original image's pixels either way.

    Returns
    -------
    (K, 2) float ndarray
        ``(x, y)`` points, ``K`` = 68 or 5.
    """
    from ._types import Face

    model = str(model)
    if model not in MODELS:
        raise ConfigError(f"unknown landmark model {model!r}; choose from 68, 5")
    img = as_uint8_image(image, gray=True)
    H, W = img.shape
    if isinstance(box, Face):
        source = source or box.method
        box = box.box
    if box is None:
        box = (0, 0, W, H)
        source = source or "crop"
        if upscale_to is None:
            upscale_to = 160
    box = adjust_box(box, source)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ConfigError(f"box must have positive width and height, got {box}")
    scale = 1.0
    if upscale_to and max(w, h) < upscale_to:
        import cv2

        scale = upscale_to / max(w, h)
        # crop a generous region around the box first, so upscaling stays cheap
        pad = max(w, h)
        x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
        x1, y1 = int(min(W, x + w + pad)), int(min(H, y + h + pad))
        region = img[y0:y1, x0:x1]
        img = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        x, y = (x - x0) * scale, (y - y0) * scale
        w, h = w * scale, h * scale
        off = np.array([x0, y0], float)
    else:
        # hand dlib only a region around the box: it copies whatever array it gets
        # (a whole 640x480 frame costs ~2 ms more than the region)
        pad = 0.5 * max(w, h)
        x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
        x1, y1 = int(min(W, x + w + pad)), int(min(H, y + h + pad))
        if x1 > x0 and y1 > y0:
            img = np.ascontiguousarray(img[y0:y1, x0:x1])
            x, y = x - x0, y - y0
            off = np.array([x0, y0], float)
        else:
            off = np.zeros(2)
    import dlib

    rect = dlib.rectangle(round(x), round(y),
                          round(x + w) - 1, round(y + h) - 1)
    shape = _models.shape_predictor(model)(img, rect)
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return pts / scale + off


def landmarks_plausible(landmarks, box, layout: str | None = None, *,
                        max_tilt: float = 30.0) -> bool:
    """Geometric sanity check of a landmark set inside ``box``.

    True when every point lies inside the box grown by 20 % on each side, the
    inter-ocular distance is 20-70 % of the box width, the eye line is tilted by
    less than ``max_tilt`` degrees, and the nose (and, for 68 points, the mouth)
    lies below the eye line. dlib's predictors always return points, even on a
    non-face; this is how the face stage counts a landmarking "success".
    """
    from ._types import LAYOUTS, eye_centers, resolve_layout

    pts = np.asarray(landmarks, np.float64)
    lay = LAYOUTS[resolve_layout(pts, layout)]
    x, y, w, h = (float(v) for v in box)
    if not np.all(np.isfinite(pts)):
        return False
    inside = ((pts[:, 0] >= x - 0.2 * w) & (pts[:, 0] <= x + 1.2 * w)
              & (pts[:, 1] >= y - 0.2 * h) & (pts[:, 1] <= y + 1.2 * h))
    if not inside.all():
        return False
    le, re = eye_centers(pts, lay_name := resolve_layout(pts, layout))
    d = re - le
    iod = float(np.hypot(*d))
    if not (0.2 * w <= iod <= 0.7 * w):
        return False
    if abs(np.degrees(np.arctan2(d[1], d[0]))) >= max_tilt:
        return False
    normal = np.array([-d[1], d[0]]) / iod      # points "down" the face
    mid = (le + re) / 2
    below = [lay["nose"], lay["mouth"]] if lay_name != "dlib5" else [lay["nose"]]
    for idx in below:
        if idx and float((pts[idx].mean(axis=0) - mid) @ normal) <= 0.1 * iod:
            return False
    return True
