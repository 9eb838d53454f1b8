"""On-disk cache of loaded datasets, so the second load of FER-2013 takes about a second.

A cached dataset is an uncompressed ``.npz`` (labels, paths, hashes...) plus a ``.pixels.npy``
under ``$CLASSICFER_CACHE/datasets``
(default ``$XDG_CACHE_HOME/classicfer`` or ``~/.cache/classicfer``). Its key hashes the
format, the absolute path, the loader options and the *listing* of the source: the
relative path, size and modification time (ns) of every file, which costs one ``stat``
per file (about 0.1 s for FER-2013's 35,887 files) instead of reading them. Any added,
removed, resized or touched file changes the key, so a stale cache is never returned;
the superseded file for the same path is deleted when the new one is written, and so are
entries whose dataset folder no longer exists (temporary folders) or of another cache version.

Set ``CLASSICFER_CACHE=off`` (or pass ``cache=False``) to disable it. The cache is never
written inside the classicfer source tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..config import cache_root
from ._base import Dataset

#: Bump when loaders change what they return for the same files.
CACHE_VERSION = 4


def _inside_source_tree(folder: Path) -> bool:
    src = Path(__file__).resolve().parents[2]  # the folder holding the classicfer package
    if not (src / "pyproject.toml").exists():
        return False  # an installed package, not a checkout
    try:
        folder.resolve().relative_to(src)
        return True
    except ValueError:
        return False


def listing_fingerprint(path: str) -> str:
    """sha256 of (relative path, size, mtime_ns) of every file under ``path`` (or of the file)."""
    h = hashlib.sha256()
    if os.path.isfile(path):
        st = os.stat(path)
        h.update(f"{os.path.basename(path)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
    entries = []
    stack = [("", path)]
    while stack:
        rel, full = stack.pop()
        # scandir on a directory fd: each stat resolves one name, not the whole path
        fd = os.open(full, os.O_RDONLY)
        try:
            with os.scandir(fd) as it:
                for e in it:
                    r = f"{rel}/{e.name}" if rel else e.name
                    if e.is_dir(follow_symlinks=True):
                        stack.append((r, os.path.join(full, e.name)))
                        continue
                    try:
                        st = e.stat()
                    except OSError:  # dangling symlink: part of the listing, unreadable
                        entries.append(f"{r}\t-1\t-1")
                        continue
                    entries.append(f"{r}\t{st.st_size}\t{st.st_mtime_ns}")
        finally:
            os.close(fd)
    entries.sort()
    h.update("\n".join(entries).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def cache_file(path, fmt: str, options: dict) -> Path | None:
    """Where the cached copy of ``path`` loaded as ``fmt`` with ``options`` lives (or None)."""
    root = cache_root()
    if root is None:
        return None
    path = os.path.abspath(os.fspath(path))
    opts = json.dumps(options, sort_keys=True, default=repr)
    where = hashlib.sha256(f"{CACHE_VERSION}\n{fmt}\n{path}\n{opts}".encode()).hexdigest()[:12]
    content = listing_fingerprint(path)[:20]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(path))[:40]
    return root / "datasets" / f"{safe}-{fmt}-{where}-{content}.npz"


def load_cached(file: Path | None) -> Dataset | None:
    """The cached Dataset in ``file``, or None (missing, unreadable, or older version)."""
    if file is None or not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != CACHE_VERSION:
                return None
            # pixels sit in a plain .npy next to the .npz: read straight into the array,
            # several times faster than through the zip member
            pixels = np.load(_pixels_file(file), allow_pickle=False)
            if "shapes" not in z:
                images = pixels
            else:
                flat, shapes = pixels, z["shapes"]
                ends = np.cumsum([int(np.prod(s)) for s in shapes])
                images = [a.reshape(s)
                          for a, s in zip(np.split(flat, ends[:-1]), shapes, strict=True)] \
                    if len(shapes) else []
            return Dataset(
                images=images, labels=z["labels"],
                subjects=z.get("subjects", None),
                splits=z["splits"], paths=z["paths"], name=meta["name"],
                format=meta["format"], root=meta["root"],
                skipped=[tuple(s) for s in z["skipped"].tolist()],
                sha256=z.get("sha256", None), votes=z.get("votes", None))
    except Exception:  # noqa: BLE001 -- a truncated or foreign file: ignore it, it will be rewritten
        return None


def save_cached(file: Path | None, ds: Dataset) -> bool:
    """Write ``ds`` to ``file`` atomically; remove superseded copies. False if not written."""
    if file is None:
        return False
    folder = file.parent
    if _inside_source_tree(folder):
        warnings.warn(f"not caching datasets inside the source tree ({folder}); "
                      "set CLASSICFER_CACHE to a folder outside it", stacklevel=3)
        return False
    arrays = {"labels": np.asarray(ds.labels, dtype=str),
              "splits": np.asarray(ds.splits, dtype=str),
              "paths": np.asarray(ds.paths, dtype=str),
              "skipped": np.asarray([list(map(str, s)) for s in ds.skipped], dtype=str
                                    ).reshape(-1, 2),
              "meta": np.asarray(json.dumps({"version": CACHE_VERSION, "name": ds.name,
                                             "format": ds.format, "root": ds.root}))}
    if ds.subjects is not None:
        arrays["subjects"] = np.asarray(ds.subjects, dtype=str)
    if ds.votes is not None:
        arrays["votes"] = np.asarray(ds.votes)
    if ds.sha256 is not None:
        arrays["sha256"] = np.asarray(ds.sha256, dtype=str)
    if isinstance(ds.images, np.ndarray):
        pixels = ds.images
    else:
        pixels = (np.concatenate([np.asarray(i).ravel() for i in ds.images])
                  if len(ds.images) else np.zeros(0, np.uint8))
        arrays["shapes"] = np.asarray([np.asarray(i).shape for i in ds.images],
                                      dtype=np.int64).reshape(len(ds.images), -1)
    pix_file = _pixels_file(file)
    tmps = [f.with_name(f".{f.name}.{os.getpid()}.tmp") for f in (pix_file, file)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmps[0], "wb") as fh:
            np.save(fh, np.ascontiguousarray(pixels), allow_pickle=False)
        with open(tmps[1], "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmps[0], pix_file)
        os.replace(tmps[1], file)  # last: the .npz marks a complete entry
    except OSError as e:
        warnings.warn(f"cannot write the dataset cache {file}: {e}", stacklevel=3)
        for t in tmps:
            _unlink(t)
        return False
    prefix = file.name.rsplit("-", 1)[0] + "-"
    for old in folder.glob(f"{prefix}*.np[yz]"):
        if old not in (file, pix_file):
            _unlink(old)
    prune(folder, keep=file)
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def prune(folder: Path, keep: Path | None = None) -> int:
    """Delete stale cache entries; return how many were removed.

    Stale: its dataset is gone (e.g. temporary folders), or another cache version
    wrote it.
    """
    removed = 0
    for npz in folder.glob("*.npz"):
        if npz == keep:
            continue
        try:
            with np.load(npz, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
            stale = meta.get("version") != CACHE_VERSION or not os.path.exists(meta["root"])
        except Exception:  # noqa: BLE001 -- unreadable entry: stale
            stale = True
        if stale:
            _unlink(npz)
            _unlink(_pixels_file(npz))
            removed += 1
    return removed


def _pixels_file(file: Path) -> Path:
    return file.with_name(file.name[:-len(".npz")] + ".pixels.npy")
