"""CK+ (extended Cohn-Kanade): the CK+48 crops and the original release layout.

CK+48::

    <class>/S###_###_########.png      (anger, contempt, disgust, fear, happy, sadness, surprise)

Original release (Lucey et al., 2010)::

    cohn-kanade-images/S005/001/S005_001_00000001.png ... (one folder per sequence)
    Emotion/S005/001/S005_001_00000011_emotion.txt         (one code, only for labelled
                                                            sequences; 327 of 593)

The code in ``*_emotion.txt`` (:data:`classicfer.labels.CKPLUS_IDS`) labels the
sequence's peak (last) frame. The loader takes the last ``peak_frames`` frames of each
labelled sequence with that label and, with ``neutral_first=True``, the first frame
as ``neutral``. The subject is the ``S###`` folder (or file-name prefix).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..exceptions import DataError
from ..labels import CKPLUS_IDS
from ._base import Dataset, folder_label
from ._fer2013 import list_dirs, list_files
from ._read import read_many

CK48_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.(png|jpg|jpeg|bmp|tif|tiff)$", re.IGNORECASE)


def load_ckplus48(root, *, progress: bool = False) -> Dataset:
    """Load CK+48: one folder per class, subject = the ``S###`` file-name prefix.

    Files whose name is not ``S###_###_########.<ext>`` are skipped and reported.
    """
    root = os.fspath(root)
    paths, labels, subjects, bad = [], [], [], []
    for cls in list_dirs(root):
        cdir = os.path.join(root, cls)
        label = folder_label(cdir, cls)
        for fn in list_files(cdir):
            m = CK48_NAME.match(fn)
            p = os.path.join(cdir, fn)
            if m is None:
                bad.append((p, f"{p}: not a CK+48 file name (S###_###_########.png)"))
                continue
            paths.append(p)
            labels.append(label)
            subjects.append(m.group(1).upper())
    if not paths:
        raise DataError(f"{root}: no CK+48 images (<class>/S###_###_########.png)")
    images, ok, skipped, sha = read_many(paths, progress=progress, desc="ck+48")
    return Dataset(images=images, labels=np.array(labels)[ok],
                   subjects=np.array(subjects)[ok],
                   splits=np.full(int(ok.sum()), "", dtype="<U5"),
                   paths=np.array(paths)[ok], name="ckplus48", format="ckplus48", root=root,
                   skipped=bad + skipped, sha256=sha)


def find_ckplus_dirs(root: str):
    """``(images_dir, emotion_dir)`` of an original CK+ release under ``root``, or None.

    Looks for ``cohn-kanade-images`` and ``Emotion`` (or ``Emotion_labels/Emotion``) at
    most two levels down, as the release archives unpack them.
    """
    found = {}
    level = [root]
    for _ in range(3):
        nxt = []
        for d in level:
            try:
                subs = list_dirs(d)
            except OSError:
                continue
            for s in subs:
                full = os.path.join(d, s)
                low = s.lower()
                if low == "cohn-kanade-images" and "images" not in found:
                    found["images"] = full
                elif low == "emotion" and "emotion" not in found:
                    found["emotion"] = full
                else:
                    nxt.append(full)
        if len(found) == 2:
            return found["images"], found["emotion"]
        level = nxt
    return None


def _read_code(path: str) -> int:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read().split()
        return round(float(text[0]))
    except (OSError, ValueError, IndexError):
        raise DataError(f"{path}: expected one emotion code (e.g. '3.0000000e+00')") from None


def load_ckplus(root, *, progress: bool = False, peak_frames: int = 3,
                neutral_first: bool = False) -> Dataset:
    """Load the original CK+ release (``cohn-kanade-images/`` + ``Emotion/``).

    Parameters
    ----------
    root : path
        Folder holding (at most two levels down) ``cohn-kanade-images`` and ``Emotion``.
    peak_frames : int
        Frames taken from the end of each labelled sequence (3 as in CK+48; 1 = apex only).
    neutral_first : bool
        Also take each labelled sequence's first frame as ``neutral``.

    Images keep their size (640x490 or 640x480) and are converted to grayscale;
    ``images`` is then a list if sizes differ.
    """
    root = os.fspath(root)
    dirs = find_ckplus_dirs(root)
    if dirs is None:
        raise DataError(f"{root}: expected the CK+ release folders cohn-kanade-images/ and "
                        "Emotion/ (cohn-kanade-images/S005/001/*.png, "
                        "Emotion/S005/001/*_emotion.txt)")
    if peak_frames < 1:
        raise DataError(f"peak_frames must be >= 1, got {peak_frames}")
    img_dir, emo_dir = dirs
    paths, labels, subjects, bad = [], [], [], []
    for subj in list_dirs(emo_dir):
        for seq in list_dirs(os.path.join(emo_dir, subj)):
            codes = [f for f in list_files(os.path.join(emo_dir, subj, seq))
                     if f.endswith("_emotion.txt")]
            if not codes:
                continue
            code_file = os.path.join(emo_dir, subj, seq, codes[0])
            code = _read_code(code_file)
            if code not in CKPLUS_IDS:
                raise DataError(f"{code_file}: emotion code {code} is outside the CK+ "
                                "vocabulary 0-7 (0=neutral 1=anger 2=contempt 3=disgust "
                                "4=fear 5=happy 6=sadness 7=surprise)")
            sdir = os.path.join(img_dir, subj, seq)
            frames = list_files(sdir) if os.path.isdir(sdir) else []
            if not frames:
                bad.append((sdir, f"{sdir}: labelled sequence has no image frames"))
                continue
            take = [(f, CKPLUS_IDS[code]) for f in frames[-peak_frames:]]
            if neutral_first and len(frames) > peak_frames:
                take.insert(0, (frames[0], "neutral"))
            for f, lab in take:
                paths.append(os.path.join(sdir, f))
                labels.append(lab)
                subjects.append(subj.upper())
    if not paths:
        raise DataError(f"{emo_dir}: no labelled sequences (*_emotion.txt files)")
    images, ok, skipped, sha = read_many(paths, progress=progress, desc="ck+")
    return Dataset(images=images, labels=np.array(labels)[ok],
                   subjects=np.array(subjects)[ok],
                   splits=np.full(int(ok.sum()), "", dtype="<U5"),
                   paths=np.array(paths)[ok], name="ckplus", format="ckplus", root=root,
                   skipped=bad + skipped, sha256=sha)
