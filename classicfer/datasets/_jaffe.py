"""JAFFE (Lyons et al., 1998): 213 images of 10 Japanese women, 256x256 grayscale TIFF.

File names code the poser and expression: ``KA.AN1.39.tiff`` = poser ``KA``, expression
``AN`` (angry), take 1, image 39. Codes: :data:`classicfer.labels.JAFFE_CODES`.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..exceptions import DataError
from ..labels import JAFFE_CODES
from ._base import Dataset
from ._read import read_many

JAFFE_NAME = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2})(\d*)\.(\d+)\.(tiff?|png|jpe?g|bmp)$",
                        re.IGNORECASE)


def walk_files(root: str):
    """Every non-hidden file under ``root``, sorted, as full paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def load_jaffe(root, *, progress: bool = False, size=None) -> Dataset:
    """Load JAFFE from a folder of ``XX.YYn.N.tiff`` files (searched recursively).

    Subject = the first two letters; files with other names (README...) are skipped and
    reported; an expression code outside :data:`~classicfer.labels.JAFFE_CODES` is an error.
    """
    root = os.fspath(root)
    paths, labels, subjects, bad = [], [], [], []
    for p in walk_files(root):
        m = JAFFE_NAME.match(os.path.basename(p))
        if m is None:
            bad.append((p, f"{p}: not a JAFFE file name (e.g. KA.AN1.39.tiff)"))
            continue
        code = m.group(2).upper()
        if code not in JAFFE_CODES:
            raise DataError(f"{p}: expression code {code!r} is not a JAFFE code; expected one "
                            f"of {', '.join(f'{k}={v}' for k, v in JAFFE_CODES.items())}")
        paths.append(p)
        labels.append(JAFFE_CODES[code])
        subjects.append(m.group(1).upper())
    if not paths:
        raise DataError(f"{root}: no JAFFE images (names like KA.AN1.39.tiff)")
    images, ok, skipped, sha = read_many(paths, size=size, progress=progress, desc="jaffe")
    return Dataset(images=images, labels=np.array(labels)[ok],
                   subjects=np.array(subjects)[ok],
                   splits=np.full(int(ok.sum()), "", dtype="<U5"),
                   paths=np.array(paths)[ok], name="jaffe", format="jaffe", root=root,
                   skipped=bad + skipped, sha256=sha)
