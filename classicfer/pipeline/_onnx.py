"""The learned head of a pipeline as ONNX, and its agreement with scikit-learn.

Everything after the feature step converts with skl2onnx (XGBoost through
onnxmltools); the graph takes ``features`` (N, n_features) float32 and outputs
``label`` and ``probabilities``.
"""

from __future__ import annotations

import copy
import functools

import numpy as np

from ..exceptions import ModelError
from ._build import head_of
from ._xgboost import XGBoostClassifier

#: agreement needed between sklearn and ONNX predictions before a model is saved
PARITY_MIN = 0.995


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
    """A shallow copy of a calibrated ``SVC`` whose SVCs are :func:`_onnx_svc_type`.

    The fitted arrays are shared and ``clf`` is left as it is; other classifiers are
    returned unchanged.
    """
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


