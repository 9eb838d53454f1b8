"""Classification metrics on label arrays: one dict, JSON-ready, deterministic."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true, y_pred, labels) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class scores and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : (N,) array-like of str
        True and predicted labels.
    labels : list of str
        Class order of the per-class table and the confusion matrix. Predictions
        outside ``labels`` count as errors (they appear in no column).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``macro_f1`` (over ``labels``),
        ``per_class`` (label -> precision/recall/f1/support), ``confusion``
        (counts, rows = true, columns = predicted) and ``confusion_normalized``
        (each row divided by its total; an empty row stays 0).

    Notes
    -----
    Balanced accuracy is the mean recall over the classes present in
    ``y_true``, as :func:`sklearn.metrics.balanced_accuracy_score`; macro-F1 is
    the unweighted mean F1 over ``labels`` (absent classes score 0, as sklearn's
    ``zero_division=0``).
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    labels = [str(c) for c in labels]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} rows, y_pred {y_pred.shape[0]}")
    if len(y_true) == 0:
        raise ValueError("no predictions to score (empty test set)")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    rows = cm.sum(axis=1, keepdims=True)
    cmn = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    import warnings

    with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
        warnings.simplefilter("ignore")
        bal = balanced_accuracy_score(y_true, y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(bal),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]),
                          "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(labels)},
        "confusion": cm.astype(int).tolist(),
        "confusion_normalized": cmn.tolist(),
    }


#: The metric names every classicfer result uses (metrics.json, grid summaries, sidecars,
#: benchmarks), with the scikit-learn scorer that computes each in a grid search. Per
#: fold and over folds they take scikit-learn's ``test_``, ``mean_test_``,
#: ``std_test_`` prefixes (``mean_test_macro_f1``).
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
SCORERS = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy",
           "macro_f1": "f1_macro"}


def split_metrics(y_true, y_pred, labels=None, *, split: str) -> dict:
    """The metric record of one scored split, as fit and train-cnn store it with a model.

    Parameters
    ----------
    y_true, y_pred : (N,) array-like of str
        True and predicted labels.
    labels : list of str, optional
        Classes of the per-class table and of macro-F1; by default those present in
        ``y_true`` or ``y_pred`` (scikit-learn's default), in canonical order (other
        names after them, sorted).
    split : str
        Which rows were scored (``"val"``, ``"test"``).

    Returns
    -------
    dict
        ``split``, ``n``, and :data:`METRICS` and ``per_class`` as
        :func:`classification_metrics` computes them.
    """
    from ..labels import label_order

    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if labels is None:
        present = set(y_true) | set(y_pred)
        labels = label_order(present)
        labels += sorted(present - set(labels))
    m = classification_metrics(y_true, y_pred, labels)
    return {"split": split, "n": len(y_true), **{k: m[k] for k in (*METRICS, "per_class")}}


def bootstrap_accuracy_ci(y_true, y_pred, *, groups=None, n_boot=1000, level=0.95, seed=0):
    """Percentile bootstrap interval for accuracy.

    Parameters
    ----------
    y_true, y_pred : (N,) array-like
    groups : (N,) array-like or None
        When given (e.g. subject ids), whole groups are resampled (a cluster
        bootstrap), because the images of one subject are not independent.
    n_boot : int
        Number of resamples.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the resampling; the same inputs and seed give the same interval.

    Returns
    -------
    (low, high) : tuple of float
    """
    correct = (np.asarray(y_true).astype(str) == np.asarray(y_pred).astype(str)).astype(float)
    rng = np.random.default_rng(seed)
    if groups is None:
        n = len(correct)
        idx = rng.integers(0, n, size=(n_boot, n))
        accs = correct[idx].mean(axis=1)
    else:
        _, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        sums = np.bincount(inv, weights=correct)
        counts = np.bincount(inv).astype(float)
        g = len(counts)
        pick = rng.integers(0, g, size=(n_boot, g))
        accs = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(accs, [alpha, 1 - alpha])
    return float(lo), float(hi)


def fold_summary(folds: list[dict], keys=None) -> dict:
    """``mean_<key>`` and ``std_<key>`` over folds (population std, as sklearn's cv_results_).

    ``keys`` default to ``test_<metric>`` for each of :data:`METRICS`, ``fit_time`` and
    ``predict_time``.
    """
    if keys is None:
        keys = (*(f"test_{m}" for m in METRICS), "fit_time", "predict_time")
    out = {}
    for k in keys:
        vals = np.array([f[k] for f in folds if f.get(k) is not None], dtype=float)
        if len(vals) == 0:
            out[f"mean_{k}"] = None
            out[f"std_{k}"] = None
        else:
            out[f"mean_{k}"] = float(vals.mean())
            out[f"std_{k}"] = float(vals.std())
    return out


def top_confusions(confusion, labels, k=5, *, min_count=1):
    """The ``k`` largest off-diagonal cells of a confusion matrix.

    Returns a list of dicts ``{"true", "pred", "count", "rate"}`` sorted by rate
    (share of the true class's row), then count, then names; ties are broken by
    name so the order is deterministic.
    """
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1)
    pairs = []
    for i, t in enumerate(labels):
        for j, p in enumerate(labels):
            if i != j and cm[i, j] >= min_count and rows[i] > 0:
                pairs.append({"true": t, "pred": p, "count": int(cm[i, j]),
                              "rate": float(cm[i, j] / rows[i])})
    pairs.sort(key=lambda d: (-d["rate"], -d["count"], d["true"], d["pred"]))
    return pairs[:k]
