"""Manifests: name exactly which images a result was computed on.

``dataset_manifest(ds)`` lists every image (path relative to the dataset root, sha256,
label, split, subject); ``manifest_hash(ds)`` is one sha256 over those rows, so a
``run.json`` or a feature cache can record ``"data": {"manifest_hash": ...}`` and a
later run can check it holds the same data. The hash does not depend on where the
dataset sits on disk, nor on row order, and changes if any image's bytes, label, split
or subject change, or if an image is added or removed.

Example
-------
>>> ds = load_dataset("../shared/datasets/fer2013")        # doctest: +SKIP
>>> manifest_hash(ds)                                       # doctest: +SKIP
'3f1c...'
>>> manifest_hash(ds.split("train"))                        # a subset has its own hash
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ._base import Dataset

MANIFEST_VERSION = 1


def _relative_paths(ds: Dataset) -> list[str]:
    root = os.path.abspath(ds.root) if ds.root else ""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    prefix = base.rstrip(os.sep) + os.sep if base else ""
    out = []
    for p in ds.paths:
        p = str(p)
        ap = p if os.path.isabs(p) else os.path.abspath(p)
        rel = ap[len(prefix):] if prefix and ap.startswith(prefix) else p
        out.append(rel.replace(os.sep, "/"))
    return out


def file_hashes(ds: Dataset) -> np.ndarray:
    """sha256 of each image.

    ``ds.sha256`` when the loader recorded it, else computed from the source file's
    bytes (or from the decoded pixels when there is no file).
    """
    if ds.sha256 is not None and len(ds.sha256) == len(ds):
        return np.asarray(ds.sha256)
    out = []
    for i, p in enumerate(ds.paths):
        p = str(p)
        if os.path.isfile(p):
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out.append(h.hexdigest())
        else:
            out.append(hashlib.sha256(np.ascontiguousarray(ds.images[i]).tobytes()).hexdigest())
    return np.array(out, dtype="<U64")


def _rows(ds: Dataset):
    rel = _relative_paths(ds)
    sha = file_hashes(ds)
    subj = ds.subjects if ds.subjects is not None else [""] * len(ds)
    return [(r, str(h), str(lab), str(sp), str(su))
            for r, h, lab, sp, su in zip(rel, sha, ds.labels, ds.splits, subj, strict=True)]


def manifest_hash(ds: Dataset) -> str:
    """sha256 (hex) of the sorted ``path, sha256, label, split, subject`` rows of ``ds``."""
    h = hashlib.sha256(f"classicfer-manifest-v{MANIFEST_VERSION}\n".encode())
    for row in sorted(_rows(ds)):
        h.update(("\t".join(row) + "\n").encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def dataset_manifest(ds: Dataset) -> dict:
    """A JSON-ready description of ``ds``: summary, hash, one entry per image, skipped files.

    Keys: ``manifest_version``, ``name``, ``format``, ``root``, ``n_images``,
    ``manifest_hash``, ``classes``, ``counts`` ({split: {label: n}}), ``files`` (list of
    ``{"path", "sha256", "label", "split", "subject"}``, paths relative to ``root``,
    ``subject`` None when unknown), ``skipped`` (list of ``{"path", "reason"}``).
    """
    rows = _rows(ds)
    counts: dict = {}
    for _, _, lab, sp, _ in rows:
        c = counts.setdefault(sp or "all", {})
        c[lab] = c.get(lab, 0) + 1
    has_subj = ds.subjects is not None
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": ds.name,
        "format": ds.format,
        "root": os.path.abspath(ds.root) if ds.root else "",
        "n_images": len(ds),
        "manifest_hash": manifest_hash(ds),
        "classes": ds.classes,
        "counts": counts,
        "files": [{"path": r, "sha256": h, "label": lab, "split": sp,
                   "subject": su if has_subj else None} for r, h, lab, sp, su in rows],
        "skipped": [{"path": str(p), "reason": str(reason)} for p, reason in ds.skipped],
    }


def dataset_record(ds: Dataset) -> dict:
    """What a run record says about ``ds``.

    ``name``, ``root`` (absolute), ``format``, ``n_images`` and ``manifest_sha256``
    (:func:`manifest_hash`).
    """
    return {"name": ds.name, "root": os.path.abspath(ds.root) if ds.root else "",
            "format": ds.format, "n_images": len(ds), "manifest_sha256": manifest_hash(ds)}


def write_manifest(ds: Dataset, path) -> dict:
    """Write :func:`dataset_manifest` of ``ds`` as JSON to ``path``; return it."""
    from ..exceptions import DataError

    man = dataset_manifest(ds)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(man, fh, indent=1)
            fh.write("\n")
    except OSError as e:
        raise DataError(f"{path}: cannot write the manifest ({e.strerror or e})") from None
    return man


__all__ = [
    "MANIFEST_VERSION",
    "dataset_manifest",
    "dataset_record",
    "file_hashes",
    "manifest_hash",
    "write_manifest",
]
