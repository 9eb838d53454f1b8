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
        Files (or CSV rows) that were skipped: unreadable, corrupt, or not an emotion.
    sha256 : (N,) ndarray of str, or None
        sha256 of each source file's bytes (of the decoded pixels for CSV rows), used by
        :func:`classicfer.datasets.manifest.dataset_manifest`; None when unknown.
    votes : (N, 10) int ndarray, or None
        Annotators' vote counts where the dataset has them (FER+: neutral, happiness,
        surprise, sadness, anger, disgust, fear, contempt, unknown, NF).
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
    sha256: np.ndarray | None = None
    votes: np.ndarray | None = None

    def __repr__(self) -> str:
        shape = (self.images.shape if isinstance(self.images, np.ndarray)
                 else f"list of {len(self.images)}")
        return (f"Dataset(name={self.name!r}, format={self.format!r}, n={len(self)}, "
                f"images={shape}, classes={self.classes}, root={self.root!r})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[str]:
        from ..labels import label_order

        return label_order(self.labels)

    def subset(self, mask_or_index) -> Dataset:
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
            sha256=None if self.sha256 is None else self.sha256[idx],
            votes=None if self.votes is None else self.votes[idx],
        )

    def split(self, name: str) -> Dataset:
        """Rows of one split (``train``, ``val`` or ``test``)."""
        return self.subset(self.splits == name)


def folder_label(folder: str, name: str) -> str:
    """Canonical label of a class folder; the DataError names the folder."""
    from ..exceptions import DataError
    from ..labels import canonical_label

    try:
        return canonical_label(name)
    except DataError as e:
        raise DataError(f"{folder}: folder name is not an emotion: {e}") from None
