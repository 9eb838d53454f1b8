"""Classical pipelines -> model folders: the classifier head in ONNX, features in Python.

:func:`save_model` converts everything after the feature step
(:func:`classicfer.pipeline.to_onnx`), checks that ONNX and scikit-learn agree on
face crops (:func:`head_parity`, i.e. :func:`classicfer.export.parity`) and writes
the folder with :func:`classicfer.export.write_model_dir`; the runtime rebuilds the
features from the sidecar's ``features.spec/params``.
"""

from __future__ import annotations

import json

import numpy as np

from ..exceptions import ModelError
from ..pipeline import PARITY_MIN, classifier_name, head_of, onnx_probabilities, to_onnx
from ._folder import write_model_dir
from ._parity import parity


def head_parity(pipeline, onnx_bytes: bytes, features: np.ndarray) -> dict:
    """:func:`~classicfer.export.parity` of the ONNX head and the scikit-learn head.

    Parameters
    ----------
    pipeline : fitted classicfer pipeline
    onnx_bytes : bytes
        Its head as ONNX (:func:`classicfer.pipeline.to_onnx`).
    features : (N, n_features) ndarray
        Feature vectors of face crops.

    Returns
    -------
    dict
        ``{"agreement", "n", "max_abs_prob_diff"}``, the record stored in the
        sidecar's ``training.onnx_parity`` (agreement of ONNX's argmax with
        scikit-learn's ``predict``).
    """
    head = head_of(pipeline)
    p = parity(head.predict_proba(features), onnx_probabilities(onnx_bytes, features),
               labels=list(head.classes_), reference_pred=head.predict(features))
    return {"agreement": p["agreement"], "n": p["n"], "max_abs_prob_diff": p["max_abs_diff"]}


def save_model(pipeline, out_dir, *, dataset_name: str, metrics: dict | None = None,
               training: dict | None = None, check_images=None, name: str | None = None):
    """Write ``model.onnx`` + ``model.json`` (+ ``model_card.md``) for a fitted pipeline.

    Checks that ONNX and sklearn agree on at least 99.5 % of ``check_images``
    (face crops; by default 256 noise crops of the training size) and refuses
    to save otherwise.

    Returns
    -------
    pathlib.Path of the folder, and the parity report in ``training["onnx_parity"]``.
    """
    from ..features import feature_config, feature_spec_of
    from ..features.cache import compute_features

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
    check = head_parity(pipeline, onnx_bytes, F)
    if check["agreement"] < PARITY_MIN:
        raise ModelError(f"ONNX and scikit-learn agree on {check['agreement']:.2%} of "
                         f"{check['n']} images (< {PARITY_MIN:.1%}); refusing to save")
    classifier = classifier_name(pipeline)
    spec = feature_spec_of(feat)
    train = dict(training or {})
    train["onnx_parity"] = check
    train.setdefault("classifier", classifier)
    train.setdefault("head_params", _jsonable(head.get_params(deep=True)))
    sidecar = {
        "kind": "classical",
        "name": name or f"{dataset_name}-{spec}-{classifier}",
        "labels": [str(c) for c in head.classes_],
        "input": {"size": [int(shape[0]), int(shape[1])], "color": "gray", "crop": "whole"},
        "features": feature_config(feat),  # spec, params and the alignment step, if any
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
    from sklearn.base import BaseEstimator

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


__all__ = ["head_parity", "save_model"]
