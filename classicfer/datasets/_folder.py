"""Generic layouts: an ImageFolder tree and a CSV manifest.

ImageFolder::

    root/<class>/**/*.jpg                 (no split)
    root/<split>/<class>/**/*.jpg         (split folders: train, val/validation, test)

CSV manifest (one row per image; paths relative to the CSV's folder, or absolute)::

    path,label[,split][,subject]
    happy/001.jpg,happy,train,S01

Column names are matched case-insensitively, with common aliases (``pth``, ``file``,
``image``; ``emotion``, ``expression``, ``class``; ``usage``, ``set``; ``person``...).
Labels are emotion names, or integer ids when an id table is given (AffectNet).
"""

from __future__ import annotations

import csv
import os

import numpy as np

from ..exceptions import DataError
from ..labels import canonical_label
from ._base import Dataset, folder_label
from ._fer2013 import FOLDER_SPLITS, list_dirs
from ._jaffe import walk_files
from ._read import read_many

PATH_COLUMNS = ("path", "pth", "filepath", "file_path", "file", "filename", "image",
                "image_path", "img", "subdirectory_filepath")
LABEL_COLUMNS = ("label", "emotion", "expression", "class", "category")
SPLIT_COLUMNS = ("split", "usage", "set", "subset", "partition")
SUBJECT_COLUMNS = ("subject", "subject_id", "person", "person_id", "identity", "poser")
BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")


def _split_name(value: str, where: str) -> str:
    v = str(value).strip()
    if not v:
        return ""
    try:
        return FOLDER_SPLITS[v.lower()]
    except KeyError:
        raise DataError(f"{where}: unknown split {value!r}; expected train, val "
                        "(validation, PublicTest) or test (PrivateTest)") from None


def load_image_folder(root, *, progress: bool = False, size=None) -> Dataset:
    """Load ``root/<class>/*`` (or ``root/<split>/<class>/*``): labels from folder names.

    Folder names must be emotion names or synonyms (``anger``, ``sadness``...).
    Images keep their size unless ``size=(H, W)`` is given; ``images`` is a list when
    sizes differ.
    """
    root = os.fspath(root)
    top = list_dirs(root)
    if not top:
        raise DataError(f"{root}: expected one folder per class (root/<class>/*.jpg); "
                        "found no sub-folders")
    if all(d.lower() in FOLDER_SPLITS for d in top):
        groups = [(os.path.join(root, d), FOLDER_SPLITS[d.lower()]) for d in top]
    else:
        groups = [(root, "")]
    paths, labels, splits = [], [], []
    for base, split in groups:
        for cls in list_dirs(base):
            label = folder_label(os.path.join(base, cls), cls)
            for p in walk_files(os.path.join(base, cls)):
                paths.append(p)
                labels.append(label)
                splits.append(split)
    if not paths:
        raise DataError(f"{root}: no files in the class folders")
    images, ok, skipped, sha = read_many(paths, size=size, progress=progress,
                                         desc=os.path.basename(root.rstrip("/")) or "images")
    return Dataset(images=images, labels=np.array(labels)[ok], subjects=None,
                   splits=np.array(splits, dtype="<U5")[ok], paths=np.array(paths)[ok],
                   name=_name_of(root), format="imagefolder", root=root, skipped=skipped,
                   sha256=sha)


def _name_of(root: str) -> str:
    base = os.path.basename(os.path.normpath(os.path.abspath(root)))
    base = os.path.splitext(base)[0] if os.path.isfile(root) else base
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base.lower()) or "dataset"


def _pick(header, names):
    for n in names:
        if n in header:
            return header.index(n)
    return None


def read_csv_manifest(path: str):
    """``(header, rows)`` of a CSV manifest, header lower-cased; DataError if unreadable."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if not header:
        raise DataError(f"{path}: CSV file is empty")
    return header, rows


def load_csv_manifest(path, *, progress: bool = False, size=None, ids=None, image_root=None,
                      skip_ids=None, crop_faces=False, name=None, fmt="csv") -> Dataset:
    """Load images listed in a CSV (columns ``path,label[,split][,subject]``).

    Parameters
    ----------
    path : path to the CSV file
    size : (H, W) or None
        Resize every image (None keeps sizes).
    ids : dict int -> str, optional
        Table for integer labels (e.g. :data:`~classicfer.labels.AFFECTNET_IDS`); without it
        labels must be emotion names.
    image_root : path, optional
        Folder the image paths are relative to (default: the CSV's folder).
    skip_ids : dict int -> str, optional
        Integer labels that are not emotions (AffectNet 8=None, 9=Uncertain, 10=No-Face):
        those rows are skipped and listed in ``skipped``.
    crop_faces : bool
        Cut the ``face_x, face_y, face_width, face_height`` box out of each image.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; the {fmt} format needs a CSV file")
    header, rows = read_csv_manifest(path)
    ip, il = _pick(header, PATH_COLUMNS), _pick(header, LABEL_COLUMNS)
    if ip is None or il is None:
        raise DataError(f"{path}: expected CSV columns path,label[,split][,subject] "
                        f"(or aliases); found {','.join(header)}")
    isp, isu = _pick(header, SPLIT_COLUMNS), _pick(header, SUBJECT_COLUMNS)
    ibox = [header.index(c) for c in BOX_COLUMNS] if crop_faces and all(
        c in header for c in BOX_COLUMNS) else None
    base = os.fspath(image_root) if image_root is not None else os.path.dirname(path)
    need = max(i for i in (ip, il, isp, isu, *(ibox or [])) if i is not None)
    paths, labels, splits, subjects, crops, bad = [], [], [], [], [], []
    for line, row in rows:
        where = f"{path}:{line}"
        if len(row) <= need:
            bad.append((where, f"{where}: expected {len(header)} fields, got {len(row)}"))
            continue
        raw = row[il].strip()
        if raw.lstrip("-").isdigit():
            code = int(raw)
            if skip_ids and code in skip_ids:
                bad.append((where, f"{where}: not an emotion (label {code}={skip_ids[code]})"))
                continue
            if ids is None:
                raise DataError(f"{where}: integer label {code} needs an id table; write "
                                "emotion names, or use --format affectnet for AffectNet ids")
            if code not in ids:
                raise DataError(f"{where}: label id {code} is outside the vocabulary "
                                f"{', '.join(f'{k}={v}' for k, v in ids.items())}")
            label = ids[code]
        else:
            try:
                label = canonical_label(raw)
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
        rel = row[ip].strip()
        paths.append(rel if os.path.isabs(rel) else os.path.join(base, rel))
        labels.append(label)
        splits.append(_split_name(row[isp], where) if isp is not None else "")
        subjects.append(row[isu].strip() if isu is not None else "")
        if ibox is not None:
            try:
                crops.append(tuple(float(row[i]) for i in ibox))
            except ValueError:
                crops.append(None)
    if not paths:
        raise DataError(f"{path}: no usable rows")
    images, ok, skipped, sha = read_many(paths, size=size, crops=crops if ibox else None,
                                         progress=progress, desc=os.path.basename(path))
    return Dataset(images=images, labels=np.array(labels)[ok],
                   subjects=np.array(subjects)[ok] if isu is not None else None,
                   splits=np.array(splits, dtype="<U5")[ok], paths=np.array(paths)[ok],
                   name=name or _name_of(path), format=fmt, root=path, skipped=bad + skipped,
                   sha256=sha)
