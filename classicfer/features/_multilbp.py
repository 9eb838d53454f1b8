"""Multi-scale LBP: grid histograms at several (P, R), optionally Hellinger or chi-square mapped."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImageTransformer
from ._lbp import LBP_METHODS, _grid_pair, lbp_histograms, lbp_n_bins


class MultiLBPFeatures(ImageTransformer):
    """Concatenated LBP grid histograms at several neighbourhoods.

    ``sqrt=True`` square-roots every histogram bin: the dot product of the
    mapped vectors is then the Bhattacharyya / Hellinger kernel between the
    histograms, an exact explicit kernel map for histogram features (no state,
    so the transformer stays deployable and a linear model can use it).
    ``chi2_steps=n`` (with ``sqrt=False``) applies instead scikit-learn's
    :class:`~sklearn.kernel_approximation.AdditiveChi2Sampler` with ``n`` sample
    steps (Vedaldi & Zisserman, 2012): the dot product then approximates the
    additive chi-square kernel, the classic kernel for LBP histograms (Ahonen et
    al., 2006), at ``2n - 1`` times the width. That map is also stateless.

    Parameters
    ----------
    scales : list of (P, R), default=((8, 1), (8, 2), (16, 2))
    grid : int or (int, int), default=6
    method : {'nri_uniform', 'uniform', 'default', 'ror'}, default='uniform'
        'uniform' keeps P+2 bins per cell, so P=16 stays small.
    sqrt : bool, default=True
    chi2_steps : {0, 1, 2, 3}, default=0
        0 = no chi-square map; 1-3 = ``AdditiveChi2Sampler(sample_steps=chi2_steps)``.
    n_jobs : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> MultiLBPFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 1368)
    """

    _parameter_constraints: ClassVar[dict] = {
        "scales": [tuple, list],
        "grid": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "method": [StrOptions(set(LBP_METHODS))],
        "sqrt": ["boolean"],
        "chi2_steps": [Interval(Integral, 0, 3, closed="both")],
    }

    def __init__(self, *, scales=((8, 1), (8, 2), (16, 2)), grid=6, method="uniform", sqrt=True,
                 chi2_steps=0, n_jobs=None):
        self.scales = scales
        self.grid = grid
        self.method = method
        self.sqrt = sqrt
        self.chi2_steps = chi2_steps
        self.n_jobs = n_jobs

    def _pairs(self):
        return [(int(p), float(r)) for p, r in self.scales]

    _param_error_name = "multilbp"

    def _check_more_params(self):
        pairs = self._pairs()
        if not pairs or any(not 1 <= p <= 24 or r <= 0 for p, r in pairs):
            raise ValueError(f"scales must be a non-empty list of [P, R] with 1 <= P <= 24 "
                             f"and R > 0, got {self.scales!r}")
        if self.chi2_steps and self.sqrt:
            raise ValueError("chi2_steps needs sqrt=False (the chi-square map takes the "
                             "histograms themselves)")

    def _min_size_for(self):
        gr, gc = _grid_pair(self.grid)
        r = int(np.ceil(max(r for _, r in self._pairs())))
        return max(gr, 2 * r + 1), max(gc, 2 * r + 1)

    def _n_features(self, shape):
        gr, gc = _grid_pair(self.grid)
        n = gr * gc * sum(lbp_n_bins(p, self.method) for p, _ in self._pairs())
        return n * (2 * self.chi2_steps - 1) if self.chi2_steps else n

    def _feature_prefix(self):
        return "multilbp_"

    def _describe_batch(self, images):
        parts = [lbp_histograms(images, p, r, grid=self.grid, method=self.method)
                 for p, r in self._pairs()]
        out = np.concatenate(parts, axis=1)
        if self.sqrt:
            np.sqrt(out, out=out)
        elif self.chi2_steps:
            from sklearn.kernel_approximation import AdditiveChi2Sampler

            out = AdditiveChi2Sampler(sample_steps=self.chi2_steps).fit_transform(out)
        return out.astype(np.float32, copy=False)
