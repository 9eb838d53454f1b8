"""BlazeFace short-range (MediaPipe) in numpy + onnxruntime.

The network is MediaPipe's ``face_detection_short_range.tflite`` converted to
ONNX by ``scripts/convert_blazeface.py`` (Apache-2.0; see
``models/LICENSE-blazeface.md``). The whole image is letterboxed into the
network's 128x128 input, so one forward pass (about 3 ms on one CPU core) finds
faces whose side is at least about an eighth of the image's longer side: the
faces of people within about a metre of a 640x480 kiosk camera. A ``min_size``
below that adds overlapping windows (one pass each); for many small faces in a
large photo ``mtcnn`` finds more of them, faster. Each face found is then checked by
MTCNN's O-Net (:func:`verify_faces`), which drops look-alikes such as a cat's head.

Decoding follows MediaPipe's ``face_detection_short_range_common.pbtxt``: 896
SSD anchors (strides 8, 16, 16, 16; fixed anchor size), sigmoid scores, and
weighted non-maximum suppression (overlapping detections are averaged, weighted
by score).

References
----------
.. [1] V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran, M. Grundmann,
       "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs",
       arXiv:1907.05047, 2019.
"""

from __future__ import annotations

import functools

import numpy as np

SIZE = 128
STRIDES = (8, 16, 16, 16)
#: keypoints: image-left eye, image-right eye (for a non-mirrored photo: the
#: subject's right, then left eye), nose tip, mouth centre, the two ear tragions.
N_KEYPOINTS = 6
IOU = 0.3


@functools.cache
def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (MediaPipe's SsdAnchorsCalculator)."""
    out, i = [], 0
    while i < len(STRIDES):
        j = i
        while j < len(STRIDES) and STRIDES[j] == STRIDES[i]:
            j += 1
        n = 2 * (j - i)  # two anchors (aspect ratio 1 + interpolated scale) per layer
        g = SIZE // STRIDES[i]
        yy, xx = np.mgrid[0:g, 0:g]
        c = np.stack([(xx + 0.5) / g, (yy + 0.5) / g], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


def _weighted_nms(boxes, points, scores):
    """MediaPipe's weighted NMS.

    Each kept detection is the score-weighted mean of the detections overlapping it
    by IoU > 0.3; its score is their maximum.
    """
    order = np.argsort(-scores, kind="stable")
    keep_b, keep_p, keep_s = [], [], []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        xx1 = np.maximum(boxes[i, 0], boxes[order, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(area[i] + area[order] - inter, 1e-12)
        group = order[iou > IOU]
        w = scores[group][:, None]
        keep_b.append((boxes[group] * w).sum(0) / w.sum())
        keep_p.append((points[group] * w[:, :, None]).sum(0) / w.sum())
        keep_s.append(scores[i])
        order = order[iou <= IOU]
    return np.array(keep_b), np.array(keep_p), np.array(keep_s)


def _single_pass(img: np.ndarray, threshold: float):
    """One letterboxed 128x128 pass, weighted-NMS merged.

    (N, 4) boxes (x1, y1, x2, y2), (N, 6, 2) points, (N,) scores, in pixels of ``img``.
    """
    import cv2

    from ._models import onnx_session

    h, w = img.shape[:2]
    s = SIZE / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    px, py = (SIZE - nw) // 2, (SIZE - nh) // 2
    x = np.zeros((1, 3, SIZE, SIZE), np.float32)
    x[0, :, py:py + nh, px:px + nw] = small.transpose(2, 0, 1) * (1 / 127.5) - 1.0
    reg, cls = onnx_session("blazeface").run(None, {"input": x})
    raw = np.clip(cls[0, :, 0], -80.0, 80.0)  # MediaPipe clips at 100; 80 avoids overflow
    scores = 1.0 / (1.0 + np.exp(-raw))
    k = scores > float(threshold)
    if not k.any():
        return np.zeros((0, 4)), np.zeros((0, N_KEYPOINTS, 2)), np.zeros(0)
    r = reg[0][k].reshape(-1, 2 + N_KEYPOINTS, 2) / SIZE
    a = anchors()[k][:, None, :]
    centre, half = r[:, 0] + a[:, 0], r[:, 1] / 2
    pts = r[:, 2:] + a
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    boxes, pts, sc = _weighted_nms(boxes, pts, scores[k])
    # letterbox (0..1 of the 128 input) -> pixels of img
    off = np.array([px, py], np.float64)
    boxes = (boxes.reshape(-1, 2, 2) * SIZE - off) / s
    pts = (pts * SIZE - off) / s
    valid = (boxes[:, 1] > boxes[:, 0]).all(axis=1)
    return boxes.reshape(-1, 4)[valid], pts[valid], sc[valid]


#: a single pass finds faces whose side is at least this fraction of the image's
#: longer side (measured: an 80 px face in a 640x480 frame is found, 70 px is not)
REACH = 1 / 8
#: extra windows (for a small ``min_size``) have side ``min_size / TILE_REACH``: a face
#: of min_size is a sixth of its window, where BlazeFace is surer than at an eighth
TILE_REACH = 1 / 6
#: score threshold in those windows: each is another chance of a false positive (seen:
#: 0.52-0.69 on a spacesuit collar and a helmet) while faces score 0.8-0.95 there
TILE_THRESHOLD = 0.75


def _positions(n: int, tile: int) -> list[int]:
    if n <= tile:
        return [0]
    step = tile // 2
    return sorted(set(list(range(0, n - tile, step)) + [n - tile]))


def tiles(shape, min_size: float | None) -> list[tuple[int, int, int]]:
    """Square windows ``(x, y, side)`` that together find every face of at least ``min_size``.

    The whole image, plus, when ``min_size`` is below a single pass's reach, windows of
    side ``min_size / TILE_REACH`` (doubling up to the image) overlapping by half, so
    every face up to half a window fits inside one.
    """
    h, w = shape[:2]
    out = [(0, 0, max(h, w))]
    if min_size is None or min_size >= REACH * max(h, w):
        return out
    side = int(np.ceil(min_size / TILE_REACH))
    while side < max(h, w):
        out += [(x, y, side) for y in _positions(h, side) for x in _positions(w, side)]
        side *= 2
    return out


#: second look at each BlazeFace face: MTCNN's O-Net on an upright square of this many box
#: sides around the box's centre (of 1.0-1.3, 1.1 kept the most faces and let the fewest
#: look-alikes through; turning the square to level BlazeFace's eye points let the cat in)
VERIFY_EXPAND = 1.1
#: faces whose O-Net probability is below this are dropped (see :func:`verify_faces`):
#: 0.4-0.7 drop the same look-alikes; 0.8 drops one more and also 1 % of near faces
VERIFY_THRESHOLD = 0.6


def verify_faces(img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """O-Net's face probability for BlazeFace boxes: a second, independent look.

    BlazeFace alone finds faces in some animals, textures and drawings (scikit-image's
    cat scores 0.6, above its 0.5 threshold). MTCNN's O-Net, shown a square of
    :data:`VERIFY_EXPAND` box sides around each box, scores nearly all of them below
    :data:`VERIFY_THRESHOLD` and nearly all real faces above it: on the images of
    ``results/face/false_positives.md`` (``python benchmarks/face.py --false-positives``)
    BlazeFace's false positives went from 21 to 0 while near faces stayed at 99 % found;
    the faces O-Net doubts are mostly lying sideways or in profile. About 1 ms per face.

    Parameters
    ----------
    img : (H, W, 3) uint8 ndarray
        The RGB image BlazeFace ran on.
    boxes : (N, 4 or 5) float ndarray
        ``x1, y1, x2, y2[, score]`` as returned by :func:`blazeface_detect`.

    Returns
    -------
    (N,) float ndarray
        O-Net's face probability for each box.
    """
    from ._mtcnn import onet_probability

    if len(boxes) == 0:
        return np.zeros(0)
    b = np.asarray(boxes, np.float64)[:, :4]
    centre = (b[:, 0:2] + b[:, 2:4]) / 2
    half = VERIFY_EXPAND * (b[:, 2:4] - b[:, 0:2]).max(axis=1)[:, None] / 2
    return onet_probability(img, np.concatenate([centre - half, centre + half], axis=1))


def blazeface_detect(img: np.ndarray, threshold: float = 0.5, min_size: float | None = None):
    """Run BlazeFace on an RGB (or gray) uint8 image.

    One 128x128 pass over the whole image finds faces at least about
    :data:`REACH` of its longer side. A smaller ``min_size`` (pixels) adds
    overlapping windows (:func:`tiles`), one pass each, merged by weighted NMS.

    Returns
    -------
    boxes : (N, 5) float ndarray
        ``x1, y1, x2, y2, score`` in pixels of ``img`` (end exclusive), best first.
    points : (N, 6, 2) float ndarray
        The six keypoints (see :data:`N_KEYPOINTS`).
    """
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    windows = tiles(img.shape, min_size)
    if len(windows) == 1:
        boxes, pts, sc = _single_pass(img, threshold)
    else:
        parts = []
        for k, (x, y, side) in enumerate(windows):
            th = threshold if k == 0 else max(threshold, TILE_THRESHOLD)
            b, p, s_ = _single_pass(img[y:y + side, x:x + side], th)
            parts.append((b + [x, y, x, y], p + [x, y], s_))
        boxes = np.concatenate([q[0] for q in parts])
        pts = np.concatenate([q[1] for q in parts])
        sc = np.concatenate([q[2] for q in parts])
        if len(sc):
            boxes, pts, sc = _weighted_nms(boxes, pts, sc)
    if len(sc) == 0:
        return np.zeros((0, 5)), np.zeros((0, N_KEYPOINTS, 2))
    order = np.argsort(-sc, kind="stable")
    return np.concatenate([boxes, sc[:, None]], axis=1)[order], pts[order]
