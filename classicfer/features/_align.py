"""Eye-line re-alignment of face crops: the :class:`EyeAligner` step.

Dataset crops (FER-2013, CK+48) are framed by a face detector box: the eyes sit
at different heights, distances and angles from crop to crop, so a HOG cell or
an LBP grid cell covers a different part of the face each time. The aligner
finds the 68 dlib landmarks on each crop, then re-cuts it with
:func:`classicfer.face.align_face` (eye line horizontal, fixed inter-ocular
distance and eye height), the same geometry as the face stage's aligned crops.

Alignment is a step of its own, ahead of the descriptors: ``align='eyes'`` (and
``align_margin``) given to :func:`~classicfer.features.make_features` or
:func:`~classicfer.pipeline.make_pipeline` puts an :class:`EyeAligner` at the head
of the feature step (a :class:`~classicfer.features.DescriptorUnion`), which runs it
once per batch and hands the re-cut crops to the appearance descriptors (HOG, LBP,
Gabor...); the descriptors that find the landmarks themselves (``landmarks``,
``embedding``) see the crops as given. ``margin`` is the ``margin`` of
``align_face``: 0 puts the eyes 0.45 of the crop width apart, 0.36 of its height
down; negative values zoom in, positive ones add context.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import ImageTransformer

#: crops whose landmark eye distance is outside this fraction of the crop width,
#: or whose eye line is steeper than MAX_ROLL degrees, are kept as they are (the
#: shape predictor is given the whole crop as the face box, so on a non-face it
#: returns a mean-shape-like guess; re-cutting from such points would do harm)
IOD_RANGE = (0.15, 0.9)
MAX_ROLL = 40.0

#: values of the user-level ``align`` parameter
ALIGN_METHODS = ("none", "eyes")


def _align_chunk(images: np.ndarray, margin: float) -> np.ndarray:
    from ..face import align_face, eye_centers
    from ._dlib import crop_landmarks

    out = np.empty_like(images)
    h, w = images.shape[1:]
    for i, (im, p) in enumerate(zip(images, crop_landmarks(images), strict=True)):
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


class EyeAligner(ImageTransformer):
    """Re-cut each (H, W) uint8 crop around its eyes (see the module docstring).

    A stateless transformer: (N, H, W) crops in, (N, H, W) uint8 crops out, the
    crops the landmarks could not place (see :data:`IOD_RANGE`) unchanged.

    Parameters
    ----------
    margin : float, default=0.0
        Framing of the re-cut, from -0.3 to 1.0 (``margin`` of
        :func:`classicfer.face.align_face`); the user-level name is ``align_margin``.
    n_jobs : int or None, default=None
        Processes for large batches (joblib); None means one.

    Examples
    --------
    >>> import numpy as np
    >>> EyeAligner().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 48, 48)
    """

    _parameter_constraints: ClassVar[dict] = {
        "margin": [Interval(Real, -0.3, 1.0, closed="both")],
    }
    _param_error_name = "align"
    takes_aligned_crops: ClassVar[bool] = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["uint8"]  # crops in, crops out
        return tags

    def __init__(self, *, margin=0.0, n_jobs=None):
        self.margin = margin
        self.n_jobs = n_jobs

    def transform(self, X):
        """Re-cut each crop around its eyes: (N, H, W) -> (N, H, W) uint8."""
        return super().transform(X)

    def _n_features(self, shape):
        return int(shape[0]) * int(shape[1])

    def _feature_prefix(self):
        return "aligned_pixel_"

    def _describe_batch(self, images):
        return _align_chunk(images, float(self.margin))


def align_crops(images: np.ndarray, *, margin: float = 0.0, n_jobs=None) -> np.ndarray:
    """Re-cut each (H, W) uint8 crop around its eyes: ``EyeAligner(margin=...).transform``.

    Returns
    -------
    (N, H, W) uint8 ndarray
        Crops the landmarks could not place (see :data:`IOD_RANGE`) are unchanged.
    """
    return EyeAligner(margin=margin, n_jobs=n_jobs).transform(images)
