"""Fine HOG on the expressive regions of an aligned crop (brows + eyes, mouth).

FER-2013 and CK+48 crops are roughly aligned (eyes near 0.3-0.4 of the height,
mouth near 0.75), so the regions are fixed fractions of the crop rather than
per-image landmark detections: no detector runs, the descriptor is stateless and
costs one HOG per region. For unaligned crops, align first (``align='eyes'``, the
:class:`~classicfer.features.EyeAligner` step, or :class:`classicfer.face.FaceCropper`).
"""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import ImageTransformer

#: region name -> (top, bottom, left, right) as fractions of the crop
DEFAULT_REGIONS = {
    "brows_eyes": (0.10, 0.52, 0.0, 1.0),
    "mouth": (0.56, 1.0, 0.15, 0.85),
}


def _region_boxes(regions, h, w):
    boxes = []
    for top, bottom, left, right in regions.values():
        y0, y1 = round(top * h), round(bottom * h)
        x0, x1 = round(left * w), round(right * w)
        boxes.append((y0, y1, x0, x1))
    return boxes


class RegionHOGFeatures(ImageTransformer):
    """HOG with small cells on fixed expressive regions of the crop.

    Parameters
    ----------
    regions : dict name -> [top, bottom, left, right] fractions, default brows+eyes and mouth
    orientations : int, default=9
    pixels_per_cell : int, default=4
    cells_per_block : int, default=2
    n_jobs : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> RegionHOGFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape[0]
    2
    """

    _parameter_constraints: ClassVar[dict] = {
        "regions": [dict, None],
        "orientations": [Interval(Integral, 2, 36, closed="both")],
        "pixels_per_cell": [Interval(Integral, 2, None, closed="left")],
        "cells_per_block": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, regions=None, orientations=9, pixels_per_cell=4, cells_per_block=2,
                 n_jobs=None):
        self.regions = regions
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.n_jobs = n_jobs

    def _regions(self):
        return dict(self.regions) if self.regions else dict(DEFAULT_REGIONS)

    _param_error_name = "regionhog"

    def _check_more_params(self):
        for name, box in self._regions().items():
            top, bottom, left, right = (float(v) for v in box)
            if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
                raise ValueError(f"region {name!r}: expected [top, bottom, left, right] "
                                 f"fractions with top < bottom and left < right, got {box!r}")

    def _min_size_for(self):
        return 24, 24

    def _cells(self, shape):
        h, w = shape
        c, b = int(self.pixels_per_cell), int(self.cells_per_block)
        out = []
        for y0, y1, x0, x1 in _region_boxes(self._regions(), h, w):
            cy, cx = (y1 - y0) // c, (x1 - x0) // c
            out.append(max(cy - b + 1, 0) * max(cx - b + 1, 0) * b * b * int(self.orientations))
        return out

    def _n_features(self, shape):
        return int(sum(self._cells(shape)))

    def _feature_prefix(self):
        return "regionhog_"

    def _describe_batch(self, images):
        from skimage.feature import hog

        n, h, w = images.shape
        boxes = _region_boxes(self._regions(), h, w)
        c, b = int(self.pixels_per_cell), int(self.cells_per_block)
        out = np.empty((n, self._n_features((h, w))), np.float32)
        for i in range(n):
            parts = [hog(images[i, y0:y1, x0:x1], orientations=int(self.orientations),
                         pixels_per_cell=(c, c), cells_per_block=(b, b),
                         block_norm="L2-Hys", feature_vector=True)
                     for y0, y1, x0, x1 in boxes]
            out[i] = np.concatenate(parts)
        return out
