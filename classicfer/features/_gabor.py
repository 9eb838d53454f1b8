"""Gabor filter-bank magnitudes pooled on a grid of cells.

After Lyons et al., 1998 and Bartlett et al., 2005.
"""

from __future__ import annotations

import functools
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import ImageTransformer
from ._lbp import _grid_pair


def gabor_bank(wavelengths=(4.0, 6.0, 8.0), n_orientations=8):
    """Even/odd Gabor kernel pairs: list of (even, odd) float32 kernels.

    ``sigma = 0.56 * wavelength`` (about one octave of bandwidth), aspect 0.5,
    kernel side ``2 * round(1.5 * sigma) + 1``; each kernel is zero-mean so flat
    regions give no response. Banks are built once per parameter set (a kiosk
    describing one crop per call would otherwise rebuild 48 kernels each time).
    """
    return list(_bank(tuple(float(v) for v in wavelengths), int(n_orientations)))


@functools.lru_cache(maxsize=16)
def _bank(wavelengths, n_orientations):
    import cv2

    out = []
    for lam in wavelengths:
        sigma = 0.56 * float(lam)
        k = 2 * round(1.5 * sigma) + 1
        for o in range(int(n_orientations)):
            theta = np.pi * o / n_orientations
            pair = []
            for psi in (0.0, np.pi / 2):
                g = cv2.getGaborKernel((k, k), sigma, theta, float(lam), 0.5, psi, cv2.CV_32F)
                g = g - g.mean()
                g /= max(float(np.abs(g).sum()), 1e-6)
                g = g.astype(np.float32)
                g.setflags(write=False)
                pair.append(g)
            out.append(tuple(pair))
    return tuple(out)


def gabor_features(faces, wavelengths=(4.0, 6.0, 8.0), n_orientations=8, grid=6, sqrt=True):
    """Mean Gabor magnitude of each filter in each grid cell.

    Parameters
    ----------
    faces : (N, H, W) uint8 crops
    wavelengths : sequence of float
        Wavelengths in pixels (one scale each).
    n_orientations : int
    grid : int or (int, int)
        Cells per axis (borders at ``floor(i * H / grid)``).
    sqrt : bool
        Square-root the pooled magnitudes (variance stabilising, as for
        Hellinger-mapped histograms).

    Returns
    -------
    (N, len(wavelengths) * n_orientations * gr * gc) float32
    """
    import cv2

    faces = np.asarray(faces)
    n, h, w = faces.shape
    gr, gc = _grid_pair(grid)
    bank = gabor_bank(wavelengths, n_orientations)
    rows = np.minimum(np.arange(h) * gr // h, gr - 1)
    cols = np.minimum(np.arange(w) * gc // w, gc - 1)
    cell = (rows[:, None] * gc + cols[None, :]).ravel()
    counts = np.bincount(cell, minlength=gr * gc).astype(np.float32)
    out = np.empty((n, len(bank), gr * gc), np.float32)
    for i in range(n):
        img = faces[i].astype(np.float32) / 255.0
        for j, (even, odd) in enumerate(bank):
            re = cv2.filter2D(img, cv2.CV_32F, even, borderType=cv2.BORDER_REFLECT)
            im = cv2.filter2D(img, cv2.CV_32F, odd, borderType=cv2.BORDER_REFLECT)
            mag = cv2.magnitude(re, im).ravel()
            out[i, j] = np.bincount(cell, weights=mag, minlength=gr * gc) / counts
    if sqrt:
        np.sqrt(out, out=out)
    return out.reshape(n, -1)


class GaborFeatures(ImageTransformer):
    """Gabor filter-bank magnitudes pooled on a grid (see :func:`gabor_features`).

    Stateless: rebuilt at run time from its parameters.

    Parameters
    ----------
    wavelengths : tuple of float, default=(4.0, 6.0, 8.0)
    n_orientations : int, default=8
    grid : int or (int, int), default=6
    sqrt : bool, default=True
    n_jobs : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> GaborFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 864)
    """

    _parameter_constraints: ClassVar[dict] = {
        "wavelengths": [tuple, list],
        "n_orientations": [Interval(Integral, 1, 32, closed="both")],
        "grid": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "sqrt": ["boolean"],
    }

    def __init__(self, *, wavelengths=(4.0, 6.0, 8.0), n_orientations=8, grid=6, sqrt=True,
                 n_jobs=None):
        self.wavelengths = wavelengths
        self.n_orientations = n_orientations
        self.grid = grid
        self.sqrt = sqrt
        self.n_jobs = n_jobs

    _param_error_name = "gabor"

    def _check_more_params(self):
        if len(self.wavelengths) == 0 or any(float(x) < 2 for x in self.wavelengths):
            raise ValueError(f"wavelengths must be a non-empty list of values >= 2 pixels, "
                             f"got {self.wavelengths!r}")

    def _min_size_for(self):
        gr, gc = _grid_pair(self.grid)
        return max(gr, 8), max(gc, 8)

    def _n_features(self, shape):
        gr, gc = _grid_pair(self.grid)
        return len(self.wavelengths) * int(self.n_orientations) * gr * gc

    def _feature_prefix(self):
        return "gabor_"

    def _describe_batch(self, images):
        return gabor_features(images, tuple(self.wavelengths), self.n_orientations,
                              self.grid, self.sqrt)
