"""Eye-line re-alignment of face crops before an appearance descriptor.

Dataset crops (FER-2013, CK+48) are framed by a face detector box: the eyes sit
at different heights, distances and angles from crop to crop, so a HOG cell or
an LBP grid cell covers a different part of the face each time. ``align_crops``
finds the 68 dlib landmarks on each crop, then re-cuts it with
:func:`classicfer.face.align_face` (eye line horizontal, fixed inter-ocular
distance and eye height), the same geometry as the face stage's aligned crops.

Descriptors take ``align='eyes'`` and ``align_margin`` (the ``margin`` of
``align_face``: 0 puts the eyes 0.45 of the crop width apart, 0.36 of its height
down; negative values zoom in, positive ones add context).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

#: crops whose landmark eye distance is outside this fraction of the crop width,
#: or whose eye line is steeper than MAX_ROLL degrees, are kept as they are (the
#: shape predictor is given the whole crop as the face box, so on a non-face it
#: returns a mean-shape-like guess; re-cutting from such points would do harm)
IOD_RANGE = (0.15, 0.9)
MAX_ROLL = 40.0

ALIGN_OPTIONS = ("none", "eyes")

#: memo of recent large batches (a kiosk's one-crop calls are not kept: no growth)
_MEMO: OrderedDict = OrderedDict()
_MEMO_BYTES = 512 * 2**20
_MEMO_ENTRIES = 8
_MEMO_MIN_BATCH = 64
_SMALL: OrderedDict = OrderedDict()


def _align_chunk(images: np.ndarray, margin: float) -> tuple[np.ndarray, int]:
    from ..face import align_face
    from ._dlib import crop_landmarks

    out = np.empty_like(images)
    pts = crop_landmarks(images)
    kept = 0
    h, w = images.shape[1:]
    for i, (im, p) in enumerate(zip(images, pts)):
        left, right = p[36:42].mean(0), p[42:48].mean(0)
        d = right - left
        iod = float(np.hypot(*d)) / w
        roll = abs(np.degrees(np.arctan2(d[1], d[0])))
        if not (IOD_RANGE[0] <= iod <= IOD_RANGE[1]) or roll > MAX_ROLL:
            out[i] = im
            kept += 1
            continue
        crop = align_face(im, p, size=w, margin=margin, gray=True, border="replicate")
        out[i] = crop if h == w else _resize(crop, w, h)
    return out, kept


def _resize(crop, w, h):
    import cv2

    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def align_crops(images: np.ndarray, *, margin: float = 0.0, n_jobs=None) -> np.ndarray:
    """Re-cut each (H, W) uint8 crop around its eyes (see the module docstring).

    Results for the last few batches are memoised by content hash (8 large and 8
    small ones), so the parts of a ``hog+lbp`` union share one landmark pass and
    one re-cut. The returned array is read-only.

    Returns
    -------
    (N, H, W) uint8 ndarray
        Crops the landmarks could not place (see :data:`IOD_RANGE`) are unchanged.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    small = len(images) < _MEMO_MIN_BATCH
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{images.shape}|{float(margin)!r}".encode())
    h.update(memoryview(images).cast("B"))
    key = h.hexdigest()
    memo = _SMALL if small else _MEMO
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    if small:  # a kiosk crop: the union's descriptors share one re-cut, 8 crops kept
        out, _ = _align_chunk(images, margin)
        out.setflags(write=False)
        _SMALL[key] = out
        while len(_SMALL) > _MEMO_ENTRIES:
            _SMALL.popitem(last=False)
        return out
    if n_jobs in (None, 1) or len(images) < 512:
        out, _ = _align_chunk(images, margin)
    else:
        from joblib import Parallel, delayed, effective_n_jobs

        chunks = np.array_split(images, max(effective_n_jobs(n_jobs) * 4, 1))
        parts = Parallel(n_jobs=n_jobs)(delayed(_align_chunk)(c, margin)
                                        for c in chunks if len(c))
        out = np.concatenate([p[0] for p in parts])
    out.setflags(write=False)
    _MEMO[key] = out
    while len(_MEMO) > 1 and (len(_MEMO) > _MEMO_ENTRIES
                              or sum(a.nbytes for a in _MEMO.values()) > _MEMO_BYTES):
        _MEMO.popitem(last=False)
    return out
