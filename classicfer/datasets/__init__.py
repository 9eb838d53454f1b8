"""Dataset loaders: every format -> one :class:`Dataset` record."""

from __future__ import annotations

import os

from ..exceptions import DataError
from ._base import SPLITS, Dataset
from ._ckplus import load_ckplus48
from ._fer2013 import load_fer2013_folder

LOADERS = {
    "fer2013-folder": load_fer2013_folder,
    "ckplus48": load_ckplus48,
}


def detect_format(path) -> str:
    """Guess the dataset format of ``path`` (see :data:`LOADERS`)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        entries = set(os.listdir(path))
        if not entries:
            raise DataError(f"{path}: folder is empty")
        if {"train", "test"} & entries:
            return "fer2013-folder"
        for d in entries:
            sub = os.path.join(path, d)
            if os.path.isdir(sub) and any(f.startswith("S") and f.endswith(".png")
                                          for f in os.listdir(sub)[:5]):
                return "ckplus48"
    raise DataError(f"{path}: unknown dataset layout; use --format with one of "
                    f"{', '.join(LOADERS)}")


def load_dataset(path, format: str | None = None, *, progress: bool = False) -> Dataset:
    """Load any supported dataset, detecting its format unless ``format`` is given."""
    fmt = format or detect_format(path)
    if fmt not in LOADERS:
        raise DataError(f"unknown format {fmt!r}; choose from {', '.join(LOADERS)}")
    if not os.path.exists(os.fspath(path)):
        raise DataError(f"{os.fspath(path)}: no such file or directory")
    return LOADERS[fmt](path, progress=progress)


__all__ = ["Dataset", "SPLITS", "LOADERS", "detect_format", "load_dataset",
           "load_fer2013_folder", "load_ckplus48"]
