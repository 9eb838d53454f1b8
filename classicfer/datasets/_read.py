"""Decode many image files in parallel, skipping (and reporting) unreadable ones.

Each file is read once as bytes: the bytes give the file's sha256 (for manifests)
and are decoded by OpenCV (Pillow as a fallback), so hashing costs no extra I/O.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..exceptions import ImageError


def _decode_gray(data: bytes, path: str) -> np.ndarray:
    import cv2

    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is not None and img.size:
        return img
    # OpenCV gives up on some valid files (16-bit PNG, palette GIF, odd TIFF): try Pillow.
    from ..imageio import read_image

    try:
        return read_image(data, gray=True)
    except ImageError as e:
        raise ImageError(str(e).replace("<bytes>", path)) from None


def read_file(path: str):
    """``(gray uint8 image, sha256 hex of the file bytes)``; raises ImageError if unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise ImageError(f"{path}: cannot read file ({e.strerror or e})") from None
    return _decode_gray(data, path), hashlib.sha256(data).hexdigest()


def _fit(img: np.ndarray, size, crop=None) -> np.ndarray:
    import cv2

    if crop is not None:
        x, y, w, h = (round(v) for v in crop)
        H, W = img.shape[:2]
        x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            img = img[y0:y1, x0:x1]
    if size is not None and img.shape[:2] != tuple(size):
        img = cv2.resize(img, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def read_many(paths, *, size=None, crops=None, progress=False, desc="images", n_threads=None):
    """Read ``paths`` as grayscale uint8.

    Parameters
    ----------
    paths : sequence of str
    size : (H, W) or None
        Resize every image to this size (INTER_AREA); None keeps sizes.
    crops : sequence of (x, y, w, h) or None, optional
        A box to cut out of each image before resizing (e.g. AffectNet face boxes).
    progress : bool
        Show a tqdm bar on stderr.

    Returns
    -------
    images : (N, H, W) ndarray if every image has the same shape, else a list
    ok : (len(paths),) bool ndarray, which paths were read
    skipped : list of (path, reason)
    sha256 : (N,) ndarray of str, sha256 of each read file's bytes
    """
    from tqdm.auto import tqdm

    paths = [os.fspath(p) for p in paths]
    crops = [None] * len(paths) if crops is None else list(crops)

    def one(i):
        p = paths[i]
        try:
            img, digest = read_file(p)
            return _fit(img, size, crops[i]), digest, None
        except ImageError as e:
            return None, None, str(e)
        except Exception as e:  # noqa: BLE001 -- corrupt files make decoders raise many kinds of errors
            return None, None, f"{p}: cannot decode image ({e.__class__.__name__}: {e})"

    # One task per chunk of files: a future per file costs more than decoding a 48x48 JPEG.
    # More threads than cores: on a cold page cache the reads wait on the disk, and OpenCV
    # decodes without the GIL.
    n_threads = n_threads or min(16, 4 * (os.cpu_count() or 1) + 4)
    chunk = max(16, min(512, len(paths) // (4 * n_threads) + 1))
    starts = range(0, len(paths), chunk)
    results = [None] * len(paths)
    with tqdm(total=len(paths), desc=desc, disable=not progress, unit="img",
              leave=False) as bar:
        def run(start):
            stop = min(start + chunk, len(paths))
            results[start:stop] = [one(i) for i in range(start, stop)]
            return stop - start

        if len(starts) <= 1 or n_threads <= 1:
            for st in starts:
                bar.update(run(st))
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                for n in pool.map(run, starts):
                    bar.update(n)
    ok = np.array([r[0] is not None for r in results], dtype=bool)
    skipped = [(p, r[2]) for p, r in zip(paths, results, strict=True) if r[0] is None]
    imgs = [r[0] for r in results if r[0] is not None]
    digests = np.array([r[1] for r in results if r[0] is not None], dtype="<U64")
    return stack_images(imgs, size), ok, skipped, digests


def stack_images(imgs, size=None):
    """One (N, H, W) array when all shapes agree, else the list itself."""
    shapes = {im.shape for im in imgs}
    if len(shapes) == 1:
        return np.stack(imgs)
    if not imgs:
        return np.zeros((0, *(size or (48, 48))), np.uint8)
    return list(imgs)
