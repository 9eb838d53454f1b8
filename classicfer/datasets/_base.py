"""The :class:`Dataset` record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Canonical split names. FER-2013 usages map Training->train, PublicTest->val,
#: PrivateTest->test; datasets without a split use "".
SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """Images with canonical labels, subjects, splits and source paths.

    Attributes
    ----------
    images : (N, H, W) uint8 ndarray, or a list of (H, W[, 3]) uint8 arrays
        Grayscale by default; a list when sizes differ.
    labels : (N,) ndarray of str
        Canonical emotion names (see :data:`classicfer.labels.EMOTIONS`).
    subjects : (N,) ndarray of str, or None
        Subject/person id where the dataset has one.
    splits : (N,) ndarray of str
        ``"train"``, ``"val"``, ``"test"`` or ``""``.
    paths : (N,) ndarray of str
        Source file (or ``file.csv:row``) of each image.
    name : str
        Short dataset name, used in result folders (``fer2013``, ``ckplus48``...).
    format : str
        Loader that produced it.
    root : str
        Path it was loaded from.
    skipped : list of (path, reason)
        Unreadable files that were skipped.
    """

    images: object
    labels: np.ndarray
    subjects: np.ndarray | None
    splits: np.ndarray
    paths: np.ndarray
    name: str = "dataset"
    format: str = ""
    root: str = ""
    skipped: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[str]:
        from ..labels import label_order

        return label_order(self.labels)

    def subset(self, mask_or_index) -> "Dataset":
        """A new Dataset with the selected rows (boolean mask or integer index)."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if isinstance(self.images, np.ndarray):
            images = self.images[idx]
        else:
            images = [self.images[i] for i in idx]
        return Dataset(
            images=images,
            labels=self.labels[idx],
            subjects=None if self.subjects is None else self.subjects[idx],
            splits=self.splits[idx],
            paths=self.paths[idx],
            name=self.name,
            format=self.format,
            root=self.root,
            skipped=list(self.skipped),
        )

    def split(self, name: str) -> "Dataset":
        """Rows of one split (``train``, ``val`` or ``test``)."""
        return self.subset(self.splits == name)
