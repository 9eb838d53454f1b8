"""Evaluation protocols: which rows fit the model and which rows score it.

=================  ==========================================================
``official``       FER-2013: fit on ``train`` (Training), choose hyper-parameters
                   on ``val`` (PublicTest) when a grid is given, report ``test``
                   (PrivateTest). Needs all three splits.
``split``          Any dataset with its own train/test: fit on ``train`` + ``val``,
                   report ``test``.
``subject-kfold``  ``StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)``
                   grouped by subject (CK+): no subject is on both sides of a fold
                   (asserted). Needs subject ids.
``loso``           Leave one subject out (JAFFE): one fold per subject.
``cross-dataset``  Fit on dataset A, test on every row of dataset B, over the
                   classes they share.
=================  ==========================================================

A prefit model (a deployment folder or an already-fitted estimator) cannot be
refitted per fold, so it is only accepted by ``official``/``split`` (predict the
test split) and ``cross-dataset`` (predict every row of B). Scoring it on the
folds of ``subject-kfold``/``loso`` would just score it on the whole dataset in
pieces, and if the model saw those images in training the figure would be
meaningless, so the harness refuses and names the protocols that fit.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError, DataError

PROTOCOLS = ("official", "split", "subject-kfold", "loso", "cross-dataset")


def _has(dataset, split):
    return bool(np.any(dataset.splits == split))


def applicable_protocols(dataset, *, folds: int = 10) -> list[str]:
    """The protocols that ``dataset`` supports (``cross-dataset`` always, given a 2nd set)."""
    out = []
    if _has(dataset, "train") and _has(dataset, "val") and _has(dataset, "test"):
        out.append("official")
    if _has(dataset, "train") and _has(dataset, "test"):
        out.append("split")
    if dataset.subjects is not None:
        n_subj = len(set(dataset.subjects))
        if n_subj >= folds:
            out.append("subject-kfold")
        if n_subj >= 2:
            out.append("loso")
    out.append("cross-dataset")
    return out


def default_protocol(dataset, *, folds: int = 10) -> str:
    """``official`` when the dataset has it, else ``subject-kfold``, else ``split``."""
    fits = applicable_protocols(dataset, folds=folds)
    for p in ("official", "subject-kfold", "split", "loso"):
        if p in fits:
            return p
    raise DataError(f"{dataset.name}: no train/test split and no subject ids, so no "
                    f"within-dataset protocol fits; use --protocol cross-dataset with "
                    f"--test-data")


def check_protocol(dataset, protocol: str, *, folds: int = 10, prefit: bool = False) -> None:
    """Raise a one-line error when ``protocol`` cannot run on ``dataset``."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    fits = applicable_protocols(dataset, folds=folds)
    if prefit:
        fits = [p for p in fits if p not in ("subject-kfold", "loso")]
        if protocol in ("subject-kfold", "loso"):
            raise ConfigError(
                f"protocol {protocol!r} refits the model on every fold, but this model is "
                f"already trained (prefit); protocols that fit a prefit model on "
                f"{dataset.name}: {', '.join(fits)} (or give --features/--classifier to "
                f"train one per fold)")
    if protocol in fits or (prefit and protocol == "split" and _has(dataset, "test")):
        return  # a prefit model needs only the test rows
    present = sorted(set(dataset.splits) - {""})
    why = {
        "official": f"needs train, val and test splits (FER-2013's Training/PublicTest/"
                    f"PrivateTest); {dataset.name} has "
                    f"{', '.join(present) if present else 'no split column'}",
        "split": f"needs train and test splits; {dataset.name} has "
                 f"{', '.join(present) if present else 'no split column'}",
        "subject-kfold": (f"needs subject ids, and {dataset.name} has none"
                          if dataset.subjects is None else
                          f"needs at least {folds} subjects for {folds} folds; "
                          f"{dataset.name} has {len(set(dataset.subjects))} (lower --folds)"),
        "loso": (f"needs subject ids, and {dataset.name} has none"
                 if dataset.subjects is None else
                 f"needs at least 2 subjects; {dataset.name} has "
                 f"{len(set(dataset.subjects))}"),
    }[protocol]
    raise DataError(f"protocol {protocol!r} {why}; protocols that fit {dataset.name}: "
                    f"{', '.join(fits)}")


def subject_kfold(labels, subjects, *, n_splits: int = 10, seed: int = 0):
    """Stratified, subject-grouped folds: list of (train_idx, test_idx).

    Raises ``AssertionError`` if a subject ever lands on both sides (it cannot,
    by construction of :class:`~sklearn.model_selection.StratifiedGroupKFold`;
    the check guards against a regression).
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    labels = np.asarray(labels)
    subjects = np.asarray(subjects)
    with warnings.catch_warnings():  # "least populated class has only k members"
        warnings.simplefilter("ignore", UserWarning)
        folds = list(cv.split(np.zeros(len(labels)), labels, subjects))
    for tr, te in folds:
        shared = set(subjects[tr]) & set(subjects[te])
        assert not shared, f"subjects on both sides of a fold: {sorted(shared)[:5]}"
    return folds, repr(cv)


def leave_one_subject_out(subjects):
    from sklearn.model_selection import LeaveOneGroupOut

    cv = LeaveOneGroupOut()
    subjects = np.asarray(subjects)
    folds = list(cv.split(np.zeros(len(subjects)), groups=subjects))
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
    return folds, repr(cv)
