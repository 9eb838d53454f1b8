"""The CNN head as a scikit-learn classifier, so the shared harness can fit it per fold.

``classicfer.evaluation.evaluate(CNNClassifier(init=...), dataset, "subject-kfold")``
fine-tunes a FER-2013 checkpoint on each fold's training subjects and scores the held-out
ones exactly as it scores the classical pipelines (same folds, metrics and reports).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Train (or fine-tune) :class:`~classicfer.cnn_head.model.FerNet` on same-size crops.

    Parameters
    ----------
    init : str or None
        A checkpoint (``best.pt``) to fine-tune: its layers, configuration and input
        normalisation are kept, the head is new (transfer learning; the first
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
    """

    def __init__(self, init=None, *, epochs: int = 14, lr: float | None = None,
                 batch_size: int = 32, members: int = 1, tta_flip: bool = True,
                 freeze_epochs: int = 1, widths=(16, 32, 64, 128), seed: int = 0,
                 threads: int | None = 1):
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

    def fit(self, X, y):
        from .train import default_lr, fit, load_checkpoint, start_from, to_tensor

        x = to_tensor(X)
        self.classes_ = np.unique(np.asarray(y))
        yi = np.searchsorted(self.classes_, np.asarray(y))
        init_state, norm, config, freeze = None, None, {"widths": tuple(self.widths)}, 0
        if self.init is not None:  # always a new head
            init_state, norm, config = start_from(load_checkpoint(self.init)[1])
            freeze = self.freeze_epochs
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
        from .train import predict_logits, to_tensor

        check_is_fitted(self, "models_")
        x = to_tensor(X)
        p = sum(predict_logits(net, x, mean, std, flip=self.tta_flip).softmax(1)
                for net, mean, std in self.models_)
        return (p / len(self.models_)).numpy().astype(float)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]

