"""MTCNN (Zhang et al., 2016) in numpy + onnxruntime.

The three networks are the facenet-pytorch weights converted to ONNX by
``scripts/convert_mtcnn.py``; everything else (image pyramid, P-Net proposals,
non-maximum suppression, R-Net and O-Net refinement, box regression, the five
landmarks) is re-implemented here, following facenet-pytorch's
``detect_face`` except that crops reaching outside the image are zero-padded as
in the original MTCNN code rather than truncated.

References
----------
.. [1] K. Zhang, Z. Zhang, Z. Li, Y. Qiao, "Joint Face Detection and Alignment
       Using Multitask Cascaded Convolutional Networks", IEEE Signal Processing
       Letters 23(10), 2016. doi:10.1109/LSP.2016.2603342
"""

from __future__ import annotations

import numpy as np

from ._models import onnx_session


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union"):
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``boxes`` are ``(N, 4)`` ``x1, y1, x2, y2`` (inclusive pixel convention, as
    MTCNN); ``mode`` is ``"union"`` (IoU) or ``"min"`` (intersection over the
    smaller area).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.intp)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if mode == "min":
            o = inter / np.minimum(area[i], area[rest])
        else:
            o = inter / (area[i] + area[rest] - inter)
        order = rest[o <= threshold]
    return np.asarray(keep, dtype=np.intp)


def _rerec(b):
    """Make boxes square around their centres (in place on a copy)."""
    b = b.copy()
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _bbreg(b, reg):
    b = b.copy()
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


def _crops(img, boxes, size):
    """Zero-padded crops of ``boxes`` (1-based inclusive, as MTCNN) resized to size."""
    import cv2

    H, W = img.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    b = np.trunc(boxes[:, :4]).astype(int)
    for k, (x1, y1, x2, y2) in enumerate(b):
        # MTCNN boxes are 1-based: pixel columns x1-1 .. x2-1
        x1, y1 = x1 - 1, y1 - 1
        if x2 <= x1 or y2 <= y1:
            continue
        tmp = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
        if sx2 <= sx1 or sy2 <= sy1:
            continue
        tmp[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(tmp, (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


def onet_probability(img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """O-Net's face probability for given boxes (MTCNN's last stage alone).

    Parameters
    ----------
    img : (H, W, 3) uint8 ndarray
        RGB image.
    boxes : (N, 4) float ndarray
        ``x1, y1, x2, y2`` in pixels of ``img`` (0-based, end exclusive); each is
        resized to O-Net's 48x48 input (zero-padded where it leaves the image), so
        squares keep the face's proportions.

    Returns
    -------
    (N,) float ndarray
        Probability in [0, 1] that each box holds a face.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0)
    b = boxes.copy()
    b[:, 0:2] += 1  # to MTCNN's 1-based inclusive convention
    _, _, prob = onnx_session("onet").run(None, {"input": _crops(img, b, 48)})
    return prob[:, 1].astype(np.float64)


def mtcnn_detect(img: np.ndarray, min_size: float = 20.0, *,
                 thresholds=(0.6, 0.7, 0.7), factor: float = 0.709):
    """Run the MTCNN cascade on an RGB uint8 image.

    Parameters
    ----------
    img : (H, W, 3) uint8 ndarray
        RGB image.
    min_size : float
        Smallest face side searched, in pixels (P-Net's window is 12 px, so the
        first pyramid level is scaled by ``12 / min_size``).
    thresholds : 3 floats
        P-Net, R-Net and O-Net face-probability thresholds.
    factor : float
        Pyramid scale step.

    Returns
    -------
    boxes : (N, 5) float ndarray
        ``x1, y1, x2, y2, probability`` (0-based pixel coordinates, ``x2``/``y2``
        exclusive), best first.
    points : (N, 5, 2) float ndarray
        Image-left eye, image-right eye, nose, left and right mouth corners.
    """
    import cv2

    pnet, rnet, onet = onnx_session("pnet"), onnx_session("rnet"), onnx_session("onet")
    h, w = img.shape[:2]
    m = 12.0 / float(min_size)
    minl = min(h, w) * m
    scales = []
    s = m
    while minl >= 12:
        scales.append(s)
        s *= factor
        minl *= factor

    # Stage 1: P-Net on each pyramid level. Each level is area-resampled from the
    # previous one (the first from the image) rather than from the full image every
    # time (facenet-pytorch's way): nearly the same pyramid, at a fraction of the
    # cost (INTER_AREA at a non-integer ratio costs ~1.5 ms per call on 640x480).
    cand = []
    src = img
    for scale in scales:
        hs, ws = int(h * scale + 1), int(w * scale + 1)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        src = cv2.resize(src, (ws, hs), interpolation=interp)
        im = src.astype(np.float32)
        im = ((im - 127.5) * 0.0078125).transpose(2, 0, 1)[None]
        reg, prob = pnet.run(None, {"input": np.ascontiguousarray(im)})
        p = prob[0, 1]
        ys, xs = np.nonzero(p >= thresholds[0])
        if ys.size == 0:
            continue
        score = p[ys, xs]
        r = reg[0][:, ys, xs].T
        bb = np.stack([xs, ys], axis=1).astype(np.float32)
        q1 = np.floor((2 * bb + 1) / scale)
        q2 = np.floor((2 * bb + 12) / scale)
        boxes = np.concatenate([q1, q2, score[:, None], r], axis=1)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.5)
        cand.append(boxes[keep])
    if not cand:
        return np.zeros((0, 5)), np.zeros((0, 5, 2))
    boxes = np.concatenate(cand)
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
    bw = boxes[:, 2] - boxes[:, 0]
    bh = boxes[:, 3] - boxes[:, 1]
    boxes = np.stack([boxes[:, 0] + boxes[:, 5] * bw, boxes[:, 1] + boxes[:, 6] * bh,
                      boxes[:, 2] + boxes[:, 7] * bw, boxes[:, 3] + boxes[:, 8] * bh,
                      boxes[:, 4]], axis=1)
    boxes = _rerec(boxes)

    # Stage 2: R-Net.
    reg, prob = rnet.run(None, {"input": _crops(img, boxes, 24)})
    ok = prob[:, 1] > thresholds[1]
    boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1)
    reg = reg[ok]
    if len(boxes) == 0:
        return np.zeros((0, 5)), np.zeros((0, 5, 2))
    keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = _rerec(_bbreg(boxes[keep], reg[keep]))

    # Stage 3: O-Net, landmarks.
    reg, pts, prob = onet.run(None, {"input": _crops(img, boxes, 48)})
    ok = prob[:, 1] > thresholds[2]
    boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1)
    reg, pts = reg[ok], pts[ok]
    if len(boxes) == 0:
        return np.zeros((0, 5)), np.zeros((0, 5, 2))
    bw = boxes[:, 2] - boxes[:, 0] + 1
    bh = boxes[:, 3] - boxes[:, 1] + 1
    px = bw[:, None] * pts[:, :5] + boxes[:, 0:1] - 1
    py = bh[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
    points = np.stack([px, py], axis=2)
    boxes = _bbreg(boxes, reg)
    keep = nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
    boxes, points = boxes[keep], points[keep]
    # 1-based inclusive -> 0-based, exclusive end
    boxes[:, 0:2] -= 1
    return boxes, points
