"""The feature step: descriptors side by side, behind an optional alignment step."""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import FeatureUnion

from ..exceptions import ConfigError
from ._dlib import shared_landmarks


def _transform_one(part, X, weight):
    out = part.transform(X)
    return out if weight is None else out * weight


def _fit_transform_one(part, X, y, weight):
    out = part.fit_transform(X, y)
    return out if weight is None else out * weight


class DescriptorUnion(FeatureUnion):
    """Descriptors side by side (a ``FeatureUnion``), the alignment step ahead of them.

    The parts are named by feature (parameters read ``features__hog__orientations``
    in a pipeline). ``aligner`` (an :class:`~classicfer.features.EyeAligner`, or None)
    runs once per batch; the parts named in ``aligned`` describe its output, the
    others the crops as given. Within one call the aligner and the ``landmarks``
    descriptor share one pass of the landmark predictor
    (:func:`classicfer.features._dlib.shared_landmarks`); nothing is kept after it.

    Parameters
    ----------
    transformer_list : list of (str, transformer)
        The descriptors, in output order.
    aligner : transformer or None, default=None
        The alignment step (crops in, crops of the same size out).
    aligned : list of str or None, default=None
        The parts that describe the aligned crops; None: every part whose
        ``takes_aligned_crops`` is true (the appearance descriptors).
    n_jobs : int or None, default=None
        Parts run in turn (no joblib dispatch, ~2 ms per kiosk crop saved) unless
        ``n_jobs`` asks for processes, as in ``FeatureUnion``.
    transformer_weights, verbose, verbose_feature_names_out
        As in :class:`sklearn.pipeline.FeatureUnion`.
    """

    def __init__(self, transformer_list, *, aligner=None, aligned=None, n_jobs=None,
                 transformer_weights=None, verbose=False, verbose_feature_names_out=True):
        super().__init__(transformer_list, n_jobs=n_jobs, transformer_weights=transformer_weights,
                         verbose=verbose, verbose_feature_names_out=verbose_feature_names_out)
        self.aligner = aligner
        self.aligned = aligned

    def aligned_parts(self) -> list[str]:
        """Names of the parts that describe the aligned crops (none without an aligner)."""
        if self.aligner is None:
            return []
        if self.aligned is not None:
            return [str(n) for n in self.aligned]
        return [n for n, t in self.transformer_list if getattr(t, "takes_aligned_crops", False)]

    def _check(self) -> None:
        self._validate_transformers()
        self._validate_transformer_weights()
        if self.aligner is not None and not hasattr(self.aligner, "transform"):
            raise ConfigError(f"aligner must be a transformer (e.g. EyeAligner()) or None, "
                              f"got {self.aligner!r}")
        names = [n for n, _ in self.transformer_list]
        unknown = [n for n in self.aligned or () if n not in names]
        if unknown:
            raise ConfigError(f"aligned names {', '.join(map(repr, unknown))}, which are not "
                              f"parts of this union ({', '.join(names)})")

    def _inputs(self, X):
        """(part, weight, input) of each part: the aligned crops or ``X`` itself."""
        targets = set(self.aligned_parts())
        aligned = self.aligner.transform(X) if targets else None
        return [(t, w, aligned if name in targets else X) for name, t, w in self._iter()]

    def _empty(self, X):
        return np.zeros((len(X), 0), np.float32)

    def fit(self, X, y=None, **fit_params):
        """Fit each part on the crops it describes (the descriptors learn nothing)."""
        self._check()
        if self.aligner is not None:
            self.aligner.fit(X)
        with shared_landmarks():
            for part, _, x in self._inputs(X):
                part.fit(x, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """:meth:`fit` then :meth:`transform`, aligning the crops once."""
        self._check()
        if self.aligner is not None:
            self.aligner.fit(X)
        with shared_landmarks():
            Xs = [_fit_transform_one(part, x, y, w) for part, w, x in self._inputs(X)]
        return self._hstack(Xs) if Xs else self._empty(X)

    def transform(self, X):
        """Align the crops (when asked), describe them, and put the parts side by side."""
        self._check()
        with shared_landmarks():
            inputs = self._inputs(X)
            if self.n_jobs in (None, 1):
                Xs = [_transform_one(part, x, w) for part, w, x in inputs]
            else:
                from joblib import Parallel, delayed

                Xs = Parallel(n_jobs=self.n_jobs)(delayed(_transform_one)(part, x, w)
                                                  for part, w, x in inputs)
        return self._hstack(Xs) if Xs else self._empty(X)
