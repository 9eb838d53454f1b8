"""FER+ (Barsoum et al., 2016): FER-2013's faces with 10 annotators' votes each.

Two layouts, as people have them:

* Microsoft's ``FER2013Train|FER2013Valid|FER2013Test/`` folders, each with
  ``fer<row>.png`` images and a ``label.csv`` (``name,"(0, 0, 48, 48)",<10 vote counts>``);
* ``fer2013new.csv`` (``Usage,Image name,<10 vote counts>``) beside FER-2013's own
  ``fer2013.csv``, joined by row (the pixels come from ``fer2013.csv``).

The ten vote columns are :data:`VOTE_COLUMNS`. ``Dataset.votes`` keeps them (shape (N, 10)).
``labels`` is the majority by the rule of microsoft/FERPlus ``src/ferplus.py`` ("majority"
mode, :func:`majority_vote`); images without a majority emotion (no class holds more than
half of the votes once single votes are dropped, or the majority is unknown / not a face) are
left out and listed in ``skipped``.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from ..exceptions import DataError
from ._base import Dataset
from ._read import read_many

#: Vote columns of ``label.csv`` / ``fer2013new.csv``, in file order.
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
#: Canonical emotion of each of the first eight vote columns.
VOTE_EMOTIONS = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
#: Folder -> split.
FERPLUS_FOLDERS = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}
_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def majority_vote(votes) -> np.ndarray:
    """Index of the majority emotion (0-7, :data:`VOTE_EMOTIONS`) of each row, -1 for none.

    The rule of microsoft/FERPlus ``src/ferplus.py`` ("majority" mode): single votes are
    dropped as outliers; the top column must hold more than half of the remaining votes;
    a majority of ``unknown`` or ``NF`` (not a face) counts as none.
    """
    v = np.asarray(votes, dtype=np.float64).reshape(-1, len(VOTE_COLUMNS)).copy()
    v[v <= 1.0] = 0.0
    total = v.sum(axis=1)
    top = v.argmax(axis=1)
    ok = (v.max(axis=1) > 0.5 * total) & (total > 0) & (top < len(VOTE_EMOTIONS))
    return np.where(ok, top, -1)


def vote_distribution(votes, classes=VOTE_EMOTIONS) -> np.ndarray:
    """(N, len(classes)) float32 share of the emotion votes for each of ``classes``.

    ``unknown``/``NF`` votes are left out and every row sums to 1 (a row without any
    emotion vote becomes uniform).
    """
    v = np.asarray(votes, dtype=np.float64).reshape(-1, len(VOTE_COLUMNS))
    cols = [VOTE_EMOTIONS.index(c) for c in classes]
    d = v[:, cols]
    s = d.sum(axis=1, keepdims=True)
    d = np.where(s > 0, d / np.where(s > 0, s, 1), 1.0 / len(cols))
    return d.astype(np.float32)


def agreement(votes, labels) -> np.ndarray:
    """Share of all votes (unknown and NF included) that went to each image's label."""
    v = np.asarray(votes, dtype=np.float64).reshape(-1, len(VOTE_COLUMNS))
    col = np.array([VOTE_EMOTIONS.index(str(c)) for c in labels], dtype=int)
    total = v.sum(axis=1)
    return np.where(total > 0, v[np.arange(len(v)), col] / np.where(total > 0, total, 1), 0.0)


def vote_summary(ds) -> dict:
    """Excluded images per split and the histogram of annotator agreement (tenths)."""
    import re

    excluded = {}
    for _, reason in ds.skipped:
        m = re.search(r"no majority emotion .*\((\w+|no split)\)$", str(reason))
        if m:
            excluded[m.group(1)] = excluded.get(m.group(1), 0) + 1
    share = np.round(agreement(ds.votes, ds.labels) * 10).astype(int)
    hist = {f"{k}/10": int(np.sum(share == k)) for k in range(10, -1, -1) if np.any(share == k)}
    return {"excluded_no_majority": excluded, "agreement_histogram": hist}


def _parse_votes(row, where: str) -> np.ndarray:
    try:
        votes = np.array([int(float(c)) for c in row], dtype=np.int16)
    except ValueError:
        raise DataError(f"{where}: vote counts must be integers") from None
    if len(votes) != len(VOTE_COLUMNS) or votes.min() < 0:
        raise DataError(f"{where}: expected {len(VOTE_COLUMNS)} non-negative vote counts "
                        f"({', '.join(VOTE_COLUMNS)}), got {len(votes)}")
    return votes


def _read_label_csv(path: str):
    names, votes = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if not row or not row[0].strip() or row[0].strip().lower() == "image name":
                continue
            if len(row) < 2 + len(VOTE_COLUMNS):
                raise DataError(f"{path}:{n}: expected name, box and {len(VOTE_COLUMNS)} "
                                f"vote counts, got {len(row)} fields")
            names.append(row[0].strip())
            votes.append(_parse_votes(row[2:2 + len(VOTE_COLUMNS)], f"{path}:{n}"))
    return names, votes


def ferplus_layout(root: str) -> list[str]:
    """The FER+ split folders (holding a ``label.csv``) directly under ``root``."""
    return [d for d in FERPLUS_FOLDERS
            if os.path.isfile(os.path.join(root, d, "label.csv"))]


def _finish(images, votes, splits, paths, skipped, root, fmt, sha=None) -> Dataset:
    votes = np.asarray(votes, dtype=np.int16).reshape(-1, len(VOTE_COLUMNS))
    major = majority_vote(votes)
    keep = major >= 0
    for p, sp in zip(np.asarray(paths)[~keep], np.asarray(splits)[~keep], strict=True):
        skipped.append((str(p), (f"{p}: no majority emotion among the annotators' votes "
                                f"({sp or 'no split'})")))
    labels = np.array(VOTE_EMOTIONS, dtype="<U8")[major[keep]]
    return Dataset(images=images[keep], labels=labels, subjects=None,
                   splits=np.asarray(splits, dtype="<U5")[keep],
                   paths=np.asarray(paths)[keep], name="ferplus", format=fmt, root=root,
                   skipped=skipped, sha256=None if sha is None else np.asarray(sha)[keep],
                   votes=votes[keep])


def load_ferplus(root, *, progress: bool = False) -> Dataset:
    """Load FER+ from Microsoft's folders or from ``fer2013new.csv`` + ``fer2013.csv``.

    Parameters
    ----------
    root : str
        A folder holding ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` (each with
        ``label.csv``), or a folder / path of ``fer2013new.csv`` with ``fer2013.csv`` beside it.

    Returns
    -------
    Dataset
        ``votes`` (N, 10) vote counts; ``labels`` the majority emotion (8 classes, contempt
        included); splits train (FER2013Train / Training), val (Valid / PublicTest),
        test (Test / PrivateTest). Images without a majority are in ``skipped``.
    """
    root = os.fspath(root)
    if os.path.isdir(root) and ferplus_layout(root):
        return _load_folders(root, progress)
    csv_new = root if os.path.isfile(root) else os.path.join(root, "fer2013new.csv")
    if not os.path.isfile(csv_new):
        raise DataError(f"{root}: expected FER2013Train/ FER2013Valid/ FER2013Test/ with "
                        "label.csv, or fer2013new.csv beside fer2013.csv")
    return _load_csv_pair(csv_new, progress)


def _load_folders(root: str, progress: bool) -> Dataset:
    paths, votes, splits = [], [], []
    for folder in ferplus_layout(root):
        names, v = _read_label_csv(os.path.join(root, folder, "label.csv"))
        paths += [os.path.join(root, folder, n) for n in names]
        votes += v
        splits += [FERPLUS_FOLDERS[folder]] * len(names)
    images, ok, skipped, sha = read_many(paths, size=(48, 48), progress=progress, desc="ferplus")
    ok = np.asarray(ok)
    return _finish(images, np.asarray(votes)[ok], np.asarray(splits)[ok], np.asarray(paths)[ok],
                   list(skipped), root, "ferplus", sha)


def _load_csv_pair(csv_new: str, progress: bool) -> Dataset:
    from ._fer2013 import load_fer2013_csv

    fer_csv = os.path.join(os.path.dirname(os.path.abspath(csv_new)), "fer2013.csv")
    if not os.path.isfile(fer_csv):
        raise DataError(f"{csv_new}: fer2013new.csv holds only votes; put FER-2013's "
                        "fer2013.csv beside it (the pixels are joined by row)")
    fer = load_fer2013_csv(fer_csv, progress=progress)
    if fer.skipped:
        raise DataError(f"{fer_csv}: {len(fer.skipped)} unreadable rows; the row-by-row join "
                        "with fer2013new.csv needs every row")
    rows = []
    with open(csv_new, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for n, row in enumerate(reader, start=2):
            if row:
                rows.append((n, row))
    if len(rows) != len(fer):
        raise DataError(f"{csv_new}: {len(rows)} rows, but {fer_csv} has {len(fer)}; "
                        "the two files must have the same rows in the same order")
    keep, votes, splits, paths, skipped = [], [], [], [], []
    for i, (n, row) in enumerate(rows):
        where = f"{csv_new}:{n}"
        if len(row) < 2 + len(VOTE_COLUMNS) or not row[1].strip():
            skipped.append((where, f"{where}: no image name (voted not a face)"))
            continue
        keep.append(i)
        votes.append(_parse_votes(row[2:2 + len(VOTE_COLUMNS)], where))
        splits.append(_USAGE.get(row[0].strip(), fer.splits[i]))
        paths.append(f"{fer_csv}:{i + 2}")
    keep = np.asarray(keep, dtype=int)
    return _finish(fer.images[keep], votes, splits, paths, skipped, csv_new, "ferplus",
                   fer.sha256[keep])
