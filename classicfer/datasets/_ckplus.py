"""CK+: the CK+48 crops (``<class>/S###_###_########.png``)."""

from __future__ import annotations

import os

import numpy as np

from ..labels import canonical_label
from ._base import Dataset
from ._read import read_many


def load_ckplus48(root, *, progress: bool = False) -> Dataset:
    """Load CK+48: one folder per class, subject = the ``S###`` file-name prefix."""
    root = os.fspath(root)
    paths, labels = [], []
    for cls in sorted(os.listdir(root)):
        cdir = os.path.join(root, cls)
        if not os.path.isdir(cdir):
            continue
        label = canonical_label(cls)
        for fn in sorted(os.listdir(cdir)):
            paths.append(os.path.join(cdir, fn))
            labels.append(label)
    images, ok, skipped = read_many(paths, progress=progress, desc="ck+48")
    paths = np.array(paths)[ok]
    labels = np.array(labels)[ok]
    subjects = np.array([os.path.basename(p).split("_", 1)[0] for p in paths])
    return Dataset(images=images, labels=labels, subjects=subjects,
                   splits=np.full(len(paths), "", dtype="<U5"), paths=paths,
                   name="ckplus48", format="ckplus48", root=root, skipped=skipped)
