"""Classical classifiers by name, full pipelines, ONNX export and the deployment folder.

A pipeline is ``features -> scale -> reduce -> classifier``::

    Pipeline([("features", make_features("hog+lbp")),
              ("scale", StandardScaler()),
              ("reduce", "passthrough" | PCA(n)),
              ("classifier", <from CLASSIFIERS>)])

The feature step is stateless (rebuilt at run time from JSON); everything after
it (the *head*) is learned and exported to ONNX. Every classifier gives
probabilities and ``predict`` is their argmax, so the sklearn pipeline and the
ONNX graph report the same class: margin classifiers (LinearSVC, RBF SVC) are
wrapped in ``CalibratedClassifierCV(method="sigmoid")``.

Add a classifier with :func:`register_classifier`.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .exceptions import ConfigError, DataError, ModelError

#: agreement needed between sklearn and ONNX predictions before a model is saved
PARITY_MIN = 0.995


# ---------------------------------------------------------------------------
# XGBoost with arbitrary (string) labels
# ---------------------------------------------------------------------------
class XGBoostClassifier(ClassifierMixin, BaseEstimator):
    """``xgboost.XGBClassifier`` (``tree_method="hist"``) that accepts any labels.

    XGBoost wants labels 0..K-1; this wrapper encodes them in ``fit`` and maps
    predictions back, so it sits in a Pipeline with string labels like any
    sklearn classifier. The fitted booster is ``model_``.
    """

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
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data
        from xgboost import XGBClassifier

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
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.model_.predict_proba(X)

    def predict(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------
@dataclass
class ClassifierSpec:
    """How to build one named classifier.

    ``build(**params)`` returns the estimator; ``param_prefix`` is where plain
    parameter names (``C``) live inside it (``estimator__`` for a calibrated
    SVM); ``defaults`` are pipeline-level defaults such as ``pca``.
    """

    build: Callable
    param_prefix: str = ""
    defaults: dict = field(default_factory=dict)
    description: str = ""


def _linear_svm(**kw):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    # dual="auto" solves the primal when n_samples > n_features (minutes -> seconds on FER);
    # tol=0.1 stops liblinear's Newton iterations earlier than its 1e-4 default: on FER-2013
    # HOG (28,709 x 1,764) 3.6x faster with the same PrivateTest accuracy
    # (experiments/linear-svm-speed/); fit_pipeline(n_jobs=2) runs the folds in parallel
    return CalibratedClassifierCV(LinearSVC(C=0.01, dual="auto", tol=0.1, max_iter=5000),
                                  method="sigmoid", cv=3)


def _svm(**kw):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # ensemble=False: the sigmoid is fitted on 3-fold out-of-fold scores, the SVC itself on
    # all the data (measured on FER-2013 hog+lbp PCA150: 58.6 % PrivateTest vs 57.7 % for
    # the default average of three SVCs each fitted on 2/3 of the data)
    return CalibratedClassifierCV(SVC(C=10.0, kernel="rbf", gamma="scale", cache_size=1000),
                                  method="sigmoid", cv=3, ensemble=False)


def _logreg(**kw):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.1, max_iter=2000)


def _knn(**kw):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=10)


def _xgboost(**kw):
    return XGBoostClassifier()


#: classifier name -> :class:`ClassifierSpec`
CLASSIFIERS: dict[str, ClassifierSpec] = {
    "linear-svm": ClassifierSpec(_linear_svm, "estimator__",
                                 description="LinearSVC (primal), sigmoid-calibrated (3 folds)"),
    "svm": ClassifierSpec(_svm, "estimator__",
                          description="RBF SVC on all data, sigmoid-calibrated on 3-fold scores; pca=N to reduce"),
    "xgboost": ClassifierSpec(_xgboost, "", description="XGBClassifier, hist trees"),
    "logreg": ClassifierSpec(_logreg, "", description="multinomial logistic regression"),
    "knn": ClassifierSpec(_knn, "", description="k nearest neighbours (uniform vote, so ONNX agrees)"),
}

#: pipeline-level shortcuts: name -> how a value becomes step settings
PIPELINE_PARAMS = ("pca", "scale")


def register_classifier(name: str, build: Callable, *, param_prefix: str = "",
                        description: str = "") -> None:
    """Add a classifier under ``name``; ``build()`` returns an unfitted estimator
    with ``predict_proba``."""
    if not name or any(c in name for c in "+, "):
        raise ConfigError(f"classifier name {name!r} may not be empty or contain '+', ',' or ' '")
    CLASSIFIERS[name] = ClassifierSpec(build, param_prefix, description=description)


def check_classifier_name(name: str) -> ClassifierSpec:
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name]


# ---------------------------------------------------------------------------
# pipelines and parameter routing
# ---------------------------------------------------------------------------
def _reduce_step(value, random_state=0):
    from sklearn.decomposition import PCA

    if value in (None, 0, False, "none", "passthrough"):
        return "passthrough"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"parameter 'pca': expected a number of components (int >= 1), a "
                          f"variance fraction in (0, 1), or none; got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        if not 0 < value < 1:
            raise ConfigError(f"parameter 'pca': a fraction must be in (0, 1), got {value!r}")
        return PCA(n_components=float(value), random_state=random_state)
    if value < 1:
        raise ConfigError(f"parameter 'pca': expected >= 1 components, got {value!r}")
    return PCA(n_components=int(value), random_state=random_state)


def _scale_step(value):
    from sklearn.preprocessing import StandardScaler

    if value in (True, "standard", None):
        return StandardScaler()
    if value in (False, "none", "passthrough"):
        return "passthrough"
    raise ConfigError(f"parameter 'scale': expected true or false, got {value!r}")


def route_params(pipeline, params: dict | None, *, grid: bool = False) -> dict:
    """Map user parameters to the pipeline's own parameter names.

    Accepted keys: full names (``classifier__estimator__C``,
    ``features__hog__orientations``), ``classifier__C`` (the classifier's
    prefix is added), plain classifier parameters (``C``), pipeline shortcuts
    ``pca`` (components, fraction or none) and ``scale`` (true/false), feature
    parameters (``hog__orientations`` or plain ``orientations``).

    With ``grid`` each value is a list of candidates (a scalar becomes a
    one-element list) and step shortcuts become lists of estimators.

    Raises
    ------
    ConfigError
        A key that matches nothing (the message lists valid names) or a bad value.
    """
    from sklearn.pipeline import FeatureUnion

    clf = pipeline.named_steps["classifier"]
    prefix = _prefix_of(clf)
    valid = pipeline.get_params(deep=True)
    clf_valid = clf.get_params(deep=True)
    feat = pipeline.named_steps.get("features")
    out = {}

    def as_list(v):
        return list(v) if isinstance(v, (list, tuple)) else [v]

    for key, value in (params or {}).items():
        values = as_list(value) if grid else [value]
        if not grid and isinstance(value, list):
            raise ConfigError(f"parameter {key!r}: one value expected, got a list {value!r} "
                              "(lists are for `classicfer grid`)")
        if key == "pca":
            steps = [_reduce_step(v) for v in values]
            out["reduce"] = steps if grid else steps[0]
            continue
        if key == "scale":
            steps = [_scale_step(v) for v in values]
            out["scale"] = steps if grid else steps[0]
            continue
        if key in valid and key not in ("features", "classifier", "scale", "reduce"):
            full = key
        elif key.startswith("classifier__") and f"classifier__{prefix}{key[12:]}" in valid:
            full = f"classifier__{prefix}{key[12:]}"
        elif f"{prefix}{key}" in clf_valid:
            full = f"classifier__{prefix}{key}"
        elif key in clf_valid and "__" not in key:
            full = f"classifier__{key}"
        elif feat is not None and f"features__{key}" in valid:
            full = f"features__{key}"
        elif feat is not None and "__" not in key and key != "n_jobs":
            parts = feat.transformer_list if isinstance(feat, FeatureUnion) else [(None, feat)]
            hits = [f"features__{n}__{key}" if n else f"features__{key}"
                    for n, t in parts if key in t.get_params(deep=False)]
            if not hits:
                raise _unknown_param(key, pipeline)
            for h in hits:
                out[h] = values if grid else values[0]
            continue
        else:
            raise _unknown_param(key, pipeline)
        out[full] = values if grid else values[0]
    return out


def _unknown_param(key, pipeline):
    clf = pipeline.named_steps["classifier"]
    prefix = _prefix_of(clf)
    inner = clf.get_params(deep=True)
    names = sorted({k[len(prefix):] for k in inner if k.startswith(prefix) and "__" not in
                    k[len(prefix):]}) if prefix else sorted(k for k in inner if "__" not in k)
    feat = pipeline.named_steps.get("features")
    fnames = []
    if feat is not None:
        fnames = sorted(k[len("features__"):] for k in pipeline.get_params(deep=True)
                        if k.startswith("features__") and not k.endswith("n_jobs")
                        and k.count("__") == (2 if hasattr(feat, "transformer_list") else 1))
    return ConfigError(f"unknown parameter {key!r}; classifier parameters: {', '.join(names)}; "
                       f"pipeline: pca, scale; features: {', '.join(fnames)}")


def check_param_values(pipeline, routed: dict) -> None:
    """Validate values early so a bad ``--param`` names itself instead of failing mid-fit."""
    from sklearn.base import clone

    for key, value in routed.items():
        if key in ("reduce", "scale"):
            continue
        probe = clone(pipeline)
        try:
            probe.set_params(**{key: value})
            step = key.split("__")[0]
            est = probe.named_steps[step]
            _validate_estimator(est)
        except ConfigError as e:
            raise ConfigError(f"parameter {key!r}={value!r}: {e}") from None
        except (ValueError, TypeError) as e:
            msg = str(e).splitlines()[0]
            raise ConfigError(f"parameter {key!r}={value!r} is invalid: {msg}") from None


def _validate_estimator(est):
    from sklearn.pipeline import FeatureUnion

    if isinstance(est, FeatureUnion):
        for _, t in est.transformer_list:
            _validate_estimator(t)
        return
    if hasattr(est, "_check_params") and hasattr(est, "_describe_batch"):
        est._check_params()
        return
    if hasattr(est, "estimator") and hasattr(est.estimator, "_validate_params"):
        est.estimator._validate_params()
    if hasattr(est, "_validate_params") and type(est).__name__ != "XGBoostClassifier":
        est._validate_params()
    if type(est).__name__ == "XGBoostClassifier":
        for k in ("n_estimators", "max_depth"):
            v = getattr(est, k)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {v!r}")
        for k in ("learning_rate", "subsample", "colsample_bytree"):
            v = getattr(est, k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= (
                    10 if k == "learning_rate" else 1):
                raise ValueError(f"{k} must be a number in (0, 1], got {v!r}")


def make_head(classifier: str, params: dict | None = None, *, random_state: int = 0):
    """The learned part (scale -> reduce -> classifier) as a Pipeline, on feature vectors."""
    from sklearn.pipeline import Pipeline

    spec = check_classifier_name(classifier)
    pipe = Pipeline([("scale", _scale_step(True)), ("reduce", "passthrough"),
                     ("classifier", spec.build())])
    _set_random_state(pipe, random_state)
    params = {**spec.defaults, **(params or {})}
    routed = route_params(pipe, params)
    check_param_values(pipe, routed)
    pipe.set_params(**routed)
    return pipe


def make_pipeline(features, classifier: str, params: dict | None = None, *,
                  random_state: int = 0):
    """``features -> scale -> reduce -> classifier`` as one sklearn Pipeline.

    Parameters
    ----------
    features : str, list of str, or transformer
        A spec for :func:`classicfer.features.make_features` (``"hog+lbp"``) or a
        transformer it built.
    classifier : str
        A name from :data:`CLASSIFIERS`.
    params : dict, optional
        See :func:`route_params`: ``C``, ``classifier__C``, ``pca``,
        ``hog__orientations``, ``features__lbp__P``... Feature parameters go to
        the feature step, the rest to the head.
    random_state : int
        Seed set on every step that has one.

    Raises
    ------
    ConfigError
        Unknown feature, classifier or parameter, or a bad value.
    """
    from sklearn.pipeline import Pipeline

    from .features import make_features

    spec = check_classifier_name(classifier)
    feat = make_features(features) if isinstance(features, (str, list, tuple)) else features
    pipe = Pipeline([("features", feat), ("scale", _scale_step(True)),
                     ("reduce", "passthrough"), ("classifier", spec.build())])
    _set_random_state(pipe, random_state)
    params = {**spec.defaults, **(params or {})}
    routed = route_params(pipe, params)
    check_param_values(pipe, routed)
    pipe.set_params(**routed)
    _set_random_state(pipe, random_state)
    return pipe


def _prefix_of(clf) -> str:
    from sklearn.calibration import CalibratedClassifierCV

    return "estimator__" if isinstance(clf, CalibratedClassifierCV) else ""


def classifier_name(clf) -> str:
    """Registry name of a classifier built by :func:`make_pipeline` (else its class name)."""
    from sklearn.calibration import CalibratedClassifierCV

    inner = clf.estimator if isinstance(clf, CalibratedClassifierCV) else clf
    for name, spec in CLASSIFIERS.items():
        built = spec.build()
        b_inner = built.estimator if isinstance(built, CalibratedClassifierCV) else built
        if type(built) is type(clf) and type(b_inner) is type(inner):
            return name
    return type(clf).__name__


def _set_random_state(pipe, seed):
    for k in pipe.get_params(deep=True):
        if k.endswith("random_state"):
            pipe.set_params(**{k: seed})


def head_of(pipeline):
    """The steps after ``features`` (shares the fitted estimators)."""
    if "features" in pipeline.named_steps:
        head = pipeline[1:]
    else:
        head = pipeline
    return head


# ---------------------------------------------------------------------------
# training with the feature cache
# ---------------------------------------------------------------------------
def check_training_labels(y, *, min_per_class: int = 3) -> None:
    """Refuse a training set with fewer than two classes or a near-empty class."""
    y = np.asarray(y)
    if y.size == 0:
        raise DataError("the training set is empty; check --data and the split")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the training set has one class ({str(classes[0])!r}); a classifier needs "
                        "at least two")
    small = [f"{str(c)!r} ({n})" for c, n in zip(classes, counts) if n < min_per_class]
    if small:
        raise DataError(f"classes with fewer than {min_per_class} training images: "
                        f"{', '.join(small)}; add images or drop the class")


def _calibration_jobs(pipeline, n_jobs) -> None:
    """Let a calibrated classifier fit its folds in ``n_jobs`` processes (same result,
    measured 2x faster for linear-svm on FER-2013 with 2 cores)."""
    from sklearn.calibration import CalibratedClassifierCV

    clf = pipeline.named_steps.get("classifier")
    if n_jobs not in (None, 1) and isinstance(clf, CalibratedClassifierCV) and clf.n_jobs is None:
        clf.set_params(n_jobs=n_jobs)


def fit_pipeline(pipeline, images, y, *, cache: bool = True, key: str | None = None,
                 n_jobs=None, extra_images=None, extra_y=None):
    """Fit ``pipeline`` with features from the cache (computed once per images + params).

    ``extra_images``/``extra_y`` (e.g. horizontal flips) are appended to the
    training set after feature extraction (their features are cached too).
    Returns the pipeline, fitted; ``pipeline.fit_info_`` holds timings.
    """
    from .features.cache import compute_features, is_cached

    y = np.asarray(y)
    check_training_labels(y)
    feat = pipeline.named_steps["features"]
    t0 = time.perf_counter()
    hit = cache and is_cached(feat, images, key=key)
    F = compute_features(feat, images, key=key, cache=cache, n_jobs=n_jobs)
    if extra_images is not None:
        F2 = compute_features(feat, extra_images, cache=cache, n_jobs=n_jobs)
        F = np.concatenate([F, F2])
        y = np.concatenate([y, np.asarray(extra_y)])
    t1 = time.perf_counter()
    _calibration_jobs(pipeline, n_jobs)
    head_of(pipeline).fit(F, y)
    t2 = time.perf_counter()
    pipeline.fit_info_ = {"feature_seconds": round(t1 - t0, 3), "fit_seconds": round(t2 - t1, 3),
                          "features_from_cache": bool(hit), "n_train": len(y),
                          "n_features": int(F.shape[1])}
    return pipeline


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------
def _register_xgboost():
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(
        XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
        convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})


@functools.cache
def _onnx_svc_type():
    """``SVC`` as skl2onnx's SVM converter reads it, minus the ``probability=True`` attributes.

    The converter reads ``probA_``/``probB_`` (Platt scaling of ``SVC(probability=True)``),
    which scikit-learn 1.9 deprecates (a FutureWarning) and 1.11 removes. The ``svm``
    classifier never sets ``probability`` (a sigmoid in ``CalibratedClassifierCV`` gives its
    probabilities), so both are empty: this subclass says so without touching the
    deprecated attributes, and is registered with the converter and shape calculator of
    ``SVC``.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.support_vector_machines import (
        convert_sklearn_svm_classifier,
    )
    from skl2onnx.shape_calculators.support_vector_machines import (
        calculate_sklearn_svm_output_shapes,
    )
    from sklearn.svm import SVC

    class OnnxSVC(SVC):
        probA_ = np.empty(0)
        probB_ = np.empty(0)

    update_registered_converter(
        OnnxSVC, "ClassicferOnnxSVC", calculate_sklearn_svm_output_shapes,
        convert_sklearn_svm_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                 "output_class_labels": [False, True], "raw_scores": [True, False]})
    return OnnxSVC


def _exportable_svm(clf):
    """A shallow copy of a calibrated ``SVC`` whose SVCs are :func:`_onnx_svc_type` (the
    fitted arrays are shared, ``clf`` is left as it is); other classifiers unchanged."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    def plain(est):
        return type(est) is SVC and getattr(est, "probability", False) is not True

    fitted = getattr(clf, "calibrated_classifiers_", None) or []
    if not isinstance(clf, CalibratedClassifierCV) or not any(plain(c.estimator)
                                                               for c in fitted):
        return clf
    out = copy.copy(clf)
    out.calibrated_classifiers_ = []
    for c in fitted:
        c = copy.copy(c)
        if plain(c.estimator):
            c.estimator = copy.copy(c.estimator)
            c.estimator.__class__ = _onnx_svc_type()
        out.calibrated_classifiers_.append(c)
    return out


def _exportable_head(pipeline):
    """The head with wrappers replaced by what skl2onnx converts."""
    from sklearn.pipeline import Pipeline

    head = head_of(pipeline)
    steps = [(n, s) for n, s in head.steps if s not in (None, "passthrough")]
    name, clf = steps[-1]
    if isinstance(clf, XGBoostClassifier):
        _register_xgboost()
        steps[-1] = (name, clf.model_)
    else:
        steps[-1] = (name, _exportable_svm(clf))
    return Pipeline(steps), clf


def to_onnx(pipeline, n_features: int, *, target_opset: int = 17) -> bytes:
    """ONNX bytes of everything after the feature step.

    Input ``features`` float32 (N, n_features); outputs ``label`` and
    ``probabilities`` (N, K), columns in ``pipeline.classes_`` order.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.svm import SVC, LinearSVC

    head, clf = _exportable_head(pipeline)
    final = head.steps[-1][1]
    options = {type(final): {"zipmap": False}, LinearSVC: {"raw_scores": False}}
    if isinstance(final, SVC):
        options[SVC] = {"zipmap": False}
    try:
        onx = convert_sklearn(head, initial_types=[("features", FloatTensorType([None,
                                                                                int(n_features)]))],
                              options=options, target_opset={"": target_opset, "ai.onnx.ml": 3})
    except Exception as e:  # converter errors are bugs or unsupported models
        raise ModelError(f"cannot export {type(clf).__name__} to ONNX: {e}") from e
    return onx.SerializeToString()


def onnx_probabilities(onnx_bytes: bytes, features: np.ndarray) -> np.ndarray:
    """Run an exported head with onnxruntime; (N, K) probabilities."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    out = sess.run(["probabilities"], {"features": np.asarray(features, np.float32)})[0]
    return np.asarray(out)


def onnx_parity(pipeline, onnx_bytes: bytes, features: np.ndarray) -> dict:
    """Agreement of ONNX and sklearn on ``features`` (argmax of probabilities == predict)."""
    head = head_of(pipeline)
    p_onnx = onnx_probabilities(onnx_bytes, features)
    p_skl = head.predict_proba(features)
    pred_skl = head.predict(features)
    classes = np.asarray(head.classes_)
    agree = float(np.mean(classes[p_onnx.argmax(1)] == pred_skl))
    return {"agreement": agree, "n": len(features),
            "max_abs_prob_diff": float(np.max(np.abs(p_onnx - p_skl))) if len(features) else 0.0}


# ---------------------------------------------------------------------------
# deployment folder
# ---------------------------------------------------------------------------
def save_model(pipeline, out_dir, *, dataset_name: str, metrics: dict | None = None,
               training: dict | None = None, check_images=None, name: str | None = None):
    """Write ``model.onnx`` + ``model.json`` for a fitted pipeline.

    Checks that ONNX and sklearn agree on at least 99.5 % of ``check_images``
    (face crops; by default 256 noise crops of the training size) and refuses
    to save otherwise.

    Returns
    -------
    pathlib.Path of the folder, and the parity report in ``training["onnx_parity"]``.
    """
    from .features import feature_params, feature_spec_of
    from .features.cache import compute_features
    from .runtime._format import write_model_dir

    feat = pipeline.named_steps["features"]
    head = head_of(pipeline)
    try:
        n_features = int(head.n_features_in_)
    except AttributeError:
        raise ModelError("the pipeline is not fitted; call fit first") from None
    shape = tuple(getattr(feat, "image_shape_", None) or _union_shape(feat) or (48, 48))
    if check_images is None:
        rng = np.random.default_rng(0)
        check_images = rng.integers(0, 256, (256, *shape), dtype=np.uint8)
    F = compute_features(feat, check_images, cache=False)
    onnx_bytes = to_onnx(pipeline, n_features)
    parity = onnx_parity(pipeline, onnx_bytes, F)
    if parity["agreement"] < PARITY_MIN:
        raise ModelError(f"ONNX and scikit-learn agree on {parity['agreement']:.2%} of "
                         f"{parity['n']} images (< {PARITY_MIN:.1%}); refusing to save")
    classifier = classifier_name(head.steps[-1][1])
    spec = feature_spec_of(feat)
    train = dict(training or {})
    train["onnx_parity"] = parity
    train.setdefault("classifier", classifier)
    train.setdefault("head_params", _jsonable(head.get_params(deep=True)))
    sidecar = {
        "kind": "classical",
        "name": name or f"{dataset_name}-{spec}-{classifier}",
        "labels": [str(c) for c in head.classes_],
        "input": {"size": [int(shape[0]), int(shape[1])], "color": "gray", "crop": "whole"},
        "features": {"spec": spec, "params": feature_params(feat)},
        "onnx": {"input": "features", "output": "probabilities",
                 "output_kind": "probabilities", "n_features": n_features},
        "dataset": dataset_name,
        "training": train,
        "metrics": dict(metrics or {}),
    }
    return write_model_dir(out_dir, onnx_bytes, sidecar)


def _union_shape(feat):
    for _, t in getattr(feat, "transformer_list", []):
        if getattr(t, "image_shape_", None):
            return t.image_shape_
    return None


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (np.integer, np.floating)):
            out[k] = v.item()
        elif isinstance(v, (list, tuple)) and all(isinstance(i, (str, int, float)) for i in v):
            out[k] = list(v)
        else:
            out[k] = type(v).__name__ if isinstance(v, BaseEstimator) else repr(v)
    return json.loads(json.dumps(out))


__all__ = [
    "CLASSIFIERS",
    "PARITY_MIN",
    "ClassifierSpec",
    "XGBoostClassifier",
    "check_training_labels",
    "fit_pipeline",
    "head_of",
    "make_head",
    "make_pipeline",
    "onnx_parity",
    "onnx_probabilities",
    "register_classifier",
    "route_params",
    "save_model",
    "to_onnx",
]


# ---------------------------------------------------------------------------
# cross-validated grid over features x classifiers x parameters
# ---------------------------------------------------------------------------
def make_cv(cv, *, labels, groups=None, splits=None, seed: int = 0):
    """Resolve a ``--cv`` value to (list of (train, test) index pairs, description).

    ``cv`` : ``"auto"`` (official split when the data has train+val, else
    subject-grouped 10-fold when subjects are known, else stratified 5-fold),
    ``"official"`` (fit on train, score on val; test untouched), ``"group"`` /
    ``"group:K"`` (StratifiedGroupKFold by subject), or an integer K
    (StratifiedKFold). Rows with split ``test`` are never used by the
    grouped/stratified schemes when the data also has train/val splits.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = np.asarray(labels)
    n = len(labels)
    splits = np.asarray(splits) if splits is not None else np.full(n, "")
    has_official = {"train", "val"} <= set(splits)
    cv = str(cv).strip().lower()
    if cv == "auto":
        cv = "official" if has_official else ("group" if groups is not None else "5")
    if cv == "official":
        if not has_official:
            raise ConfigError("--cv official needs a dataset with train and val splits "
                              "(FER-2013); use --cv group or --cv K")
        tr, te = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
        return [(tr, te)], "official split: fit on train, score on val"
    pool = np.flatnonzero(splits != "test") if has_official else np.arange(n)
    if cv.startswith("group"):
        if groups is None:
            raise ConfigError("--cv group needs subject ids (CK+48 has them); use --cv K")
        k = int(cv.split(":", 1)[1]) if ":" in cv else 10
        groups = np.asarray(groups)[pool]
        n_groups = len(set(groups))
        k = min(k, n_groups)
        if k < 2:
            raise DataError(f"subject-grouped CV needs at least 2 subjects, found {n_groups}")
        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        folds = [(pool[a], pool[b]) for a, b in splitter.split(pool, labels[pool], groups)]
        return folds, repr(splitter)
    try:
        k = int(cv)
    except ValueError:
        raise ConfigError(f"--cv {cv!r}: expected auto, official, group, group:K or an integer "
                          "number of folds") from None
    if k < 2:
        raise ConfigError(f"--cv {k}: need at least 2 folds")
    _, counts = np.unique(labels[pool], return_counts=True)
    if counts.min() < k:
        raise DataError(f"--cv {k}: the smallest class has {counts.min()} images; use fewer "
                        "folds")
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    folds = [(pool[a], pool[b]) for a, b in splitter.split(pool, labels[pool])]
    return folds, repr(splitter)


def _feature_grid(spec: str, params: dict) -> tuple[list[dict], dict]:
    """Split grid params into feature-param combinations and the rest."""
    from itertools import product

    from .features import FEATURES, parse_feature_spec

    names = parse_feature_spec(spec)
    feat_keys, rest = {}, {}
    for key, vals in params.items():
        vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
        if "__" in key and key.split("__", 1)[0] in FEATURES:
            if key.split("__", 1)[0] in names:
                feat_keys[key] = vals
            continue
        if key.startswith("features__"):
            feat_keys[key[len("features__"):]] = vals
            continue
        if any(key in FEATURES[n]().get_params() for n in names) and key != "n_jobs":
            feat_keys[key] = vals
            continue
        rest[key] = vals
    combos = [dict(zip(feat_keys, c)) for c in product(*feat_keys.values())] or [{}]
    return combos, rest


def run_grid(images, labels, *, features, classifiers, params=None, cv="auto", groups=None,
             splits=None, flip: bool = False, n_jobs=None, seed: int = 0, cache: bool = True,
             scoring=("accuracy", "f1_macro", "balanced_accuracy"), progress=None,
             data_key: str | None = None):
    """Cross-validated search over feature specs x classifiers x parameters.

    Features are computed once per (images, feature params) through the cache;
    each classifier's parameter grid runs in ``GridSearchCV`` on the cached
    matrix. With ``flip`` the mirrored crops of each fold's training rows join
    that fold's training set (never its test set).

    Parameters whose name belongs to no classifier in a combination are skipped
    for it (``C`` is not an XGBoost parameter) but must fit at least one.

    Returns
    -------
    summary : list of dict
        One row per (features, feature params, classifier, parameter candidate)
        with sklearn's keys (``mean_test_accuracy``, ``std_test_accuracy``,
        ``mean_fit_time``, ``params``...).
    folds : list of dict
        One row per candidate per fold.
    info : dict
        ``cv`` description, number of folds, feature seconds per spec.
    """
    from sklearn.model_selection import GridSearchCV

    from .features import make_features
    from .features.cache import compute_features

    labels = np.asarray(labels)
    params = dict(params or {})
    folds, cv_desc = make_cv(cv, labels=labels, groups=groups, splits=splits, seed=seed)
    used = np.unique(np.concatenate([np.concatenate([a, b]) for a, b in folds]))
    check_training_labels(labels[used])
    for name in classifiers:
        check_classifier_name(name)
    plan = []
    used_keys = set()
    for spec in features:
        combos, rest = _feature_grid(spec, params)
        used_keys |= set(params) - set(rest)
        for fp in combos:
            for clf in classifiers:
                head = make_head(clf, random_state=seed)
                grid = {}
                for key, vals in rest.items():
                    try:
                        grid.update(route_params(head, {key: vals}, grid=True))
                        used_keys.add(key)
                    except ConfigError:
                        continue
                for k, vals in grid.items():
                    for v in vals:
                        if k not in ("reduce", "scale"):
                            check_param_values(head, {k: v})
                plan.append((spec, fp, clf, head, grid))
    unused = set(params) - used_keys
    if unused:
        k = min(unused)
        raise _unknown_param(k, make_pipeline(features[0], classifiers[0]))
    n_total = sum(int(np.prod([len(v) for v in g.values()])) if g else 1
                  for *_, g in plan) * len(folds)
    bar = progress(total=n_total, desc="grid", unit="fit") if progress else None
    summary, fold_rows, feat_time = [], [], {}
    n = len(labels)
    cache_feats = {}
    for spec, fp, clf, head, grid in plan:
        fkey = (spec, json.dumps(fp, sort_keys=True, default=str))
        if fkey not in cache_feats:
            t0 = time.perf_counter()
            feat = make_features(spec, fp)
            F = compute_features(feat, images, cache=cache, n_jobs=n_jobs, key=data_key)
            if flip:
                Ff = compute_features(feat, np.asarray(images)[:, :, ::-1], cache=cache,
                                      n_jobs=n_jobs,
                                      key=None if data_key is None else data_key + ":flip")
                F = np.concatenate([F, Ff])
            feat_time[f"{spec} {fkey[1]}"] = round(time.perf_counter() - t0, 3)
            cache_feats = {fkey: F}  # keep one matrix in memory
        F = cache_feats[fkey]
        y = np.concatenate([labels, labels]) if flip else labels
        cv_idx = [(np.concatenate([a, a + n]) if flip else a, b) for a, b in folds]
        search = GridSearchCV(head, [grid] if grid else [{}], scoring=list(scoring),
                              refit=False, cv=cv_idx, n_jobs=n_jobs, error_score="raise")
        search.fit(F, y)
        res = search.cv_results_
        n_cand = len(res["params"])
        for i in range(n_cand):
            row = {"features": spec, "feature_params": json.dumps(fp, sort_keys=True,
                                                                   default=str),
                   "classifier": clf,
                   "params": json.dumps(_short_params(res["params"][i]), sort_keys=True,
                                        default=str),
                   "mean_fit_time": float(res["mean_fit_time"][i]),
                   "mean_score_time": float(res["mean_score_time"][i])}
            for s in scoring:
                row[f"mean_test_{s}"] = float(res[f"mean_test_{s}"][i])
                row[f"std_test_{s}"] = float(res[f"std_test_{s}"][i])
            summary.append(row)
            for f in range(len(folds)):
                fr = {k: row[k] for k in ("features", "feature_params", "classifier", "params")}
                fr["fold"] = f
                for s in scoring:
                    fr[f"test_{s}"] = float(res[f"split{f}_test_{s}"][i])
                fold_rows.append(fr)
        if bar is not None:
            bar.update(n_cand * len(folds))
            bar.set_postfix_str(f"{spec}/{clf}")
    if bar is not None:
        bar.close()
    key0 = f"mean_test_{scoring[0]}"
    order = np.argsort([-r[key0] for r in summary], kind="stable")
    for rank, i in enumerate(order, 1):
        summary[i][f"rank_test_{scoring[0]}"] = rank
    return summary, fold_rows, {"cv": cv_desc, "n_folds": len(folds),
                                "feature_seconds": feat_time, "flip": flip}


def _short_params(p: dict) -> dict:
    out = {}
    for k, v in p.items():
        k = k.replace("classifier__estimator__", "").replace("classifier__", "")
        if k == "reduce":
            k, v = "pca", (None if v == "passthrough" else getattr(v, "n_components", v))
        if k == "scale":
            v = v != "passthrough"
        out[k] = v
    return out
