"""classicfer.pipeline: classifier registry, pipelines, parameter routing, ONNX parity; and
the deployment folder of a pipeline (classicfer.export.save_model).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CLASS_ANGLES, face_crop
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from classicfer.exceptions import ConfigError, DataError, ModelError
from classicfer.export import save_model
from classicfer.features.cache import compute_features
from classicfer.pipeline import (
    CLASSIFIERS,
    fit_pipeline,
    make_pipeline,
    onnx_parity,
    route_params,
    to_onnx,
)

CLASSES = ("angry", "happy", "sad", "surprise")
FAST = {"xgboost": {"n_estimators": 10, "max_depth": 2}, "svm": {"pca": 10},
        "knn": {"n_neighbors": 3}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.stack([face_crop(CLASS_ANGLES[c], rng) for c in CLASSES for _ in range(9)])
    y = np.repeat(CLASSES, 9)
    perm = rng.permutation(len(y))
    return X[perm], y[perm]


@pytest.mark.parametrize("classifier", list(CLASSIFIERS))
@pytest.mark.parametrize("features", ["hog", "lbp", "landmarks", "embedding", "hog+lbp"])
def test_every_combination_fits_and_exports(data, features, classifier):
    X, y = data
    pipe = make_pipeline(features, classifier, FAST.get(classifier))
    fit_pipeline(pipe, X[:28], y[:28])
    proba = pipe.predict_proba(X[28:])
    assert proba.shape == (8, len(CLASSES))
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    # predict is the argmax of the probabilities (what the runtime reports)
    classes = pipe.classes_
    np.testing.assert_array_equal(pipe.predict(X[28:]), classes[proba.argmax(1)])
    F = compute_features(pipe.named_steps["features"], X)
    par = onnx_parity(pipe, to_onnx(pipe, F.shape[1]), F)
    assert par["agreement"] >= 0.995, par
    if classifier != "xgboost":
        # tree thresholds can flip for a value that float32 scaling in ONNX moves across a
        # split point (sklearn scales in float64): for trees only the argmax is compared
        assert par["max_abs_prob_diff"] < 1e-3


@pytest.mark.parametrize("classifier", ["linear-svm", "logreg"])
def test_learns_the_fixture(data, classifier):
    X, y = data
    pipe = fit_pipeline(make_pipeline("hog", classifier), X[:28], y[:28])
    # classes differ by a visible in-plane rotation: far above chance (25 %)
    assert (pipe.predict(X[28:]) == y[28:]).mean() >= 0.75


def test_pipeline_is_sklearn(data):
    X, y = data
    pipe = make_pipeline("hog+lbp", "logreg", {"C": 0.5, "hog__orientations": 6})
    assert pipe.get_params()["classifier__C"] == 0.5
    assert pipe.get_params()["features__hog__orientations"] == 6
    c = clone(pipe)
    assert c.get_params()["features__hog__orientations"] == 6
    search = GridSearchCV(c, {"features__hog__orientations": [6, 9], "classifier__C": [0.1, 1]},
                          cv=3, n_jobs=2)
    search.fit(X, y)
    assert set(search.best_params_) == {"features__hog__orientations", "classifier__C"}
    assert search.predict(X[:3]).shape == (3,)


def test_param_routing():
    pipe = make_pipeline("hog", "linear-svm", {"C": 0.3, "pca": 20, "pixels_per_cell": 8})
    p = pipe.get_params()
    assert p["classifier__estimator__C"] == 0.3
    assert p["reduce"].n_components == 20
    assert p["features__pixels_per_cell"] == 8
    assert make_pipeline("hog", "svm", {"classifier__C": 2}).get_params()[
        "classifier__estimator__C"] == 2
    g = route_params(make_pipeline("hog", "svm"), {"C": [1, 10], "pca": [None, 50]}, grid=True)
    assert g["classifier__estimator__C"] == [1, 10]
    assert g["reduce"][0] == "passthrough" and g["reduce"][1].n_components == 50


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svm_exports_without_the_probability_attributes(data, monkeypatch, kernel):
    """The svm classifier (a sigmoid-calibrated SVC) exports to ONNX without reading
    ``probA_``/``probB_``, which scikit-learn 1.9 deprecates and 1.11 removes.
    """
    from sklearn.svm import SVC
    from sklearn.svm._base import BaseSVC

    from classicfer.commands._common import parse_params

    def removed(self):
        raise AttributeError("probA_/probB_ were removed with SVC(probability=True)")

    monkeypatch.setattr(BaseSVC, "probA_", property(removed))
    monkeypatch.setattr(BaseSVC, "probB_", property(removed))
    X, y = data
    params = parse_params(["C=3", "gamma=0.01", f"kernel={kernel}", "pca=10"])  # as --param
    pipe = make_pipeline("hog", "svm", params)
    inner = pipe.get_params()
    assert (inner["classifier__estimator__C"], inner["classifier__estimator__gamma"],
            inner["classifier__estimator__kernel"]) == (3, 0.01, kernel)
    fit_pipeline(pipe, X[:28], y[:28])
    svc = pipe.named_steps["classifier"].calibrated_classifiers_[0].estimator
    assert type(svc) is SVC and svc.C == 3 and svc.kernel == kernel
    F = compute_features(pipe.named_steps["features"], X)
    par = onnx_parity(pipe, to_onnx(pipe, F.shape[1]), F)
    assert par["agreement"] >= 0.995 and par["max_abs_prob_diff"] < 1e-3, par
    # the fitted pipeline is left as it was (the export works on a copy)
    assert type(pipe.named_steps["classifier"].calibrated_classifiers_[0].estimator) is SVC


@pytest.mark.parametrize("module, fails", [("sklearn.utils.deprecation", True),
                                           ("sklearn.svm._base", True),
                                           ("classicfer.pipeline", True),
                                           ("numpy", False)])
def test_future_warnings_of_scikit_learn_fail_the_suite(module, fails):
    """Pyproject's filterwarnings turns a FutureWarning attributed to scikit-learn (or to
    classicfer, for warnings raised with stacklevel=2) into an error.
    """
    import warnings

    def warn():
        warnings.warn_explicit("removed in a coming release", FutureWarning,
                               f"{module.replace('.', '/')}.py", 1, module=module)

    if fails:
        with pytest.raises(FutureWarning, match="removed in a coming release"):
            warn()
    else:
        with pytest.warns(FutureWarning):
            warn()


@pytest.mark.parametrize("params,msg", [
    ({"Cee": 1}, "unknown parameter 'Cee'; classifier parameters: .*C"),
    ({"C": -1}, "parameter 'classifier__estimator__C'=-1"),
    ({"C": "big"}, "parameter 'classifier__estimator__C'='big'"),
    ({"pca": -3}, "parameter 'pca'"),
    ({"C": [1, 2]}, "one value expected"),
])
def test_bad_params(params, msg):
    with pytest.raises(ConfigError, match=msg):
        make_pipeline("hog", "linear-svm", params)


def test_bad_xgboost_param():
    with pytest.raises(ConfigError, match="max_depth"):
        make_pipeline("hog", "xgboost", {"max_depth": 0})


def test_unknown_classifier_lists_valid():
    with pytest.raises(ConfigError, match="unknown classifier 'svn'; choose from linear-svm, svm"):
        make_pipeline("hog", "svn")


def test_refuses_one_class_and_tiny_class(data):
    X, y = data
    with pytest.raises(DataError, match="one class"):
        fit_pipeline(make_pipeline("hog", "logreg"), X[:5], np.array(["happy"] * 5))
    y2 = y.copy()
    y2[:] = "happy"
    y2[0] = "sad"
    with pytest.raises(DataError, match="fewer than 3 training images: 'sad' \\(1\\)"):
        fit_pipeline(make_pipeline("hog", "logreg"), X, y2)


def test_save_model_writes_runtime_folder(tmp_path, data):
    from classicfer.runtime._format import read_sidecar

    X, y = data
    pipe = fit_pipeline(make_pipeline("hog+lbp", "linear-svm", {"grid": 4}), X, y)
    out = save_model(pipe, tmp_path / "m", dataset_name="tiny", metrics={"accuracy": 1.0},
                     check_images=X)
    meta, onnx_path = read_sidecar(out)
    assert meta["kind"] == "classical"
    assert meta["labels"] == list(pipe.classes_)
    assert meta["features"]["spec"] == "hog+lbp"
    assert meta["features"]["params"]["lbp"]["grid"] == 4
    assert meta["input"] == {"size": [48, 48], "color": "gray", "crop": "whole"}
    assert meta["onnx"]["output_kind"] == "probabilities"
    assert meta["training"]["onnx_parity"]["agreement"] >= 0.995
    # the runtime path: features rebuilt from JSON + the ONNX head == sklearn
    from classicfer.features import make_features
    from classicfer.pipeline import onnx_probabilities

    feats = make_features(meta["features"]["spec"], json.loads(json.dumps(
        meta["features"]["params"])))
    p = onnx_probabilities(onnx_path.read_bytes(), feats.transform(X))
    np.testing.assert_array_equal(np.array(meta["labels"])[p.argmax(1)], pipe.predict(X))


def test_save_model_refuses_disagreement(tmp_path, data, monkeypatch):
    import classicfer.export._classical as m

    X, y = data
    pipe = fit_pipeline(make_pipeline("hog", "logreg"), X, y)
    monkeypatch.setattr(m, "head_parity", lambda *a, **k: {"agreement": 0.9, "n": 36})
    with pytest.raises(ModelError, match="agree on 90.00% of 36 images"):
        save_model(pipe, tmp_path / "m", dataset_name="tiny")
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_save_model_unfitted(tmp_path):
    with pytest.raises(ModelError, match="not fitted"):
        save_model(make_pipeline("hog", "logreg"), tmp_path / "m", dataset_name="x")


def test_second_fit_reads_cache(data):
    X, y = data
    a = fit_pipeline(make_pipeline("lbp", "logreg"), X, y)
    b = fit_pipeline(make_pipeline("lbp", "logreg", {"C": 1.0}), X, y)
    assert b.fit_info_["features_from_cache"] is True
    assert a.fit_info_["n_features"] == b.fit_info_["n_features"]


def test_n_jobs_fits_calibration_folds_in_parallel_with_the_same_result(data):
    X, y = data
    serial = fit_pipeline(make_pipeline("hog", "linear-svm"), X, y)
    parallel = fit_pipeline(make_pipeline("hog", "linear-svm"), X, y, n_jobs=2)
    assert serial.named_steps["classifier"].n_jobs is None
    assert parallel.named_steps["classifier"].n_jobs == 2
    np.testing.assert_allclose(parallel.predict_proba(X), serial.predict_proba(X), atol=1e-6)
    # a classifier without calibration folds is left alone
    knn = fit_pipeline(make_pipeline("hog", "knn", FAST["knn"]), X, y, n_jobs=2)
    assert knn.named_steps["classifier"].n_jobs is None


def test_aligned_union_model_through_the_runtime(tmp_path, data):
    """align='eyes' parts + landmarks, saved and reloaded: the runtime (parts called one by
    one, not through FeatureUnion) gives scikit-learn's features and probabilities.
    """
    from classicfer.runtime import load_model

    X, y = data
    pipe = fit_pipeline(make_pipeline("hog+lbp+landmarks", "logreg",
                                      {"align": "eyes", "align_margin": -0.05}), X, y)
    out = save_model(pipe, tmp_path / "m", dataset_name="tiny", check_images=X)
    model = load_model(out, cache=False)
    ref = pipe.named_steps["features"].transform(X)
    np.testing.assert_allclose(model.features(X), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.features(X[:1]), ref[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), atol=1e-4)


def test_the_classifier_name_is_recorded_when_the_pipeline_is_built(data, tmp_path, monkeypatch):
    """The registry name travels with the pipeline: nothing is rebuilt to find it."""
    from classicfer.pipeline import classifier_name, make_head
    from classicfer.runtime._format import read_sidecar

    pipe = make_pipeline("hog", "linear-svm")
    assert classifier_name(pipe) == "linear-svm" and classifier_name(make_head("knn")) == "knn"

    def no_rebuild():
        raise AssertionError("a classifier was rebuilt to find its name")

    monkeypatch.setitem(CLASSIFIERS, "linear-svm", CLASSIFIERS["linear-svm"].__class__(
        no_rebuild, "estimator__"))
    X, y = data
    fit_pipeline(pipe, X, y)
    meta, _ = read_sidecar(save_model(pipe, tmp_path / "m", dataset_name="tiny",
                                      check_images=X))
    assert meta["training"]["classifier"] == "linear-svm"
    assert meta["name"] == "tiny-hog-linear-svm"


@pytest.mark.parametrize("params, name", [({"max_depth": 0}, "max_depth"),
                                          ({"subsample": 1.5}, "subsample"),
                                          ({"learning_rate": 0}, "learning_rate"),
                                          ({"n_estimators": 2.5}, "n_estimators")])
def test_xgboost_checks_its_parameters_against_its_constraints(data, params, name):
    from sklearn.utils._param_validation import InvalidParameterError

    from classicfer.pipeline import XGBoostClassifier

    X, y = data
    F = X.reshape(len(X), -1)[:, :50].astype(np.float32)
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of XGBoostClassifier"):
        XGBoostClassifier(**params).fit(F, y)
    with pytest.raises(ConfigError, match=f"parameter 'classifier__{name}'="):
        make_pipeline("hog", "xgboost", params)


def test_a_registered_classifier_without_constraints_is_accepted(data):
    """Parameter checks use scikit-learn's constraints when an estimator has them, and
    leave an estimator without them alone (no crash looking for them).
    """
    from sklearn.base import BaseEstimator, ClassifierMixin

    from classicfer.pipeline import register_classifier

    class Majority(ClassifierMixin, BaseEstimator):
        def __init__(self, strength=1.0):
            self.strength = strength

        def fit(self, X, y):
            self.classes_, counts = np.unique(y, return_counts=True)
            self.p_ = counts / counts.sum()
            return self

        def predict_proba(self, X):
            return np.tile(self.p_, (len(X), 1))

        def predict(self, X):
            return self.classes_[self.predict_proba(X).argmax(1)]

    register_classifier("majority", Majority)
    try:
        pipe = make_pipeline("hog", "majority", {"strength": 2.0})
        assert pipe.get_params()["classifier__strength"] == 2.0
    finally:
        CLASSIFIERS.pop("majority")
