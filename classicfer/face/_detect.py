"""Face detectors behind one call: :func:`detect_faces`."""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError
from ..imageio import as_uint8_image
from . import _models
from ._types import Face

#: method -> (smallest face the detector's window finds at scale 1, default min_size)
#: Haar's cascade window is 24 px (we aim for 30 px), dlib's HOG window 80 px,
#: dlib's MMOD CNN about 80 px (measured: a 68 px face is missed at scale 1),
#: MTCNN's P-Net 12 px (its pyramid starts at 12 / min_size). BlazeFace sees the
#: whole image at 128x128 (no pyramid); a small min_size adds windows (tiles).
METHODS = {
    "haar": (30.0, 60.0),
    "dlib-hog": (80.0, 80.0),
    "dlib-cnn": (80.0, 80.0),
    "mtcnn": (12.0, 40.0),
    "blazeface": (None, 0.0),
}
#: detectors that return eye landmarks with each face (their layout)
LANDMARK_LAYOUTS = {"mtcnn": "mtcnn5", "blazeface": "blazeface6"}
#: Shorter side (in pixels of the image the detector scans, after the min_size/upsample
#: resize) below which the detector cannot find a face, so it is not run: Haar's 24 px
#: cascade window; half of dlib's 80 px windows (a face filling the whole image is found
#: down to 60 px by HOG and 70 px by the CNN, measured; below about 10 px dlib's CNN
#: crashes the process or raises); MTCNN's 12 px P-Net window. BlazeFace: see
#: :func:`_cannot_hold_a_face`.
MIN_SIDE = {"haar": 24, "dlib-hog": 40, "dlib-cnn": 40, "mtcnn": 12}
#: Largest image (pixels, after the min_size/upsample scale) dlib's CNN is run on: its
#: image pyramid takes about 1 KB of memory per pixel (1.3 GB for a 1280x960 photo, 11.7 GB
#: for 12 Mpx). Larger images are shrunk to this size first, so the smallest face it finds
#: grows to ``80 * sqrt(pixels / DLIB_CNN_MAX_PIXELS)`` pixels of the original image.
DLIB_CNN_MAX_PIXELS = 500_000
#: BlazeFace's default score threshold (MediaPipe's own default is 0.5); its faces are
#: then verified by MTCNN's O-Net (``verify=True``): see ``results/face/false_positives.md``
BLAZEFACE_THRESHOLD = 0.5


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown face detector {method!r}; choose from {', '.join(METHODS)}")
    return method


def _resize(img, scale):
    import cv2

    if abs(scale - 1.0) < 1e-6:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _to_face(x1, y1, x2, y2, score, method, scale, shape, landmarks=None, layout=None):
    H, W = shape[:2]
    x1, y1, x2, y2 = (v / scale for v in (x1, y1, x2, y2))
    xa, ya = round(max(0.0, x1)), round(max(0.0, y1))
    xb, yb = round(min(float(W), x2)), round(min(float(H), y2))
    if xb - xa < 2 or yb - ya < 2:
        return None
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64) / scale
    return Face((xa, ya, xb - xa, yb - ya), float(score), method, landmarks, layout)


def detect_faces(image, method: str = "haar", *, min_size: float | None = None,
                 upsample: int = 0, max_faces: int | None = None,
                 threshold: float | None = None, verify: bool = True) -> list[Face]:
    """Find faces in an image.

    Parameters
    ----------
    image : array-like
        ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, any numeric dtype
        (coerced with :func:`classicfer.imageio.as_uint8_image`).
    method : {'haar', 'dlib-hog', 'dlib-cnn', 'mtcnn'}
        - ``haar``: OpenCV's frontal-face Viola-Jones cascade (fastest);
        - ``dlib-hog``: dlib's HOG + linear SVM frontal detector;
        - ``dlib-cnn``: dlib's MMOD CNN (most robust to pose, slowest; run on at most
          :data:`DLIB_CNN_MAX_PIXELS` pixels to bound its memory);
        - ``mtcnn``: the MTCNN cascade (ONNX weights, also returns 5 landmarks);
        - ``blazeface``: MediaPipe's BlazeFace short-range network (ONNX, one
          128x128 pass, about 3 ms; also returns 6 keypoints). One pass finds
          faces whose side is at least about an eighth of the image's longer
          side (a person within about a metre of a 640x480 webcam); a smaller
          ``min_size`` adds overlapping windows, one pass each.
    min_size : float, optional
        Smallest face side to find, in pixels of ``image``. The image is resized
        so that this size matches the detector's window (so a larger value is
        faster). Defaults: haar 60, dlib-hog 80, dlib-cnn 80, mtcnn 40. For
        ``blazeface`` (default: one pass over the whole image) a value below an
        eighth of the image's longer side adds windows of side ``8 * min_size``.
    upsample : int
        Additionally upscale the image ``2**upsample`` times (dlib's meaning):
        finds faces down to ``min_size / 2**upsample``. Not available for
        ``blazeface`` (a ConfigError).
    max_faces : int, optional
        Keep at most this many faces (the largest ones).
    threshold : float, optional
        Detector-specific score threshold: Haar ``minNeighbors`` (default 5),
        dlib's ``adjust_threshold`` for HOG (default 0), minimum MMOD
        confidence for the CNN (default 0), MTCNN O-Net probability (default 0.7),
        BlazeFace score (default 0.5).
    verify : bool
        BlazeFace only (ignored by the other detectors): keep a face only when MTCNN's
        O-Net, shown the face, agrees that it is one (about 1 ms per face; see
        :func:`classicfer.face._blazeface.verify_faces`). This drops look-alikes such
        as a cat's head while keeping faces. Default True.

    Returns
    -------
    list of Face
        Largest face first (ties: higher score first); empty when there is no
        face (not an error), also when the image is too small to hold a face the
        detector can find (e.g. a 3-pixel-wide strip; see :data:`MIN_SIDE`). MTCNN
        faces carry their 5 landmarks (``layout="mtcnn5"``), BlazeFace faces their
        6 keypoints (``layout="blazeface6"``).
    """
    _check_method(method)
    if int(upsample) < 0:
        raise ConfigError(f"upsample must be >= 0, got {upsample}")
    native, default = METHODS[method]
    min_size = float(default if min_size is None else min_size)
    if min_size <= 0 and method != "blazeface":
        raise ConfigError(f"min_size must be > 0 pixels, got {min_size}")
    if method == "blazeface" and int(upsample) > 0:
        raise ConfigError("blazeface looks at the whole image at once and cannot upsample; "
                          "use method='mtcnn' or a smaller min_size for small faces")
    img = as_uint8_image(image, gray=method in ("haar", "dlib-hog"))
    if method == "blazeface":
        scale = 1.0
    elif method == "mtcnn":
        scale = float(2 ** int(upsample))
    else:
        scale = native / min_size * 2 ** int(upsample)
    if method == "dlib-cnn":
        scale = min(scale, (DLIB_CNN_MAX_PIXELS / max(1, img.shape[0] * img.shape[1])) ** 0.5)
    if _cannot_hold_a_face(method, img.shape, min_size, scale):
        return []
    if method == "blazeface":
        faces = _blazeface(img, min_size, threshold, verify)
    elif method == "mtcnn":
        faces = _mtcnn(img, min_size, scale, threshold)
    elif method == "haar":
        faces = _haar(_resize(img, scale), scale, img.shape, threshold)
    else:
        faces = _dlib(method, _resize(img, scale), scale, img.shape, threshold)
    faces.sort(key=lambda f: (f.box[2] * f.box[3], f.score), reverse=True)
    if max_faces is not None:
        faces = faces[: int(max_faces)]
    return faces


def _cannot_hold_a_face(method: str, shape, min_size: float, scale: float) -> bool:
    """True when an image of ``shape`` is too small to hold any face ``method`` can find.

    For the scanning detectors: the image's shorter side, once resized by ``scale``, is
    below the detector's :data:`MIN_SIDE` (so a 3x3000 strip never reaches dlib's CNN,
    which crashes on it). For BlazeFace: the shorter side is below the smallest face it
    reports (``0.8 * min_size``, or without ``min_size`` a tenth of the longer side, a
    little under a single pass's reach of an eighth), and never below 2 pixels.
    """
    h, w = shape[:2]
    if method == "blazeface":
        from ._blazeface import REACH

        smallest = 0.8 * min_size if min_size > 0 else 0.8 * REACH * max(h, w)
        return min(h, w) < max(2.0, smallest)
    side = min(max(1, round(h * scale)), max(1, round(w * scale)))
    return side < MIN_SIDE[method]


def _blazeface(img, min_size, threshold, verify=True):
    from ._blazeface import VERIFY_THRESHOLD, blazeface_detect, verify_faces

    boxes, points = blazeface_detect(img, BLAZEFACE_THRESHOLD if threshold is None
                                     else float(threshold), min_size or None)
    if verify and len(boxes):
        ok = verify_faces(img, boxes) >= VERIFY_THRESHOLD
        boxes, points = boxes[ok], points[ok]
    faces = []
    for b, p in zip(boxes, points, strict=True):
        if min(b[2] - b[0], b[3] - b[1]) < 0.8 * min_size:  # boxes are tight: some slack
            continue
        f = _to_face(b[0], b[1], b[2], b[3], b[4], "blazeface", 1.0, img.shape, p, "blazeface6")
        if f is not None:
            faces.append(f)
    return faces


def _mtcnn(img, min_size, scale, threshold):
    from ._mtcnn import mtcnn_detect

    work = _resize(img, scale)
    th = (0.6, 0.7, 0.7 if threshold is None else float(threshold))
    boxes, points = mtcnn_detect(work, min_size * scale, thresholds=th)
    faces = []
    for b, p in zip(boxes, points, strict=True):
        f = _to_face(b[0], b[1], b[2], b[3], b[4], "mtcnn", scale, img.shape, p, "mtcnn5")
        if f is not None:
            faces.append(f)
    return faces


def _dlib(method, work, scale, shape, threshold):
    th = 0.0 if threshold is None else float(threshold)
    if method == "dlib-hog":
        rects, scores, _ = _models.dlib_hog_detector().run(work, 0, th)
    else:  # dlib-cnn: MMOD detections, kept from a minimum confidence
        dets = [d for d in _models.dlib_cnn_detector()(work, 0) if d.confidence >= th]
        rects, scores = [d.rect for d in dets], [d.confidence for d in dets]
    faces = []
    for r, s in zip(rects, scores, strict=True):
        f = _to_face(r.left(), r.top(), r.right() + 1, r.bottom() + 1, s, method, scale, shape)
        if f is not None:
            faces.append(f)
    return faces


def _haar(gray, scale, shape, threshold):
    import cv2

    clf = _models.haar_cascade()
    g = cv2.equalizeHist(gray)
    neighbors = 5 if threshold is None else int(threshold)
    rects, _, weights = clf.detectMultiScale3(
        g, scaleFactor=1.1, minNeighbors=neighbors, minSize=(24, 24),
        outputRejectLevels=True)
    faces = []
    for (x, y, w, h), s in zip(np.reshape(rects, (-1, 4)), np.ravel(weights), strict=True):
        f = _to_face(x, y, x + w, y + h, s, "haar", scale, shape)
        if f is not None:
            faces.append(f)
    return faces
