"""Local binary pattern histograms on a grid of cells (Ojala et al., 2002; Ahonen et al., 2006)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImageTransformer

LBP_METHODS = ("nri_uniform", "uniform", "default", "ror")


def lbp_n_bins(P: int, method: str) -> int:
    """Number of distinct codes of :func:`skimage.feature.local_binary_pattern`."""
    if method == "nri_uniform":
        return P * (P - 1) + 3
    if method == "uniform":
        return P + 2
    if method in ("default", "ror"):
        return 2 ** P
    raise ValueError(f"unknown LBP method {method!r}; choose from {', '.join(LBP_METHODS)}")


def _grid_pair(grid):
    if np.isscalar(grid):
        return int(grid), int(grid)
    a, b = grid
    return int(a), int(b)


def lbp_histograms(faces, P=8, R=1.0, *, grid=(6, 6), method="nri_uniform"):
    """Concatenated, per-cell normalised LBP histograms of a batch of crops.

    Parameters
    ----------
    faces : (N, M, K) ndarray
        Grayscale crops.
    P : int
        Number of circularly symmetric neighbours.
    R : float
        Radius of the circle, in pixels.
    grid : int or (int, int)
        Cells per axis; cell borders are ``floor(i * M / grid)`` so sizes that do
        not divide evenly still tile the whole crop.
    method : {'nri_uniform', 'uniform', 'default', 'ror'}
        Code mapping of :func:`skimage.feature.local_binary_pattern`:
        'nri_uniform' keeps the P*(P-1)+2 uniform patterns apart and pools the
        rest into one bin (59 bins for P=8, Ahonen et al.); 'uniform' is the
        rotation-invariant uniform mapping (P+2 bins); 'default' and 'ror' use
        all 2**P codes (ror: rotation invariant).

    Returns
    -------
    (N, grid_rows * grid_cols * n_bins) float32 ndarray
        Each cell's histogram sums to 1.

    References
    ----------
    .. [1] T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and
           rotation invariant texture classification with local binary patterns",
           IEEE TPAMI 24(7), 2002. :DOI:`10.1109/TPAMI.2002.1017623`
    .. [2] T. Ahonen, A. Hadid, M. Pietikainen, "Face description with local
           binary patterns", IEEE TPAMI 28(12), 2006. :DOI:`10.1109/TPAMI.2006.244`
    """
    from skimage.feature import local_binary_pattern

    faces = np.asarray(faces)
    n, h, w = faces.shape
    gr, gc = _grid_pair(grid)
    if gr > h or gc > w:
        raise ValueError(f"crop is {h}x{w}; an LBP grid of {gr}x{gc} cells needs at least "
                         f"{gr}x{gc} pixels (too small)")
    n_bins = lbp_n_bins(P, method)
    codes = np.empty((n, h, w), np.int64)
    for i in range(n):
        codes[i] = local_binary_pattern(faces[i], P, R, method)
    rows = (np.arange(h) * gr // h)[None, :, None]
    cols = (np.arange(w) * gc // w)[None, None, :]
    img_idx = np.arange(n)[:, None, None]
    idx = ((img_idx * gr + rows) * gc + cols) * n_bins + codes
    hist = np.bincount(idx.ravel(), minlength=n * gr * gc * n_bins).astype(np.float32)
    hist = hist.reshape(n, gr * gc, n_bins)
    hist /= np.maximum(hist.sum(-1, keepdims=True), 1)
    return hist.reshape(n, -1)


class LBPFeatures(ImageTransformer):
    """Grid of LBP histograms of each crop (see :func:`lbp_histograms`).

    Parameters
    ----------
    P : int, default=8
    R : float, default=1.0
    grid : int or (int, int), default=6
    method : {'nri_uniform', 'uniform', 'default', 'ror'}, default='nri_uniform'
    n_jobs : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> LBPFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 2124)
    """

    _parameter_constraints: ClassVar[dict] = {
        "P": [Interval(Integral, 1, 24, closed="both")],
        "R": [Interval(Real, 0, None, closed="neither")],
        "grid": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "method": [StrOptions(set(LBP_METHODS))],
    }

    def __init__(self, *, P=8, R=1.0, grid=6, method="nri_uniform", n_jobs=None):
        self.P = P
        self.R = R
        self.grid = grid
        self.method = method
        self.n_jobs = n_jobs

    _param_error_name = "lbp"

    def _min_size_for(self):
        gr, gc = _grid_pair(self.grid)
        r = int(np.ceil(self.R))
        return max(gr, 2 * r + 1), max(gc, 2 * r + 1)

    def _n_features(self, shape):
        gr, gc = _grid_pair(self.grid)
        return gr * gc * lbp_n_bins(self.P, self.method)

    def _feature_prefix(self):
        return "lbp_"

    def _describe_batch(self, images):
        return lbp_histograms(images, self.P, self.R, grid=self.grid, method=self.method)
