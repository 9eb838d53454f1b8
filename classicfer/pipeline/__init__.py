"""Classical classifiers by name and full pipelines on face crops.

A pipeline is ``features -> scale -> reduce -> classifier``::

    Pipeline([("features", make_features("hog+lbp")),
              ("scale", StandardScaler()),
              ("reduce", "passthrough" | PCA(n)),
              ("classifier", <from CLASSIFIERS>)])

The feature step is stateless (rebuilt at run time from JSON); everything after
it (the *head*) is learned and exported to ONNX (:func:`to_onnx`). Every
classifier gives probabilities and ``predict`` is their argmax, so the sklearn
pipeline and the ONNX graph report the same class: margin classifiers (LinearSVC,
RBF SVC) are wrapped in ``CalibratedClassifierCV(method="sigmoid")``.

Modules: ``_xgboost`` (:class:`XGBoostClassifier`), ``_registry`` (:data:`CLASSIFIERS`,
:func:`register_classifier`), ``_params`` (:func:`route_params`: ``C``, ``pca``,
``hog__orientations`` -> the pipeline's own names), ``_build`` (:func:`make_pipeline`,
:func:`make_head`), ``_fit`` (:func:`fit_pipeline` with the feature cache), ``_onnx``
(:func:`to_onnx`, :func:`onnx_parity`). Writing a model folder is
:func:`classicfer.export.save_model`.
"""

from ._build import classifier_name, head_of, make_head, make_pipeline, set_random_state
from ._fit import check_training_labels, fit_pipeline
from ._onnx import PARITY_MIN, onnx_parity, onnx_probabilities, to_onnx
from ._params import (
    check_param_values,
    prefix_of,
    reduce_step,
    route_params,
    scale_step,
    unknown_param_error,
)
from ._registry import CLASSIFIERS, ClassifierSpec, check_classifier_name, register_classifier
from ._xgboost import XGBoostClassifier

__all__ = [
    "CLASSIFIERS",
    "PARITY_MIN",
    "ClassifierSpec",
    "XGBoostClassifier",
    "check_classifier_name",
    "check_param_values",
    "check_training_labels",
    "classifier_name",
    "fit_pipeline",
    "head_of",
    "make_head",
    "make_pipeline",
    "onnx_parity",
    "onnx_probabilities",
    "prefix_of",
    "reduce_step",
    "register_classifier",
    "route_params",
    "scale_step",
    "set_random_state",
    "to_onnx",
    "unknown_param_error",
]
