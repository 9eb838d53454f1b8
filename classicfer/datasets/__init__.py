"""Dataset loaders: every format -> one :class:`Dataset` record.

Formats (``--format`` names), detected from the path unless forced:

=================  ==========================================================================
fer2013-folder     ``train/<class>/Training_*.jpg``, ``test/<class>/Public|PrivateTest_*.jpg``
fer2013-csv        ``fer2013.csv`` (``emotion,pixels,Usage``), or a folder holding it
ckplus48           ``<class>/S###_###_########.png``
ckplus             original CK+ release: ``cohn-kanade-images/`` + ``Emotion/``
ferplus            ``FER2013Train|Valid|Test/fer<row>.png`` + ``label.csv`` (10 annotators'
                   votes), or ``fer2013new.csv`` beside ``fer2013.csv``
jaffe              ``KA.AN1.39.tiff`` files
affectnet          ``Manually_Annotated_*`` or ``train_set``/``val_set`` layouts, or a CSV
imagefolder        ``root/<class>/*`` or ``root/<split>/<class>/*``
csv                a CSV manifest ``path,label[,split][,subject]``
=================  ==========================================================================

``fer2013`` is accepted as an alias of ``fer2013-folder`` / ``fer2013-csv`` (by path type).
"""

from __future__ import annotations

import inspect
import os

from ..exceptions import ConfigError, DataError
from ._affectnet import affectnet_layout, load_affectnet
from ._base import SPLITS, Dataset
from ._cache import cache_file, cache_root, load_cached, save_cached
from ._ckplus import CK48_NAME, find_ckplus_dirs, load_ckplus, load_ckplus48
from ._fer2013 import (
    FOLDER_SPLITS,
    USAGE_TO_SPLIT,
    list_dirs,
    list_files,
    load_fer2013_csv,
    load_fer2013_folder,
)
from ._ferplus import (
    VOTE_COLUMNS,
    VOTE_EMOTIONS,
    ferplus_layout,
    load_ferplus,
    majority_vote,
    vote_distribution,
)
from ._folder import (
    LABEL_COLUMNS,
    PATH_COLUMNS,
    load_csv_manifest,
    load_image_folder,
    read_csv_manifest,
)
from ._inspect import find_duplicates, format_report, inspect_dataset
from ._jaffe import JAFFE_NAME, load_jaffe
from .manifest import dataset_manifest, manifest_hash, write_manifest

LOADERS = {
    "fer2013-folder": load_fer2013_folder,
    "fer2013-csv": load_fer2013_csv,
    "ckplus48": load_ckplus48,
    "ckplus": load_ckplus,
    "ferplus": load_ferplus,
    "jaffe": load_jaffe,
    "affectnet": load_affectnet,
    "imagefolder": load_image_folder,
    "csv": load_csv_manifest,
}

_FER_CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")


def _csv_format(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    try:
        first = head.decode("utf-8-sig").splitlines()[0] if head else ""
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    header = [h.strip().strip('"').lower() for h in first.split(",")]
    if "pixels" in header and "emotion" in header:
        return "fer2013-csv"
    if "pixels" in header:
        raise DataError(f"{path}: a FER-2013 CSV without an 'emotion' column has no labels "
                        "(Kaggle's test.csv); use fer2013.csv or icml_face_data.csv")
    has_path = any(c in header for c in PATH_COLUMNS)
    if "subdirectory_filepath" in header or (has_path and "expression" in header):
        return "affectnet"
    if has_path and any(c in header for c in LABEL_COLUMNS):
        return "csv"
    raise DataError(f"{path}: unknown CSV columns {','.join(header)[:200]}; expected "
                    "emotion,pixels,Usage (FER-2013) or path,label[,split][,subject]")


def detect_format(path) -> str:
    """Guess the dataset format of ``path`` (a key of :data:`LOADERS`).

    Raises
    ------
    DataError
        Missing path, empty folder, or a layout no loader recognises.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    if os.path.isfile(path):
        return _file_format(path)
    dirs, files = list_dirs(path), list_files(path)
    if not dirs and not files:
        raise DataError(f"{path}: folder is empty")
    if ferplus_layout(path) or "fer2013new.csv" in files:
        return "ferplus"
    if find_ckplus_dirs(path) is not None:
        return "ckplus"
    if affectnet_layout(path) is not None:
        return "affectnet"
    if any(f.lower() in _FER_CSV_NAMES for f in files):
        return "fer2013-csv"
    fmt = _split_folders_format(path, dirs) or _file_names_format(path, dirs, files)
    if fmt is not None:
        return fmt
    if dirs and any(list_files(os.path.join(path, d)) or list_dirs(os.path.join(path, d))
                    for d in dirs):
        return "imagefolder"  # class folders; unknown class names fail with a clear error
    raise DataError(f"{path}: unknown dataset layout (found {len(files)} files and no class "
                    f"folders); use --format with one of {', '.join(LOADERS)}")


def _file_format(path: str) -> str:
    """The format of a dataset given as one file (a CSV)."""
    if path.lower().endswith(".csv"):
        if os.path.basename(path).lower() == "fer2013new.csv":
            return "ferplus"
        return _csv_format(path)
    raise DataError(f"{path}: is a file; expected a dataset folder or a .csv file")


def _split_folders_format(path: str, dirs: list) -> str | None:
    """``fer2013-folder`` or ``imagefolder`` for a folder of split folders, else None."""
    split_dirs = [d for d in dirs if d.lower() in FOLDER_SPLITS]
    if not split_dirs:
        return None
    for sd in split_dirs:
        for cls in list_dirs(os.path.join(path, sd)):
            names = list_files(os.path.join(path, sd, cls))[:20]
            if any(n.split("_", 1)[0] in USAGE_TO_SPLIT for n in names):
                return "fer2013-folder"
    return "imagefolder"


def _file_names_format(path: str, dirs: list, files: list) -> str | None:
    """``ckplus48`` or ``jaffe`` when the image names follow that dataset's pattern."""
    for d in dirs:
        names = list_files(os.path.join(path, d))[:20]
        if names and sum(bool(CK48_NAME.match(n)) for n in names) > len(names) // 2:
            return "ckplus48"
    jaffe_candidates = files + [f for d in dirs[:3] for f in list_files(os.path.join(path, d))]
    if sum(bool(JAFFE_NAME.match(f)) for f in jaffe_candidates) >= 3:
        return "jaffe"
    return None


def resolve_format(format: str | None, path: str | None = None) -> str | None:
    """Normalise a ``--format`` value (case, ``_``/``-``, the ``fer2013`` alias)."""
    if format is None:
        return None
    fmt = str(format).strip().lower().replace("_", "-")
    aliases = {"fer2013": "fer2013-csv" if path and os.path.isfile(path) else "fer2013-folder",
               "ck+48": "ckplus48", "ck+": "ckplus", "ck48": "ckplus48",
               "image-folder": "imagefolder", "folder": "imagefolder", "manifest": "csv",
               "fer2013csv": "fer2013-csv", "fer+": "ferplus", "fer-plus": "ferplus"}
    fmt = aliases.get(fmt, fmt)
    if fmt not in LOADERS:
        raise ConfigError(f"unknown dataset format {format!r}; choose from "
                          f"{', '.join(LOADERS)}")
    return fmt


def _check_options(fmt: str, options: dict) -> None:
    params = inspect.signature(LOADERS[fmt]).parameters
    allowed = [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n != "progress"]
    bad = [k for k in options if k not in allowed]
    if bad:
        raise ConfigError(f"option {bad[0]!r} does not apply to the {fmt} format; "
                          f"its options: {', '.join(allowed) or 'none'}")


def load_dataset(path, format: str | None = None, *, cache: bool = True,
                 progress: bool = False, **options) -> Dataset:
    """Load any supported dataset, detecting its format unless ``format`` is given.

    Parameters
    ----------
    path : str or os.PathLike
        Dataset folder or CSV file. Paths in the result are absolute.
    format : str, optional
        A key of :data:`LOADERS` (see the module docstring); detected when None.
    cache : bool
        Reuse / write the on-disk cache (see :mod:`classicfer.datasets._cache`):
        the second load of FER-2013 takes about a second instead of ~10.
    progress : bool
        Show a progress bar on stderr while decoding.
    **options
        Loader options, e.g. ``size=(96, 96)`` (imagefolder, jaffe, affectnet, csv),
        ``peak_frames=1, neutral_first=True`` (ckplus).

    Raises
    ------
    DataError
        Missing path, empty folder, unknown layout, labels outside the vocabulary.
    ConfigError
        Unknown format or option.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    fmt = resolve_format(format, path) or detect_format(path)
    _check_options(fmt, options)
    root = os.path.abspath(path)
    if fmt == "fer2013-csv" and os.path.isdir(root):
        inside = [f for f in list_files(root) if f.lower() in _FER_CSV_NAMES]
        if not inside:
            raise DataError(f"{path}: no fer2013.csv (or icml_face_data.csv) in this folder")
        root = os.path.join(root, inside[0])
    where = cache_file(root, fmt, options) if cache else None
    ds = load_cached(where)
    if ds is not None:
        return ds
    ds = LOADERS[fmt](root, progress=progress, **options)
    if len(ds) == 0:
        first = f"; first: {ds.skipped[0][1]}" if ds.skipped else ""
        raise DataError(f"{path}: no readable images ({len(ds.skipped)} skipped{first})")
    save_cached(where, ds)
    return ds


__all__ = [
    "LOADERS",
    "SPLITS",
    "Dataset",
    "cache_file",
    "cache_root",
    "dataset_manifest",
    "detect_format",
    "find_duplicates",
    "format_report",
    "inspect_dataset",
    "load_affectnet",
    "load_ckplus",
    "load_ckplus48",
    "load_ferplus",
    "majority_vote",
    "vote_distribution",
    "VOTE_COLUMNS",
    "VOTE_EMOTIONS",
    "load_csv_manifest",
    "load_dataset",
    "load_fer2013_csv",
    "load_fer2013_folder",
    "load_image_folder",
    "load_jaffe",
    "manifest_hash",
    "read_csv_manifest",
    "resolve_format",
    "write_manifest",
]
