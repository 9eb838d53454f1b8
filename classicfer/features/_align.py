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

from collections import OrderedDict
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

#: crops whose landmark eye distance is outside this fraction of the crop width,
#: or whose eye line is steeper than MAX_ROLL degrees, are kept as they are (the
#: shape predictor is given the whole crop as the face box, so on a non-face it
#: returns a mean-shape-like guess; re-cutting from such points would do harm)
IOD_RANGE = (0.15, 0.9)
MAX_ROLL = 40.0

ALIGN_OPTIONS = ("none", "eyes")
#: the two parameters every alignable descriptor declares
ALIGN_CONSTRAINTS = {"align": [StrOptions(set(ALIGN_OPTIONS))],
                     "align_margin": [Interval(Real, -0.3, 1.0, closed="both")]}

#: memos of recent batches: large ones (dataset features) and small ones (kiosk crops)
_MEMO: OrderedDict = OrderedDict()
_SMALL: OrderedDict = OrderedDict()
_MEMO_BYTES = 512 * 2**20
_MEMO_ENTRIES = 8
_MEMO_MIN_BATCH = 64


def _align_chunk(images: np.ndarray, margin: float) -> np.ndarray:
    from ..face import align_face, eye_centers
    from ._dlib import crop_landmarks

    out = np.empty_like(images)
    h, w = images.shape[1:]
    for i, (im, p) in enumerate(zip(images, crop_landmarks(images))):
        left, right = eye_centers(p, "ibug68")
        d = right - left
        iod = float(np.hypot(*d)) / w
        roll = abs(np.degrees(np.arctan2(d[1], d[0])))
        if not (IOD_RANGE[0] <= iod <= IOD_RANGE[1]) or roll > MAX_ROLL:
            out[i] = im
            continue
        crop = align_face(im, p, size=w, margin=margin, gray=True, border="replicate")
        out[i] = crop if h == w else _resize(crop, w, h)
    return out


def _resize(crop, w, h):
    import cv2

    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def remember(memo: OrderedDict, key, value, *, entries: int, max_bytes: int | None = None):
    """Put ``value`` in the LRU ``memo``; drop the oldest beyond ``entries`` (or
    ``max_bytes`` of arrays), always keeping the newest. Returns ``value``."""
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > 1 and (len(memo) > entries or (
            max_bytes is not None and sum(a.nbytes for a in memo.values()) > max_bytes)):
        memo.popitem(last=False)
    return value


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
    from .cache import images_key

    images = np.ascontiguousarray(images, dtype=np.uint8)
    small = len(images) < _MEMO_MIN_BATCH
    key = f"{images_key(images)}|{float(margin)!r}"
    memo = _SMALL if small else _MEMO
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    if n_jobs in (None, 1) or len(images) < 512:
        out = _align_chunk(images, margin)
    else:
        from joblib import Parallel, delayed, effective_n_jobs

        chunks = np.array_split(images, max(effective_n_jobs(n_jobs) * 4, 1))
        out = np.concatenate(Parallel(n_jobs=n_jobs)(delayed(_align_chunk)(c, margin)
                                                     for c in chunks if len(c)))
    out.setflags(write=False)
    return remember(memo, key, out, entries=_MEMO_ENTRIES, max_bytes=_MEMO_BYTES)
