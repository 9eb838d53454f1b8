"""XGBoost as a scikit-learn classifier that accepts any labels."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval


class XGBoostClassifier(ClassifierMixin, BaseEstimator):
    """``xgboost.XGBClassifier`` (``tree_method="hist"``) that accepts any labels.

    XGBoost wants labels 0..K-1; this wrapper encodes them in ``fit`` and maps
    predictions back, so it sits in a Pipeline with string labels like any
    sklearn classifier. The fitted booster is ``model_``. Parameters are checked
    against ``_parameter_constraints`` when ``fit`` starts (scikit-learn's
    ``InvalidParameterError``, a ``ValueError``).
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, 10, closed="right")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "max_bin": [Interval(Integral, 2, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_estimators=300, max_depth=6, learning_rate=0.1, subsample=0.9,
                 colsample_bytree=0.5, min_child_weight=1.0, reg_lambda=1.0, max_bin=64,
                 n_jobs=1, random_state=0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Encode the labels and fit the booster; returns ``self``."""
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data
        from xgboost import XGBClassifier

        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 classes, got {len(self.classes_)} class")
        self.model_ = XGBClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth,
            learning_rate=self.learning_rate, subsample=self.subsample,
            colsample_bytree=self.colsample_bytree, min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda, max_bin=self.max_bin, tree_method="hist",
            n_jobs=self.n_jobs, random_state=self.random_state, base_score=0.5,
            objective="multi:softprob" if len(self.classes_) > 2 else "binary:logistic")
        self.model_.fit(X, enc.transform(y))
        return self

    def predict_proba(self, X):
        """(N, K) class probabilities, columns in ``classes_`` order."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.model_.predict_proba(X)

    def predict(self, X):
        """The class of highest probability for each row."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
