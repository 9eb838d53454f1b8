"""The parity check: whether an exported model says what the original says.

One comparison for every export: the classical head (scikit-learn vs its ONNX
graph, on feature vectors), the CNN (torch vs onnxruntime logits) and
``classicfer export`` (the original model vs the deployed folder run by the
runtime, on face crops). Each caller runs both models on the same inputs and
hands the two outputs to :func:`parity`.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ModelError


def _columns(reference, labels, deployed_labels):
    """``reference`` with its columns in ``deployed_labels`` order."""
    if labels is None or deployed_labels is None:
        return reference
    labels = list(labels)
    missing = [lab for lab in deployed_labels if lab not in labels]
    if missing:
        raise ModelError(f"parity check: the deployed model's label {missing[0]!r} is not "
                         f"among the original's ({', '.join(map(str, labels))})")
    return reference[:, [labels.index(lab) for lab in deployed_labels]]


def parity(reference, deployed, *, labels=None, deployed_labels=None,
           reference_pred=None) -> dict:
    """Compare the outputs of an original model and of its export on the same inputs.

    Parameters
    ----------
    reference, deployed : (N, K) array-like
        Scores of the original and of the exported model (probabilities or
        logits), one row per input. Differences are computed in the arrays' own
        precision (pass float64 to compare in float64).
    labels : sequence, optional
        The class of each ``reference`` column.
    deployed_labels : sequence, optional
        The class of each ``deployed`` column (default: ``labels``); when both
        are given, ``reference`` columns are reordered to match.
    reference_pred : (N,) array-like, optional
        The original's predicted classes when they are not the argmax of
        ``reference`` (scikit-learn's ``predict``); compared with the classes of
        the deployed argmax.

    Returns
    -------
    dict
        ``n`` (inputs), ``agreement`` (share of inputs on which both predict the
        same class) and ``max_abs_diff`` (largest absolute difference of the
        scores, 0 for no input).

    Raises
    ------
    ModelError
        The outputs do not have the same shape, or the labels do not match.
    """
    ref = _columns(np.asarray(reference), labels, deployed_labels)
    dep = np.asarray(deployed)
    if ref.ndim != 2 or ref.shape != dep.shape:
        raise ModelError(f"parity check: the original gives scores of shape {ref.shape}, "
                         f"the export {dep.shape}")
    if reference_pred is None:
        agree = ref.argmax(1) == dep.argmax(1)
    else:
        names = deployed_labels if deployed_labels is not None else labels
        names = np.arange(dep.shape[1]) if names is None else np.asarray(list(names))
        agree = names[dep.argmax(1)] == np.asarray(reference_pred)
    return {"n": len(dep), "agreement": float(np.mean(agree)),
            "max_abs_diff": float(np.abs(ref - dep).max()) if len(dep) else 0.0}


__all__ = ["parity"]
