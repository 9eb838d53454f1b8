"""FER-2013 in its two distributions: the original CSV and the folder layout.

CSV (``fer2013.csv``; also Kaggle's ``icml_face_data.csv`` and ``train.csv``)::

    emotion,pixels,Usage
    0,70 80 82 ... (2304 values),Training

``emotion``: 0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral
(:data:`classicfer.labels.FER2013_IDS`). ``Usage``: Training / PublicTest / PrivateTest.

Folder::

    train/<class>/Training_<id>.jpg
    test/<class>/PublicTest_<id>.jpg
    test/<class>/PrivateTest_<id>.jpg

Both give splits train (Training), val (PublicTest), test (PrivateTest).
"""

from __future__ import annotations

import csv
import hashlib
import os
import warnings

import numpy as np

from ..exceptions import DataError
from ..labels import FER2013_IDS
from ._base import Dataset, folder_label
from ._read import read_many

USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
#: Folder names accepted as the split of files without a usage prefix.
FOLDER_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "publictest": "val", "test": "test",
                 "privatetest": "test"}


def _usage_of(filename: str) -> str:
    prefix = filename.split("_", 1)[0]
    return USAGE_TO_SPLIT.get(prefix, "")


def list_files(folder: str) -> list[str]:
    """Sorted names of the regular files in ``folder`` (hidden files left out)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_file())


def list_dirs(folder: str) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones left out)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())


def load_fer2013_folder(root, *, progress: bool = False, size=(48, 48)) -> Dataset:
    """Load FER-2013 from the common folder layout.

    The split comes from the file prefix: ``Training_`` -> ``train``,
    ``PublicTest_`` -> ``val``, ``PrivateTest_`` -> ``test``; files without one take
    the split of their top folder (``train``, ``val``/``validation``, ``test``).
    Images of another size are resized to ``size`` (None keeps them).
    """
    root = os.fspath(root)
    parts = [d for d in list_dirs(root) if d.lower() in FOLDER_SPLITS]
    if not parts:
        raise DataError(f"{root}: expected FER-2013 folders train/ and test/ "
                        f"(train/<class>/Training_*.jpg); found {list_dirs(root)[:5] or 'none'}")
    paths, labels, splits = [], [], []
    for part in parts:
        pdir = os.path.join(root, part)
        for cls in list_dirs(pdir):
            cdir = os.path.join(pdir, cls)
            label = folder_label(cdir, cls)
            for fn in list_files(cdir):
                paths.append(os.path.join(cdir, fn))
                labels.append(label)
                splits.append(_usage_of(fn) or FOLDER_SPLITS[part.lower()])
    if not paths:
        raise DataError(f"{root}: no image files under {', '.join(parts)}/<class>/")
    images, ok, skipped, sha = read_many(paths, size=size, progress=progress, desc="fer2013")
    return Dataset(images=images, labels=np.array(labels)[ok], subjects=None,
                   splits=np.array(splits)[ok], paths=np.array(paths)[ok],
                   name="fer2013", format="fer2013-folder", root=root, skipped=skipped,
                   sha256=sha)


def parse_pixels(text: str):
    """``"70 80 82 ..."`` -> uint8 array, or None when a value is not an integer in 0-255."""
    text = text.strip()
    try:
        with warnings.catch_warnings():  # older numpy stops (and warns) at garbage
            warnings.simplefilter("ignore")
            pix = np.fromstring(text, dtype=np.int32, sep=" ")
    except ValueError:  # newer numpy raises
        return None
    # fromstring may stop early at garbage: the token count must match
    if pix.size != text.count(" ") + 1 and pix.size != len(text.split()):
        return None
    if pix.size and (pix.min() < 0 or pix.max() > 255):
        return None
    return pix.astype(np.uint8)


def _split_line(line: bytes) -> list[str]:
    text = line.decode("utf-8", errors="replace")
    if '"' in text:
        return next(csv.reader([text]), [])
    return text.split(",")


def load_fer2013_csv(path, *, progress: bool = False) -> Dataset:
    """Load FER-2013 from its original CSV (``emotion,pixels[,Usage]``).

    Rows that cannot be parsed (bad pixel count or values, missing fields) are
    skipped and listed in ``skipped`` as ``file.csv:LINE``; an ``emotion`` id outside
    0-6 is an error. Paths are ``<csv path>:<line number>``; ``sha256`` hashes the
    row's decoded pixels (uint8, row-major). The image side is taken from the first
    row whose pixel count is a square (48 for FER-2013).
    """
    from tqdm.auto import tqdm

    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; the fer2013-csv format needs the CSV file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    del data
    header = [h.strip().lower() for h in _split_line(lines[0])] if lines[0].strip() else []
    if not header:
        raise DataError(f"{path}: CSV file is empty")
    if "pixels" not in header or "emotion" not in header:
        raise DataError(f"{path}: expected FER-2013 CSV columns emotion,pixels[,Usage]; "
                        f"found {','.join(header)[:200]}")
    ie, ip = header.index("emotion"), header.index("pixels")
    iu = header.index("usage") if "usage" in header else None
    need = max(ie, ip, iu or 0)
    images, labels, splits, paths, skipped = [], [], [], [], []
    side = None
    for n, line in enumerate(tqdm(lines[1:], desc="fer2013.csv", disable=not progress,
                                  unit="row", leave=False), start=2):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        row = _split_line(line)
        if len(row) <= need:
            skipped.append((where, f"{where}: expected {len(header)} fields, got {len(row)}"))
            continue
        try:
            emotion = int(row[ie].strip())
        except ValueError:
            skipped.append((where, f"{where}: emotion {row[ie]!r} is not an integer"))
            continue
        if emotion not in FER2013_IDS:
            raise DataError(f"{where}: emotion id {emotion} is outside the FER-2013 "
                            "vocabulary 0-6 (0=angry 1=disgust 2=fear 3=happy 4=sad "
                            "5=surprise 6=neutral)")
        pix = parse_pixels(row[ip])
        if pix is None:
            skipped.append((where, (f"{where}: pixels must be integers 0-255 separated by "
                                   "spaces")))
            continue
        n_pix = pix.size
        if side is None and n_pix > 0 and round(np.sqrt(n_pix)) ** 2 == n_pix:
            side = round(np.sqrt(n_pix))
        if side is None or n_pix != side * side:
            skipped.append((where, (f"{where}: expected {side * side if side else 2304} "
                                   f"pixel values (a square image), got {n_pix}")))
            continue
        images.append(pix.reshape(side, side))
        labels.append(FER2013_IDS[emotion])
        splits.append(USAGE_TO_SPLIT.get(row[iu].strip(), "") if iu is not None else "")
        paths.append(where)
    del lines
    if not images:
        raise DataError(f"{path}: no usable rows in the FER-2013 CSV")
    images = np.stack(images)
    return Dataset(images=images, labels=np.array(labels), subjects=None,
                   splits=np.array(splits, dtype="<U5"), paths=np.array(paths),
                   name="fer2013", format="fer2013-csv", root=path, skipped=skipped,
                   sha256=np.array([hashlib.sha256(im.tobytes()).hexdigest()
                                    for im in images], dtype="<U64"))
