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

:func:`make_cv` turns a protocol into a scikit-learn CV object (``PredefinedSplit`` for
the official and split protocols, ``StratifiedGroupKFold`` for subject-kfold,
``LeaveOneGroupOut`` for loso); the harness and the grid search both split with it.
"""

from __future__ import annotations

from typing import NamedTuple

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


#: The CV schemes of :func:`make_cv`: the within-dataset protocols, ``select`` (fit on
#: ``train``, score on ``val``: the hyper-parameter selection split) and ``kfold``.
CV_SCHEMES = ("official", "split", "select", "subject-kfold", "loso", "kfold")

_PREDEFINED = {  # scheme -> (rows it uses, rows it tests, description)
    "official": (("train", "test"), "test", "fit train, select val, report test"),
    "split": (("train", "val", "test"), "test", "fit train+val, report test"),
    "select": (("train", "val"), "val", "official split: fit on train, score on val"),
}


class CVPlan(NamedTuple):
    """A scikit-learn CV object, the rows it splits, and a one-line description.

    ``cv.split`` sees only ``rows`` (positions into the arrays given to
    :func:`make_cv`): the official split leaves ``val`` out of its folds, for example.
    """

    cv: object
    rows: np.ndarray
    description: str

    def folds(self, labels, groups=None) -> list:
        """``[(train, test), ...]``: index arrays into the full arrays, not into ``rows``."""
        import warnings

        labels = np.asarray(labels)[self.rows]
        g = None if groups is None else np.asarray(groups)[self.rows]
        with warnings.catch_warnings():  # "least populated class has only k members"
            warnings.simplefilter("ignore", UserWarning)
            pairs = list(self.cv.split(np.zeros(len(self.rows)), labels, g))
        out = [(self.rows[a], self.rows[b]) for a, b in pairs]
        if g is not None:
            subjects = np.asarray(groups)
            for tr, te in out:
                shared = set(subjects[tr]) & set(subjects[te])
                assert not shared, f"subjects on both sides of a fold: {sorted(shared)[:5]}"
        return out


def make_cv(scheme: str, *, labels, groups=None, splits=None, n_splits: int = 10,
            seed: int = 0) -> CVPlan:
    """The scikit-learn CV object of a protocol.

    Parameters
    ----------
    scheme : {'official', 'split', 'select', 'subject-kfold', 'loso', 'kfold'}
        ``official``: :class:`~sklearn.model_selection.PredefinedSplit`, fit on ``train``,
        test on ``test`` (``val`` left out, for selection); ``split``: fit on ``train`` +
        ``val``, test on ``test``; ``select``: fit on ``train``, test on ``val``;
        ``subject-kfold``: ``StratifiedGroupKFold(n_splits, shuffle=True,
        random_state=seed)`` grouped by subject; ``loso``: ``LeaveOneGroupOut``;
        ``kfold``: ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``.
    labels : (N,) array-like
        Class of each row.
    groups : (N,) array-like, optional
        Subject of each row (``subject-kfold``, ``loso``).
    splits : (N,) array-like of str, optional
        ``train``/``val``/``test`` of each row (the predefined schemes).
    n_splits, seed : int
        Number of folds and seed of the shuffled splitters.

    Returns
    -------
    CVPlan
        ``cv``, the ``rows`` it splits and the description recorded in reports
        (the splitter's repr for the k-fold schemes).

    Raises
    ------
    ConfigError
        An unknown scheme, or a grouped scheme without ``groups``.
    """
    from sklearn.model_selection import (
        LeaveOneGroupOut,
        PredefinedSplit,
        StratifiedGroupKFold,
        StratifiedKFold,
    )

    n = len(labels)
    if scheme in _PREDEFINED:
        used, tested, desc = _PREDEFINED[scheme]
        sp = np.asarray(splits if splits is not None else [""] * n).astype(str)
        rows = np.flatnonzero(np.isin(sp, used))
        return CVPlan(PredefinedSplit(np.where(sp[rows] == tested, 0, -1)), rows, desc)
    if scheme in ("subject-kfold", "loso") and groups is None:
        raise ConfigError(f"CV scheme {scheme!r} needs subject ids")
    cv = {"subject-kfold": lambda: StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                                         random_state=seed),
          "loso": LeaveOneGroupOut,
          "kfold": lambda: StratifiedKFold(n_splits, shuffle=True, random_state=seed)}.get(scheme)
    if cv is None:
        raise ConfigError(f"unknown CV scheme {scheme!r}; choose from {', '.join(CV_SCHEMES)}")
    cv = cv()
    return CVPlan(cv, np.arange(n), repr(cv))


def subject_kfold(labels, subjects, *, n_splits: int = 10, seed: int = 0):
    """Stratified, subject-grouped folds: list of (train_idx, test_idx), and the splitter's repr.

    Raises ``AssertionError`` if a subject ever lands on both sides (it cannot,
    by construction of :class:`~sklearn.model_selection.StratifiedGroupKFold`;
    the check guards against a regression).
    """
    plan = make_cv("subject-kfold", labels=labels, groups=subjects, n_splits=n_splits, seed=seed)
    return plan.folds(labels, subjects), plan.description


def leave_one_subject_out(subjects):
    """One fold per subject: list of (train_idx, test_idx), and the splitter's repr."""
    plan = make_cv("loso", labels=np.zeros(len(subjects)), groups=subjects)
    return plan.folds(np.zeros(len(subjects)), subjects), plan.description
