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


def _open_csv(path: str):
    fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 -- closed by caller
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise DataError(f"{path}: CSV file is empty") from None
    except (csv.Error, UnicodeDecodeError) as e:
        fh.close()
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    return fh, reader, [h.strip().lower() for h in header]


def load_fer2013_csv(path, *, progress: bool = False) -> Dataset:
    """Load FER-2013 from its original CSV (``emotion,pixels[,Usage]``).

    Rows that cannot be parsed (bad pixel count or values, missing fields) are
    skipped and listed in ``skipped`` as ``file.csv:LINE``; an ``emotion`` id outside
    0-6 is an error. Paths are ``<csv path>:<line number>``; ``sha256`` hashes the
    row's decoded pixels (uint8, row-major).
    """
    from tqdm.auto import tqdm

    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; the fer2013-csv format needs the CSV file")
    fh, reader, header = _open_csv(path)
    with fh:
        if "pixels" not in header or "emotion" not in header:
            raise DataError(f"{path}: expected FER-2013 CSV columns emotion,pixels[,Usage]; "
                            f"found {','.join(header) or 'no header'}")
        ie, ip = header.index("emotion"), header.index("pixels")
        iu = header.index("usage") if "usage" in header else None
        images, labels, splits, paths, digests, skipped = [], [], [], [], [], []
        side = None
        try:
            rows = tqdm(reader, desc="fer2013.csv", disable=not progress, unit="row",
                        leave=False)
            for row in rows:
                line = reader.line_num
                where = f"{path}:{line}"
                if not row or not any(c.strip() for c in row):
                    continue
                if len(row) <= max(ie, ip, iu or 0):
                    skipped.append((where, (f"{where}: expected {len(header)} fields, "
                                           f"got {len(row)}")))
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
                text = row[ip].strip()
                try:
                    with warnings.catch_warnings():  # older numpy stops and warns at garbage
                        warnings.simplefilter("ignore")
                        pix = np.fromstring(text, dtype=np.int32, sep=" ")
                except ValueError:  # newer numpy raises
                    pix = np.zeros(0, np.int32)
                    n = -1
                else:
                    n = pix.size
                if n != text.count(" ") + 1 and n != len(text.split()):
                    skipped.append((where, f"{where}: pixels are not all integers"))
                    continue
                if side is None and n > 0 and round(np.sqrt(n)) ** 2 == n:
                    side = round(np.sqrt(n))
                if side is None or n != side * side:
                    skipped.append((where, (f"{where}: expected {side * side if side else 2304}"
                                           f" pixel values (a square image), got {n}")))
                    continue
                if pix.min() < 0 or pix.max() > 255:
                    skipped.append((where, f"{where}: pixel values outside 0-255"))
                    continue
                img = pix.astype(np.uint8).reshape(side, side)
                images.append(img)
                labels.append(FER2013_IDS[emotion])
                usage = row[iu].strip() if iu is not None else ""
                splits.append(USAGE_TO_SPLIT.get(usage, ""))
                paths.append(where)
                digests.append(hashlib.sha256(img.tobytes()).hexdigest())
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if not images:
        raise DataError(f"{path}: no usable rows in the FER-2013 CSV")
    return Dataset(images=np.stack(images), labels=np.array(labels), subjects=None,
                   splits=np.array(splits, dtype="<U5"), paths=np.array(paths),
                   name="fer2013", format="fer2013-csv", root=path, skipped=skipped,
                   sha256=np.array(digests, dtype="<U64"))
