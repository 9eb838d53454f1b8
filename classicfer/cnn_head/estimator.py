"""The CNN head as a scikit-learn classifier, so the shared harness can fit it per fold.

``classicfer.evaluation.evaluate(CNNClassifier(init=...), dataset, "subject-kfold")``
fine-tunes a FER-2013 or FER+ checkpoint (any network family, trained on 48x48 or 64x64
crops) on each fold's training subjects and scores the held-out ones exactly as it scores
the classical pipelines (same folds, metrics and reports).
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..exceptions import DataError


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Train (or fine-tune) a CNN of :mod:`classicfer.cnn_head.model` on same-size crops.

    Parameters
    ----------
    init : str or None
        A checkpoint (``best.pt``) to fine-tune: its network (family and layers),
        input size and normalisation are kept, the head is new (transfer learning; the first
        ``freeze_epochs`` train only the head). None trains from scratch with
        ``widths``.
    epochs : int
        Epochs of the one-cycle schedule, the same for every fit (no selection).
    lr : float or None
        Peak learning rate; None means 1e-3 with ``init``, 3e-3 without.
    members : int
        Networks per fit (seeds ``seed + 1000 * m``); their probabilities are averaged.
    tta_flip : bool
        Average each crop's logits with its mirror image's at prediction time.
    size : int or None
        Side the crops are resized to (``size`` x ``size``) for training and prediction.
        None keeps the crops as given, except with ``init``: then the crops are resized to
        the checkpoint's input size (a network trained on 64x64 crops is fine-tuned on
        48x48 crops resized to 64x64).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    models_ : list of (torch.nn.Module, float, float)
        Each member's network with its input normalisation (mean, std).
    input_size_ : (int, int)
        (height, width) of the crops the networks were trained on; :meth:`predict_proba`
        resizes crops of another size to it.

    Notes
    -----
    Parameters are checked against ``_parameter_constraints`` when ``fit`` starts
    (scikit-learn's ``InvalidParameterError``, a ``ValueError``).
    """

    _parameter_constraints: ClassVar[dict] = {
        "init": [str, os.PathLike, None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "members": [Interval(Integral, 1, None, closed="left")],
        "tta_flip": ["boolean"],
        "freeze_epochs": [Interval(Integral, 0, None, closed="left")],
        "widths": ["array-like"],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "threads": [Interval(Integral, 1, None, closed="left"), None],
        "size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, init=None, *, epochs: int = 14, lr: float | None = None,
                 batch_size: int = 32, members: int = 1, tta_flip: bool = True,
                 freeze_epochs: int = 1, widths=(16, 32, 64, 128), seed: int = 0,
                 threads: int | None = 1, size: int | None = None):
        self.init = init
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.members = members
        self.tta_flip = tta_flip
        self.freeze_epochs = freeze_epochs
        self.widths = widths
        self.seed = seed
        self.threads = threads
        self.size = size

    def fit(self, X, y):
        """Train ``members`` networks (from ``init`` when given) on the crops.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W)
            Face crops, all of one size (resized as ``size`` says); NaN, infinite or
            sparse input is refused.
        y : array-like of shape (n_samples,)
            Class labels; ``classes_`` is their sorted unique values.

        Returns
        -------
        self : CNNClassifier
        """
        from .train import checkpoint_size, default_lr, fit, load_checkpoint, start_from

        self._validate_params()
        y = _labels(y)  # before the crops: a bad target is reported whatever X is
        init_state, norm, config, freeze = None, None, {"widths": tuple(self.widths)}, 0
        size = None if self.size is None else (self.size, self.size)
        if self.init is not None:  # always a new head
            ck = load_checkpoint(self.init)[1]
            init_state, norm, config = start_from(ck)
            freeze = self.freeze_epochs
            size = size or checkpoint_size(ck)
        x = _crops(X, size)  # validated, converted and resized once
        self.input_size_ = tuple(int(v) for v in x.shape[-2:])
        self.classes_ = np.unique(y)
        yi = np.searchsorted(self.classes_, y)
        lr = self.lr or default_lr(self.init is not None)
        self.models_ = []
        for m in range(self.members):
            res = fit(x, yi, None, None, classes=[str(c) for c in self.classes_],
                      epochs=self.epochs, batch_size=self.batch_size, lr=lr,
                      seed=self.seed + 1000 * m, init_state=init_state, norm=norm,
                      model_config=config, freeze_epochs=freeze, threads=self.threads,
                      progress=False, log=lambda msg: None)
            self.models_.append((res["model"], res["mean"], res["std"]))
        return self

    def predict_proba(self, X):
        """Class probabilities of each crop, averaged over the members.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W)
            Face crops, all of one size; resized to ``input_size_`` when of another.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        from .train import predict_logits

        check_is_fitted(self, "models_")
        x = _crops(X, self.input_size_)
        p = sum(predict_logits(net, x, mean, std, flip=self.tta_flip).softmax(1)
                for net, mean, std in self.models_)
        return (p / len(self.models_)).numpy().astype(float)

    def predict(self, X):
        """The most probable class of each crop (see :meth:`predict_proba`)."""
        proba = self.predict_proba(X)  # NotFittedError first, before fit
        return self.classes_[proba.argmax(1)]


def _crops(X, size=None):
    """(N, H, W) crops as the network's input tensor, resized to ``size`` (H, W) if given.

    Sparse, NaN or infinite pixels are refused by name.
    """
    from scipy import sparse

    from .train import resize_crops, to_tensor

    if sparse.issparse(X):
        raise DataError("sparse input is not supported; pass dense (N, H, W) grayscale crops")
    arr = np.asarray(X)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise DataError("the crops contain NaN or infinity")
    return to_tensor(arr if size is None else resize_crops(arr, size))


def _labels(y) -> np.ndarray:
    """``y`` as a 1-D array of class labels; missing or continuous targets are refused."""
    from sklearn.utils.multiclass import check_classification_targets

    if y is None:
        raise DataError("CNNClassifier requires y to be passed, but the target y is None "
                        "(one label per crop)")
    y = np.asarray(y)
    try:
        check_classification_targets(y)
    except ValueError as e:
        raise DataError(f"y: {e}") from None
    return y

