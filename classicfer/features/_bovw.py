"""Bag of visual words over dense SIFT-like descriptors, with a spatial pyramid.

The dense descriptors are SIFT's layout computed the HOG way: 8 orientation bins
in a 4x4 grid of ``cell``-pixel cells (128 numbers, L2-Hys normalised), one per
``cell`` pixels in each direction (:func:`dense_descriptors`). Each descriptor is
softly assigned to its ``soft`` nearest visual words (weights ``exp(-d2 / s)``
with ``s`` the vocabulary's mean squared distance to the nearest word) and the
assignments are summed per cell of a spatial pyramid (1x1, 2x2, 4x4 by default),
L1-normalised per cell and square-rooted (the Hellinger map, so a linear or RBF
kernel on the result behaves like a histogram kernel), as in the dense-SIFT bag
of words of Ionescu, Popescu and Grozea (2013).

The vocabulary is fixed and shipped with the package (``classicfer/features/data``,
learned by ``scripts/learn_bovw_vocabulary.py`` from FER-2013 Training crops with
MiniBatchKMeans), so the transformer stays stateless like every other descriptor:
a deployed model rebuilds it from its JSON parameters, nothing is pickled.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from importlib import resources
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..exceptions import ConfigError, ModelError
from ._base import ImageTransformer
from ._hog import hog_descriptors

#: shipped vocabularies: name -> file stem in classicfer/features/data
VOCABULARIES = {"fer2013-k64": "bovw_fer2013_k64"}


def dense_descriptors(faces, cell: int = 4) -> np.ndarray:
    """SIFT-layout descriptors on a dense grid: (N, n_positions, 128) float32.

    One descriptor per block of 4x4 cells of ``cell`` pixels (a ``4 * cell``-pixel
    patch), blocks every ``cell`` pixels; 8 orientation bins, L2-Hys normalised.
    Positions are in row-major order over ``(H // cell - 3) x (W // cell - 3)``.
    """
    faces = np.asarray(faces)
    d = hog_descriptors(faces, orientations=8, pixels_per_cell=cell, cells_per_block=4)
    return d.reshape(len(faces), -1, 128)


def _positions(shape, cell):
    """Relative (row, col) centre of each dense descriptor, in [0, 1)."""
    ny, nx = shape[0] // cell - 3, shape[1] // cell - 3
    cy = (np.arange(ny) * cell + 2 * cell) / shape[0]
    cx = (np.arange(nx) * cell + 2 * cell) / shape[1]
    return np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2)


@functools.lru_cache(maxsize=4)
def load_vocabulary(name: str):
    """``(words (K, 128) float32, scale float)`` of a shipped vocabulary, checksum verified."""
    if name not in VOCABULARIES:
        raise ConfigError(f"unknown vocabulary {name!r}; choose from {', '.join(VOCABULARIES)}")
    stem = VOCABULARIES[name]
    base = resources.files("classicfer.features") / "data"
    meta = json.loads((base / f"{stem}.json").read_text())
    return read_vocabulary((base / f"{stem}.npy").read_bytes(), meta, name=name)


def read_vocabulary(raw: bytes, meta: dict, *, name: str = "vocabulary"):
    """Words and scale from a ``.npy`` file's bytes and its JSON sidecar.

    Refuses a file whose sha256 differs from the sidecar's, and never unpickles.
    """
    if hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
        raise ModelError(f"{name}: the .npy file does not match the sha256 in its .json "
                         "sidecar (damaged or replaced file)")
    try:
        words = np.load(io.BytesIO(raw), allow_pickle=False).astype(np.float32)
    except ValueError as e:
        raise ModelError(f"{name}: not a numeric .npy array ({e})") from None
    if words.ndim != 2 or words.shape[1] != 128:
        raise ModelError(f"{name}: expected (K, 128) words, got shape {words.shape}")
    words.setflags(write=False)
    return words, float(meta["scale"])


def bovw_encode(descriptors, positions, words, scale, *, pyramid=(1, 2, 4), soft=5):
    """Spatial-pyramid soft bag of words of (N, P, D) descriptors: (N, K * sum(L*L)) float32."""
    n, p, _ = descriptors.shape
    k = len(words)
    soft = min(int(soft), k)
    d = descriptors.reshape(n * p, -1)
    d2 = (d * d).sum(1, keepdims=True) - 2.0 * d @ words.T + (words * words).sum(1)
    np.maximum(d2, 0.0, out=d2)
    if soft == 1:
        idx = d2.argmin(1)[:, None]
    else:
        idx = np.argpartition(d2, soft - 1, axis=1)[:, :soft]
    w = np.exp(-np.take_along_axis(d2, idx, 1) / scale)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    assign = np.zeros((n * p, k), np.float32)
    np.put_along_axis(assign, idx, w.astype(np.float32), 1)
    assign = assign.reshape(n, p, k)
    parts = []
    for level in pyramid:
        cy = np.minimum((positions[:, 0] * level).astype(int), level - 1)
        cx = np.minimum((positions[:, 1] * level).astype(int), level - 1)
        cell = cy * level + cx
        onehot = np.zeros((level * level, p), np.float32)
        onehot[cell, np.arange(p)] = 1.0
        h = np.einsum("cp,npk->nck", onehot, assign)
        h /= np.maximum(h.sum(-1, keepdims=True), 1e-12)
        parts.append(np.sqrt(h).reshape(n, -1))
    return np.concatenate(parts, axis=1).astype(np.float32)


class BoVWFeatures(ImageTransformer):
    """Dense SIFT-like descriptors encoded as a spatial-pyramid bag of visual words.

    Parameters
    ----------
    cell : int, default=4
        Cell size of the dense descriptors (patch = 4 cells, stride = 1 cell). The
        shipped vocabulary was learned at 4.
    vocabulary : {'fer2013-k64'}, default='fer2013-k64'
        Shipped visual vocabulary (64 words learned on FER-2013 Training crops).
    pyramid : tuple of int, default=(1, 2, 4)
        Grid sizes of the spatial pyramid levels.
    soft : int, default=5
        Number of nearest words each descriptor is spread over (1 = hard assignment).
    n_jobs
        As for :class:`~classicfer.features.HOGFeatures`.

    Examples
    --------
    >>> import numpy as np
    >>> BoVWFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 1344)
    """

    _parameter_constraints: ClassVar[dict] = {
        "cell": [Interval(Integral, 2, None, closed="left")],
        "vocabulary": [StrOptions(set(VOCABULARIES))],
        "pyramid": [tuple, list],
        "soft": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, cell=4, vocabulary="fer2013-k64", pyramid=(1, 2, 4), soft=5,
                 n_jobs=None):
        self.cell = cell
        self.vocabulary = vocabulary
        self.pyramid = pyramid
        self.soft = soft
        self.n_jobs = n_jobs

    _param_error_name = "bovw"

    def _check_more_params(self):
        if not self.pyramid or not all(isinstance(v, (int, np.integer)) and 1 <= v <= 8
                                       for v in self.pyramid):
            raise ValueError(f"pyramid must be a non-empty list of grid sizes 1..8, "
                             f"got {self.pyramid!r}")

    def _min_size_for(self):
        return 4 * self.cell, 4 * self.cell

    def _n_features(self, shape):
        words, _ = load_vocabulary(self.vocabulary)
        return len(words) * sum(int(v) ** 2 for v in self.pyramid)

    def _feature_prefix(self):
        return "bovw_"

    def _describe_batch(self, images):
        words, scale = load_vocabulary(self.vocabulary)
        pos = _positions(images.shape[1:], self.cell)
        out = []
        for s in range(0, len(images), 1024):
            d = dense_descriptors(images[s:s + 1024], self.cell)
            out.append(bovw_encode(d, pos, words, scale, pyramid=tuple(self.pyramid),
                                   soft=self.soft))
        return np.concatenate(out, axis=0)
