"""Classifiers by name: :data:`CLASSIFIERS` and :func:`register_classifier`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..exceptions import ConfigError


@dataclass
class ClassifierSpec:
    """How to build one named classifier.

    ``build()`` returns the unfitted estimator; ``param_prefix`` is where plain
    parameter names (``C``) live inside it (``estimator__`` for a calibrated
    SVM); ``defaults`` are pipeline-level defaults such as ``pca``.
    """

    build: Callable
    param_prefix: str = ""
    defaults: dict = field(default_factory=dict)
    description: str = ""


def _linear_svm():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    # dual="auto" solves the primal when n_samples > n_features (minutes -> seconds on FER);
    # tol=0.1 stops liblinear's Newton iterations earlier than its 1e-4 default: on FER-2013
    # HOG (28,709 x 1,764) 3.6x faster with the same PrivateTest accuracy
    # (experiments/linear-svm-speed/); fit_pipeline(n_jobs=2) runs the folds in parallel
    return CalibratedClassifierCV(LinearSVC(C=0.01, dual="auto", tol=0.1, max_iter=5000),
                                  method="sigmoid", cv=3)


def _svm():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # ensemble=False: the sigmoid is fitted on 3-fold out-of-fold scores, the SVC itself on
    # all the data (measured on FER-2013 hog+lbp PCA150: 58.6 % PrivateTest vs 57.7 % for
    # the default average of three SVCs each fitted on 2/3 of the data)
    return CalibratedClassifierCV(SVC(C=10.0, kernel="rbf", gamma="scale", cache_size=1000),
                                  method="sigmoid", cv=3, ensemble=False)


def _logreg():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.1, max_iter=2000)


def _knn():
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=10)


def _xgboost():
    from ._xgboost import XGBoostClassifier

    return XGBoostClassifier()


#: classifier name -> :class:`ClassifierSpec`
CLASSIFIERS: dict[str, ClassifierSpec] = {
    "linear-svm": ClassifierSpec(_linear_svm, "estimator__",
                                 description="LinearSVC (primal), sigmoid-calibrated (3 folds)"),
    "svm": ClassifierSpec(_svm, "estimator__",
                          description="RBF SVC on all data, sigmoid-calibrated on 3-fold "
                                      "scores; pca=N to reduce"),
    "xgboost": ClassifierSpec(_xgboost, "", description="XGBClassifier, hist trees"),
    "logreg": ClassifierSpec(_logreg, "", description="multinomial logistic regression"),
    "knn": ClassifierSpec(_knn, "", description="k nearest neighbours (uniform vote, so ONNX "
                                                "agrees)"),
}


def register_classifier(name: str, build: Callable, *, param_prefix: str = "",
                        description: str = "") -> None:
    """Add a classifier under ``name``.

    Parameters
    ----------
    name : str
        The name ``--classifier`` takes (no ``+``, ``,`` or space).
    build : callable
        ``build()`` returns an unfitted estimator with ``predict_proba``.
    param_prefix : str
        Where plain parameter names live inside the estimator (``estimator__`` when
        ``build`` wraps the classifier in ``CalibratedClassifierCV``).
    description : str
        One line for listings.

    Raises
    ------
    ConfigError
        An empty name or one with ``+``, ``,`` or a space.
    """
    if not name or any(c in name for c in "+, "):
        raise ConfigError(f"classifier name {name!r} may not be empty or contain '+', ',' or ' '")
    CLASSIFIERS[name] = ClassifierSpec(build, param_prefix, description=description)


def check_classifier_name(name: str) -> ClassifierSpec:
    """The :class:`ClassifierSpec` of ``name``.

    A :class:`ConfigError` listing the names if it is not registered.
    """
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name]
