"""FER-2013 in its folder layout (``train/<class>/Training_*.jpg``, ``test/<class>/...``)."""

from __future__ import annotations

import os

import numpy as np

from ..labels import canonical_label
from ._base import Dataset
from ._read import read_many

USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def _usage_of(filename: str) -> str:
    prefix = filename.split("_", 1)[0]
    return USAGE_TO_SPLIT.get(prefix, "")


def load_fer2013_folder(root, *, progress: bool = False) -> Dataset:
    """Load FER-2013 from the common folder layout.

    The split comes from the file prefix: ``Training_`` -> ``train``,
    ``PublicTest_`` -> ``val``, ``PrivateTest_`` -> ``test``.
    """
    root = os.fspath(root)
    paths, labels = [], []
    for part in ("train", "test"):
        pdir = os.path.join(root, part)
        if not os.path.isdir(pdir):
            continue
        for cls in sorted(os.listdir(pdir)):
            cdir = os.path.join(pdir, cls)
            if not os.path.isdir(cdir):
                continue
            label = canonical_label(cls)
            for fn in sorted(os.listdir(cdir)):
                paths.append(os.path.join(cdir, fn))
                labels.append(label)
    images, ok, skipped = read_many(paths, size=(48, 48), progress=progress, desc="fer2013")
    paths = np.array(paths)[ok]
    labels = np.array(labels)[ok]
    splits = np.array([_usage_of(os.path.basename(p)) for p in paths])
    return Dataset(images=images, labels=labels, subjects=None, splits=splits, paths=paths,
                   name="fer2013", format="fer2013-folder", root=root, skipped=skipped)
