"""scikit-learn's estimator checks over every classicfer estimator.

scikit-learn's checks fit small 2-D float tables ((20, 3), (30, 3), (10, 1)...). Only
:class:`~classicfer.pipeline.XGBoostClassifier` takes such tables: it runs every check.

The other estimators take face images: the descriptors (:data:`classicfer.features.FEATURES`)
and :class:`~classicfer.cnn_head.estimator.CNNClassifier` take (N, H, W) crops,
:class:`~classicfer.face.FaceCropper` takes photos, and
:class:`~classicfer.evaluation.PrefitClassifier` whatever its model takes. For them:

* every scikit-learn check runs, except those in ``_TABLE_CHECKS`` (they fit a table, which
  is not a batch of crops); ``test_table_checks_fail_only_on_the_table`` proves that each of
  those fails only because the table is refused as images, never for another reason;
* the contract tests below make the same demands as the checks in ``_TABLE_CHECKS``, on real
  face crops (each entry names what replaces it);
* FaceCropper and PrefitClassifier, whose ``fit`` never reads ``X``, run the checks that
  feed no data (scikit-learn generates none for FaceCropper, which takes no 2-D input).
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import warnings

import numpy as np
import pytest
from conftest import face_crop
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as ec
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from classicfer.cnn_head.estimator import CNNClassifier
from classicfer.evaluation import PrefitClassifier
from classicfer.exceptions import ConfigError, DataError, ModelError
from classicfer.face import FaceCropper
from classicfer.features import FEATURES
from classicfer.pipeline import XGBoostClassifier

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (.[cnn])")


# ----------------------------------------------------------------- the tabular estimator

@parametrize_with_checks([XGBoostClassifier(n_estimators=5, max_depth=2)], xfail_strict=True)
def test_tabular_estimator_passes_every_check(estimator, check):
    check(estimator)


# ----------------------------------------------------------------- the image estimators

#: scikit-learn checks that fit a 2-D float table, which every image estimator refuses
#: ("expected (N, H, W) ...", "too small" when the column count is a square, "numeric image
#: array" for an object table). Value: the demand that replaces the check, made on real crops
#: by the contract tests below ("state": test_descriptor_parameters_and_state, "input-variant":
#: test_descriptor_gives_the_same_rows_whatever_the_input_form, "refusal":
#: test_descriptor_refuses_input_that_is_not_crops; CNN: test_cnn_classifier_*).
_TABLE_CHECKS = {
    "check_fit_score_takes_y": "fit(crops, labels) returns self (state tests)",
    "check_estimators_overwrite_params": "fit leaves get_params() unchanged (state tests)",
    "check_dont_overwrite_parameters": "fit adds only trailing-underscore public attributes",
    "check_estimators_fit_returns_self": "fit returns self (state tests)",
    "check_readonly_memmap_input": "read-only crops give the same rows (input-variant tests)",
    "check_n_features_in_after_fitting": "n_features_in_ counts table columns; descriptors "
                                         "record image_shape_ and n_features_out_ instead",
    "check_n_features_in": "as check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit": "pixels outside 0..255 are clipped by the "
                                          "descriptors, not refused (input-variant tests)",
    "check_estimators_dtypes": "float32, float64 and int64 crops give the uint8 crops' rows",
    "check_dtype_object": "object arrays are refused by the descriptors (refusal tests)",
    "check_estimators_empty_data_messages": "an empty batch is refused (refusal tests)",
    "check_pipeline_consistency": "fitting twice gives the same rows (input-variant tests)",
    "check_estimators_nan_inf": "NaN and infinite pixels are refused (refusal tests)",
    "check_estimators_pickle": "a pickle round trip gives the same rows",
    "check_f_contiguous_array_estimator": "Fortran-ordered crops give the same rows",
    "check_transformer_data_not_an_array": "a list of crops gives the same rows",
    "check_classifier_data_not_an_array": "a list of crops gives the same predictions",
    "check_transformer_general": "fit_transform equals fit().transform, one row per crop",
    "check_transformer_preserve_dtypes": "float32 crops give float32 rows",
    "check_transformers_unfitted_stateless": "transform before fit equals transform after fit",
    "check_methods_sample_order_invariance": "permuted crops give permuted rows",
    "check_methods_subset_invariance": "a subset of the crops gives the same rows",
    "check_fit2d_1sample": "one crop is enough to fit and transform",
    "check_fit2d_1feature": "a (10, 1) table is ten 1x1 crops, refused as too small",
    "check_dict_unchanged": "transform and predict leave __dict__ unchanged",
    "check_fit_idempotent": "fitting twice gives the same rows",
    "check_fit_check_is_fitted": "descriptors are fitted before fit (stateless); the CNN "
                                 "raises NotFittedError before fit",
    "check_fit2d_predict1d": "one (H, W) crop without the batch axis is refused",
    "check_classifiers_one_label": "one class: the CNN predicts it",
    "check_classifiers_classes": "classes_ are the sorted labels; predict returns them",
    "check_classifiers_train": "the CNN learns toy stripes; probabilities sum to 1",
    "check_supervised_y_2d": "a column-vector y is refused by the CNN with a DataError",
}

#: how an image estimator refuses a table
_REFUSED_TABLE = re.compile(r"expected \(N, H, W\)|too small|expected a numeric image array")


def _image_estimators():
    out = [cls() for cls in FEATURES.values()]
    if HAVE_TORCH:
        out.append(CNNClassifier(epochs=1, widths=(4, 8)))
    return out


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _check_id(estimator, check) -> str:
    kw = ",".join(f"{k}={v}" for k, v in getattr(check, "keywords", {}).items())
    return f"{type(estimator).__name__}-{_check_name(check)}" + (f"({kw})" if kw else "")


def _generated(estimator):
    return [check for _, check in estimator_checks_generator(estimator)]


def _checks_that_apply():
    for est in _image_estimators():
        for check in _generated(est):
            if _check_name(check) not in _TABLE_CHECKS:
                yield pytest.param(est, check, id=_check_id(est, check))


@pytest.mark.parametrize("estimator, check", list(_checks_that_apply()))
def test_image_estimator_passes_the_checks_that_apply(estimator, check):
    check(estimator)


def _causes(exc):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


@pytest.mark.parametrize("estimator", _image_estimators(), ids=lambda e: type(e).__name__)
def test_table_checks_fail_only_on_the_table(estimator):
    """A check left to the contract tests must still fail, and only because the estimator
    refuses the table as images: any other failure is a bug the list would hide.
    """
    wrong = []
    for check in _generated(estimator):
        name = _check_name(check)
        if name not in _TABLE_CHECKS:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(estimator)
        except Exception as e:  # noqa: BLE001 (the cause is examined below)
            if not any(_REFUSED_TABLE.search(str(c)) for c in _causes(e)):
                wrong.append(f"{name}: {type(e).__name__}: {e}")
        else:
            wrong.append(f"{name} passes: remove it from _TABLE_CHECKS")
    assert not wrong, "\n".join(wrong)


@needs_torch  # the classifier checks are generated for the CNN
def test_every_table_check_is_still_generated():
    generated = {_check_name(c) for est in _image_estimators() for c in _generated(est)}
    assert set(_TABLE_CHECKS) <= generated, sorted(set(_TABLE_CHECKS) - generated)


#: checks that feed no data: for the estimators whose fit never reads X
_NO_DATA_CHECKS = (
    ec.check_estimator_cloneable, ec.check_estimator_tags_renamed, ec.check_valid_tag_types,
    ec.check_estimator_repr, ec.check_no_attributes_set_in_init,
    ec.check_do_not_raise_errors_in_init_or_set_params, ec.check_mixin_order,
    ec.check_parameters_default_constructible, ec.check_get_params_invariance,
    ec.check_set_params,
)


class _TableModel:
    """A trained model as PrefitClassifier expects one: labels + predict_proba."""

    labels = ("happy", "sad", "angry")

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        z = np.stack([X.mean(1), X.std(1), X.max(1) / 2], 1)
        z = np.exp(z / 64.0)
        return z / z.sum(1, keepdims=True)


@pytest.mark.parametrize("estimator, check", [
    *[pytest.param(FaceCropper(), c, id=f"FaceCropper-{c.__name__}") for c in _NO_DATA_CHECKS],
    *[pytest.param(PrefitClassifier(), c, id=f"PrefitClassifier-{c.__name__}")
      for c in (*_NO_DATA_CHECKS, ec.check_estimators_unfitted)],
])
def test_estimator_whose_fit_ignores_x_passes_the_checks_without_data(estimator, check):
    check(type(estimator).__name__, estimator)


# ----------------------------------------------------------------- descriptor contract

@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    out = np.stack([face_crop(a, rng) for a in (-14, 0, 7, 21)])
    out.setflags(write=False)
    return out


_REFERENCE = {}


def _reference(name, crops):
    """The rows of ``FEATURES[name]()`` for ``crops``, computed once per module."""
    if name not in _REFERENCE:
        _REFERENCE[name] = FEATURES[name]().fit(crops).transform(crops)
    return _REFERENCE[name]


def _same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_descriptor_parameters_and_state(name, crops):
    est = FEATURES[name]()
    params = est.get_params()
    assert clone(est).get_params() == params
    assert FEATURES[name]().set_params(**params).get_params() == params
    tags = get_tags(est)
    assert tags.requires_fit is False  # stateless: usable from its parameters
    assert tags.transformer_tags.preserves_dtype == ["float32"]  # any pixels -> float32
    check_is_fitted(clone(est))  # fitted from its parameters alone
    ref = _reference(name, crops)
    _same(clone(est).transform(crops), ref)  # before fit
    labels = np.array(["a", "b", "a", "b"])
    assert est.fit(crops, labels) is est
    assert est.get_params() == params
    added = [k for k in vars(est) if k not in params and not k.startswith("_")]
    assert added and all(k.endswith("_") for k in added), added
    assert est.image_shape_ == (48, 48)
    state = dict(vars(est))
    out = est.transform(crops)
    assert vars(est) == state  # transform changes nothing
    _same(out, ref)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.shape == (len(crops), est.n_features_out_) == (4, len(est.get_feature_names_out()))


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_descriptor_gives_the_same_rows_whatever_the_input_form(name, crops):
    est = FEATURES[name]().fit(crops)
    ref = _reference(name, crops)
    perm = [2, 0, 3, 1]
    _same(est.transform(crops[perm]), ref[perm])
    _same(FEATURES[name]().fit(crops[:1]).transform(crops[:1]), ref[:1])  # one crop
    two = crops[:2]
    for variant in (list(two), two.reshape(2, -1), np.asfortranarray(two),
                    two.astype(np.float32), two.astype(np.float64), two.astype(np.int64)):
        rows = est.transform(variant)
        assert rows.dtype == np.float32
        _same(rows, ref[:2])
    # pixels outside 0..255 are clipped
    _same(est.transform(np.where(two == 255, 400, two.astype(np.int64))), ref[:2])
    _same(pickle.loads(pickle.dumps(est)).transform(two), ref[:2])
    _same(clone(est).fit_transform(crops), ref)
    _same(est.fit(crops).transform(crops), ref)  # fitting again changes nothing


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_descriptor_refuses_input_that_is_not_crops(name, crops):
    est = FEATURES[name]()
    bad = crops.astype(np.float64)
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.fit(bad)
    bad[0, 3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.transform(bad)
    for X, message in [
        (crops[:0], "got 0 images"),
        (crops.astype(object), "got dtype=object"),
        (crops.astype(np.complex128), "Complex data not supported"),
        (crops[0], "48 columns, not a square number"),  # one crop without the batch axis
        (np.zeros((10, 1)), "crop is 1x1"),
        (crops.ravel(), "expected \\(N, H, W\\) face crops"),
        (sparse.csr_matrix(crops.reshape(4, -1)), "sparse input is not supported"),
    ]:
        with pytest.raises(ValueError, match=message):
            est.fit(X)
        with pytest.raises(ValueError, match=message):
            est.transform(X)


# ----------------------------------------------------------------- FaceCropper contract

def test_face_cropper_contract(crops):
    photos = crops  # whole images of one face each
    est = FaceCropper(detector=None, landmarks=None, size=32)
    params = est.get_params()
    assert clone(est).get_params() == params
    assert FaceCropper().set_params(**params).get_params() == params
    assert get_tags(est).requires_fit is False
    before = clone(est).transform(photos)  # stateless: no fit needed
    assert est.fit(photos) is est and est.get_params() == params
    out = est.transform(photos)
    assert out.shape == (4, 32, 32) and out.dtype == np.uint8 and est.found_.all()
    np.testing.assert_array_equal(before, out)
    assert len(est.get_feature_names_out()) == out[0].size
    np.testing.assert_array_equal(est.transform(photos[[3, 1]]), out[[3, 1]])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(photos), out)
    # the parameters are checked on every call, fitted or not
    with pytest.raises(ConfigError, match="no_face"):
        clone(est).set_params(no_face="ignore").transform(photos)
    with pytest.raises(ConfigError, match="size"):
        est.set_params(size=2).transform(photos)


# ----------------------------------------------------------------- PrefitClassifier contract

def test_prefit_classifier_contract():
    X = np.random.default_rng(0).integers(0, 256, (6, 8, 8)).astype(np.uint8)
    with pytest.raises(NotFittedError, match="has no model"):
        PrefitClassifier().predict(X)
    model = _TableModel()
    est = PrefitClassifier(model)
    params = est.get_params()
    assert clone(est).get_params().keys() == params.keys()
    assert PrefitClassifier().set_params(**params).get_params() == params
    assert est.fit(X, ["happy"] * 6) is est and est.model is model  # fit trains nothing
    assert est.classes_.tolist() == ["happy", "sad", "angry"]
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba, model.predict_proba(X))
    assert est.predict(X).tolist() == [model.labels[i] for i in proba.argmax(1)]
    np.testing.assert_array_equal(est.predict(X[[4, 0]]), est.predict(X)[[4, 0]])
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict_proba(X), proba)

    class TwoColumns(_TableModel):
        def predict_proba(self, X):
            return super().predict_proba(X)[:, :2]

    with pytest.raises(ModelError, match=r"shape \(6, 2\); expected \(N, 3\)"):
        PrefitClassifier(TwoColumns()).predict(X)


# ----------------------------------------------------------------- CNNClassifier contract

def _stripes(n=16, seed=0):
    """16x16 crops: class "h" has horizontal stripes, class "v" vertical ones."""
    rng = np.random.default_rng(seed)
    y = np.array(["h", "v"] * (n // 2))
    x = rng.integers(0, 60, (n, 16, 16)).astype(np.uint8)
    stripes = (150 * ((np.arange(16) // 2) % 2)).astype(np.uint8)
    x[y == "h"] += stripes[:, None]
    x[y == "v"] += stripes[None, :]
    return x, y


@needs_torch
def test_cnn_classifier_contract():
    x, y = _stripes()
    est = CNNClassifier(epochs=4, lr=1e-2, batch_size=8, widths=(4, 8), seed=0)
    params = est.get_params()
    assert clone(est).get_params() == params
    assert CNNClassifier().set_params(**params).get_params() == params
    with pytest.raises(NotFittedError):
        est.predict(x)
    assert est.fit(x, y) is est and est.get_params() == params
    assert est.classes_.tolist() == ["h", "v"]
    state = dict(vars(est))
    proba = est.predict_proba(x)
    assert vars(est) == state
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    pred = est.predict(x)
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(1)])
    assert (pred == y).mean() >= 0.75  # the stripes are learnt
    perm = np.random.default_rng(1).permutation(16)
    np.testing.assert_allclose(est.predict_proba(x[perm]), proba[perm], atol=1e-5)
    np.testing.assert_allclose(est.predict_proba(x[:3]), proba[:3], atol=1e-5)
    np.testing.assert_allclose(est.predict_proba(list(x)), proba, atol=1e-5)
    np.testing.assert_allclose(est.predict_proba(np.asfortranarray(x)), proba, atol=1e-5)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict_proba(x), proba,
                               atol=1e-5)
    np.testing.assert_allclose(clone(est).fit(list(x), list(y)).predict_proba(x), proba,
                               atol=1e-5)  # the same seed trains the same network


@needs_torch
def test_cnn_classifier_refusals_and_one_class():
    x, y = _stripes(8)
    est = CNNClassifier(epochs=1, batch_size=8, widths=(4, 8))
    bad = x.astype(np.float64)
    bad[0, 2, 2] = np.nan
    for X, labels, message in [
        (bad, y, "NaN or infinity"),
        (sparse.csr_matrix(x.reshape(8, -1)), y, "sparse input is not supported"),
        (x, None, "requires y to be passed"),
        (x, np.linspace(0, 1, 8), "Unknown label type: continuous"),
        (x, y[:, None], "target distributions with 1 columns"),
        (x[0], y[:1], "expected \\(N, H, W\\) grayscale crops"),
    ]:
        with pytest.raises(DataError, match=message):
            clone(est).fit(X, labels)
    fitted = clone(est).fit(x, y)
    with pytest.raises(DataError, match="NaN or infinity"):
        fitted.predict(bad)
    one = clone(est).fit(x, ["happy"] * 8)
    assert one.predict(x).tolist() == ["happy"] * 8
