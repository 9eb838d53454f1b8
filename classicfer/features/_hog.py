"""Histograms of oriented gradients (Dalal & Triggs, 2005), batched."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImageTransformer


def _pair(v):
    if np.isscalar(v):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def hog_descriptors(faces, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), *,
                    block_norm="L2-Hys", transform_sqrt=False, chunk=2048):
    """HOG descriptors of a batch of grayscale crops, vectorised over the batch.

    Parameters
    ----------
    faces : (N, M, K) ndarray
        Grayscale crops (any real dtype; uint8 expected).
    orientations : int
        Number of unsigned orientation bins over [0, 180) degrees.
    pixels_per_cell : int or (int, int)
        Cell size in pixels (rows, columns).
    cells_per_block : int or (int, int)
        Block size in cells; blocks overlap with a stride of one cell.
    block_norm : {'L2-Hys', 'L2', 'L1', 'L1-sqrt'}
        Block normalisation, as in :func:`skimage.feature.hog`.
        'L2-Hys' is L2, clipping at 0.2, then L2 again (Dalal & Triggs).
    transform_sqrt : bool
        Apply power-law compression (square root) to the image first.

    Returns
    -------
    (N, F) float32 ndarray
        F = n_blocks_row * n_blocks_col * cells_per_block[0] * cells_per_block[1] * orientations,
        with n_blocks = (M // pixels_per_cell - cells_per_block + 1) per axis.

    Raises
    ------
    ValueError
        If the crop is too small for one block.

    Notes
    -----
    Same algorithm and feature order as :func:`skimage.feature.hog` with
    ``feature_vector=True`` (central differences, each pixel votes its gradient
    magnitude into a single orientation bin, cell means, overlapping blocks),
    computed for many images at once with ``np.bincount`` instead of a per-image
    Cython loop; the test suite checks it against scikit-image.

    References
    ----------
    .. [1] N. Dalal and B. Triggs, "Histograms of oriented gradients for human
           detection", CVPR 2005. :DOI:`10.1109/CVPR.2005.177`
    """
    faces = np.asarray(faces)
    if faces.ndim != 3:
        raise ValueError(f"expected (N, M, K) crops, got shape {faces.shape}")
    cr, cc = _pair(pixels_per_cell)
    br, bc = _pair(cells_per_block)
    n, h, w = faces.shape
    ncr, ncc = h // cr, w // cc
    nbr, nbc = ncr - br + 1, ncc - bc + 1
    if nbr < 1 or nbc < 1:
        raise ValueError(f"crop is {h}x{w}; hog with {cr}x{cc}-pixel cells and {br}x{bc}-cell "
                         f"blocks needs at least {cr * br}x{cc * bc} (too small)")
    out = np.empty((n, nbr * nbc * br * bc * orientations), np.float32)
    for s in range(0, n, chunk):
        out[s:s + chunk] = _hog_chunk(faces[s:s + chunk], orientations, cr, cc, br, bc,
                                      block_norm, transform_sqrt)
    return out


def _hog_chunk(faces, n_or, cr, cc, br, bc, block_norm, transform_sqrt):
    img = faces.astype(np.float64)
    if transform_sqrt:
        img = np.sqrt(img)
    n, h, w = img.shape
    g_row = np.zeros_like(img)
    g_col = np.zeros_like(img)
    g_row[:, 1:-1, :] = img[:, 2:, :] - img[:, :-2, :]
    g_col[:, :, 1:-1] = img[:, :, 2:] - img[:, :, :-2]
    ncr, ncc = h // cr, w // cc
    g_row = g_row[:, :ncr * cr, :ncc * cc]
    g_col = g_col[:, :ncr * cr, :ncc * cc]
    mag = np.hypot(g_row, g_col)
    ori = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    width = 180.0 / n_or
    # pixel p votes into bin i when i*width <= ori < (i+1)*width (skimage's comparisons)
    edges = width * np.arange(1, n_or + 1)
    b = np.searchsorted(edges, ori, side="right")
    b = np.minimum(b, n_or - 1)
    rows = (np.arange(ncr * cr) // cr)[None, :, None]
    cols = (np.arange(ncc * cc) // cc)[None, None, :]
    img_idx = np.arange(n)[:, None, None]
    idx = ((img_idx * ncr + rows) * ncc + cols) * n_or + b
    hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=n * ncr * ncc * n_or)
    hist = hist.reshape(n, ncr, ncc, n_or) / (cr * cc)
    nbr, nbc = ncr - br + 1, ncc - bc + 1
    # blocks: (n, nbr, nbc, br, bc, n_or)
    sn, sr, sc, so = hist.strides
    blocks = np.lib.stride_tricks.as_strided(
        hist, shape=(n, nbr, nbc, br, bc, n_or), strides=(sn, sr, sc, sr, sc, so), writeable=False)
    blocks = blocks.reshape(n, nbr, nbc, -1)
    eps = 1e-5
    if block_norm == "L1":
        out = blocks / (np.abs(blocks).sum(-1, keepdims=True) + eps)
    elif block_norm == "L1-sqrt":
        out = np.sqrt(blocks / (np.abs(blocks).sum(-1, keepdims=True) + eps))
    elif block_norm == "L2":
        out = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + eps ** 2)
    else:  # L2-Hys
        out = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + eps ** 2)
        out = np.minimum(out, 0.2)
        out = out / np.sqrt((out ** 2).sum(-1, keepdims=True) + eps ** 2)
    return out.reshape(n, -1).astype(np.float32)


class HOGFeatures(ImageTransformer):
    """HOG descriptor of each face crop (see :func:`hog_descriptors`).

    Parameters
    ----------
    orientations : int, default=9
    pixels_per_cell : int, default=6
        Square cells of this many pixels (6 gives an 8x8 cell grid on 48x48 crops).
    cells_per_block : int, default=2
    block_norm : {'L2-Hys', 'L2', 'L1', 'L1-sqrt'}, default='L2-Hys'
    transform_sqrt : bool, default=False
    n_jobs : int or None, default=None
        Processes for large batches (joblib); None means one.

    Examples
    --------
    >>> import numpy as np
    >>> HOGFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 1764)
    """

    _parameter_constraints: ClassVar[dict] = {
        "orientations": [Interval(Integral, 2, 360, closed="both")],
        "pixels_per_cell": [Interval(Integral, 2, None, closed="left"), tuple, list],
        "cells_per_block": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "block_norm": [StrOptions({"L2-Hys", "L2", "L1", "L1-sqrt"})],
        "transform_sqrt": ["boolean"],
    }

    def __init__(self, *, orientations=9, pixels_per_cell=6, cells_per_block=2,
                 block_norm="L2-Hys", transform_sqrt=False, n_jobs=None):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.n_jobs = n_jobs

    _param_error_name = "hog"

    def _min_size_for(self):
        cr, cc = _pair(self.pixels_per_cell)
        br, bc = _pair(self.cells_per_block)
        return cr * br, cc * bc

    def _n_features(self, shape):
        cr, cc = _pair(self.pixels_per_cell)
        br, bc = _pair(self.cells_per_block)
        nbr, nbc = shape[0] // cr - br + 1, shape[1] // cc - bc + 1
        return nbr * nbc * br * bc * self.orientations

    def _feature_prefix(self):
        return "hog_"

    def _describe_batch(self, images):
        return hog_descriptors(images, self.orientations, self.pixels_per_cell,
                               self.cells_per_block, block_norm=self.block_norm,
                               transform_sqrt=self.transform_sqrt)
