"""AffectNet (Mollahosseini et al., 2017) in its distributed layouts.

1. Original release::

       Manually_Annotated_file_lists/training.csv, validation.csv
       Manually_Annotated_Images/<dir>/<file>.jpg

   CSV columns ``subDirectory_filePath, face_x, face_y, face_width, face_height,
   facial_landmarks, expression, valence, arousal``.

2. The later ``train_set``/``val_set`` release::

       train_set/images/<n>.jpg    train_set/annotations/<n>_exp.npy (also _val, _aro, _lnd)
       val_set/images/<n>.jpg      val_set/annotations/<n>_exp.npy

3. A CSV manifest (``path``/``pth``, ``label``/``expression``, optional ``split``) with
   AffectNet ids (:data:`classicfer.labels.AFFECTNET_IDS`) or emotion names.

Expression ids 0-7 are emotions (0=neutral 1=happy 2=sad 3=surprise 4=fear 5=disgust
6=anger 7=contempt); 8=None, 9=Uncertain, 10=No-Face rows are skipped and listed in
``Dataset.skipped``. AffectNet's own test set is not public: its validation set is the
evaluation set used in the literature and becomes split ``test`` here (training -> ``train``).
"""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import DataError
from ..labels import AFFECTNET_IDS
from ._base import Dataset
from ._fer2013 import list_dirs, list_files
from ._folder import load_csv_manifest
from ._read import read_many, stack_images

NOT_EMOTIONS = {8: "None", 9: "Uncertain", 10: "No-Face"}
_LISTS = {"training.csv": "train", "validation.csv": "test"}
_SETS = {"train_set": "train", "val_set": "test"}


def _find(root: str, name: str, depth: int = 2):
    level = [root]
    for _ in range(depth + 1):
        nxt = []
        for d in level:
            for s in list_dirs(d) if os.path.isdir(d) else []:
                full = os.path.join(d, s)
                if s.lower() == name.lower():
                    return full
                nxt.append(full)
        level = nxt
    return None


def affectnet_layout(root: str):
    """``"lists"``, ``"sets"`` or None: which AffectNet folder layout ``root`` holds."""
    if _find(root, "Manually_Annotated_file_lists", 1) is not None:
        return "lists"
    if os.path.isdir(os.path.join(root, "train_set", "annotations")) or os.path.isdir(
            os.path.join(root, "val_set", "annotations")):
        return "sets"
    return None


def _concat(parts, name, root):
    parts = [p for p in parts if len(p)]
    if not parts:
        raise DataError(f"{root}: no usable AffectNet images")
    imgs = []
    for p in parts:
        imgs.extend(p.images if isinstance(p.images, list) else list(p.images))
    return Dataset(images=stack_images(imgs), labels=np.concatenate([p.labels for p in parts]),
                   subjects=None, splits=np.concatenate([p.splits for p in parts]),
                   paths=np.concatenate([p.paths for p in parts]), name=name,
                   format="affectnet", root=root,
                   skipped=[s for p in parts for s in p.skipped],
                   sha256=np.concatenate([p.sha256 for p in parts]))


def load_affectnet(root, *, progress: bool = False, size=None,
                   crop_faces: bool = False) -> Dataset:
    """Load AffectNet from any of its layouts (see the module docstring).

    Parameters
    ----------
    size : (H, W) or None
        Resize every image (None keeps sizes; AffectNet images vary, so ``images`` is then
        a list. ``size=(96, 96)`` keeps memory reasonable for the full set).
    crop_faces : bool
        Original release only: cut the CSV's face box out of each image (the distributed
        ``Manually_Annotated_Images`` are already roughly face-cropped).
    """
    root = os.fspath(root)
    if os.path.isfile(root):
        return load_csv_manifest(root, progress=progress, size=size, ids=AFFECTNET_IDS,
                                 skip_ids=NOT_EMOTIONS, crop_faces=crop_faces,
                                 name="affectnet", fmt="affectnet")
    layout = affectnet_layout(root)
    if layout == "lists":
        lists = _find(root, "Manually_Annotated_file_lists", 1)
        images = _find(root, "Manually_Annotated_Images", 2)
        if images is None:
            raise DataError(f"{root}: found {lists} but no Manually_Annotated_Images/ folder")
        parts = []
        for fn, split in _LISTS.items():
            csv_path = os.path.join(lists, fn)
            if not os.path.isfile(csv_path):
                continue
            ds = load_csv_manifest(csv_path, progress=progress, size=size, ids=AFFECTNET_IDS,
                                   skip_ids=NOT_EMOTIONS, image_root=images,
                                   crop_faces=crop_faces, name="affectnet", fmt="affectnet")
            ds.splits = np.full(len(ds), split, dtype="<U5")
            parts.append(ds)
        return _concat(parts, "affectnet", root)
    if layout == "sets":
        return _load_sets(root, progress=progress, size=size)
    raise DataError(f"{root}: expected an AffectNet layout: Manually_Annotated_file_lists/ + "
                    "Manually_Annotated_Images/, or train_set/ and val_set/ with images/ and "
                    "annotations/, or a CSV manifest file")


def _load_sets(root: str, *, progress: bool, size) -> Dataset:
    paths, labels, splits, bad = [], [], [], []
    for set_name, split in _SETS.items():
        img_dir = os.path.join(root, set_name, "images")
        ann_dir = os.path.join(root, set_name, "annotations")
        if not os.path.isdir(img_dir):
            continue
        for fn in list_files(img_dir):
            stem = os.path.splitext(fn)[0]
            p = os.path.join(img_dir, fn)
            ann = os.path.join(ann_dir, f"{stem}_exp.npy")
            try:
                code = int(np.asarray(np.load(ann, allow_pickle=False)).reshape(-1)[0])
            except FileNotFoundError:
                bad.append((p, f"{p}: no annotation {ann}"))
                continue
            except (OSError, ValueError, IndexError) as e:
                bad.append((p, f"{ann}: unreadable expression annotation ({e})"))
                continue
            if code in NOT_EMOTIONS:
                bad.append((p, f"{p}: not an emotion (expression {code}={NOT_EMOTIONS[code]})"))
                continue
            if code not in AFFECTNET_IDS:
                raise DataError(f"{ann}: expression id {code} is outside the AffectNet "
                                "vocabulary 0-7 (0=neutral 1=happy 2=sad 3=surprise 4=fear "
                                "5=disgust 6=anger 7=contempt)")
            paths.append(p)
            labels.append(AFFECTNET_IDS[code])
            splits.append(split)
    if not paths:
        raise DataError(f"{root}: no AffectNet images with annotations under "
                        "train_set/images or val_set/images")
    images, ok, skipped, sha = read_many(paths, size=size, progress=progress,
                                         desc="affectnet")
    return Dataset(images=images, labels=np.array(labels)[ok], subjects=None,
                   splits=np.array(splits, dtype="<U5")[ok], paths=np.array(paths)[ok],
                   name="affectnet", format="affectnet", root=root, skipped=bad + skipped,
                   sha256=sha)
