"""The metric record the CNN training scripts write (accuracy, macro-F1, per-class F1)."""

from __future__ import annotations


def f1_record(y_true, y_pred, classes) -> dict:
    """``accuracy``, ``macro_f1`` and ``per_class_f1`` (by class name) of index labels.

    ``y_true``/``y_pred`` are indices into ``classes``; per-class F1 is computed for every
    class (``labels=range(len(classes))``), so a class absent from both scores 0 under its
    own name.
    """
    from sklearn.metrics import accuracy_score, f1_score

    per_class = f1_score(y_true, y_pred, labels=range(len(classes)), average=None)
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
            "per_class_f1": dict(zip(classes, map(float, per_class), strict=True))}
