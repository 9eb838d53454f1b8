"""Decode many image files in parallel, skipping (and reporting) unreadable ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..exceptions import ImageError


def _read_gray(path: str):
    import cv2

    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is not None:
        return img
    # OpenCV gives up on some valid files (16-bit PNG, palette GIF, odd TIFF): try Pillow.
    from ..imageio import read_image

    return read_image(path, gray=True)


def read_many(paths, *, size=None, progress=False, desc="images", n_threads=8):
    """Read ``paths`` as grayscale uint8.

    Returns
    -------
    images : (N, H, W) ndarray if every image has ``size`` (or the same shape), else a list
    ok : (len(paths),) bool ndarray, which paths were read
    skipped : list of (path, reason)
    """
    from tqdm.auto import tqdm

    def one(p):
        try:
            return _read_gray(p), None
        except ImageError as e:
            return None, str(e)
        except Exception as e:  # corrupt files make decoders raise many kinds of errors
            return None, f"{p}: cannot decode image ({e.__class__.__name__}: {e})"

    with ThreadPoolExecutor(n_threads) as pool:
        results = list(tqdm(pool.map(one, paths, chunksize=64), total=len(paths), desc=desc,
                            disable=not progress, unit="img"))
    ok = np.array([r[0] is not None for r in results], dtype=bool)
    skipped = [(p, r[1]) for p, r in zip(paths, results) if r[0] is None]
    imgs = [r[0] for r in results if r[0] is not None]
    shapes = {im.shape for im in imgs}
    if len(shapes) == 1:
        images = np.stack(imgs) if imgs else np.zeros((0, *(size or (48, 48))), np.uint8)
    elif size is not None:
        import cv2

        images = np.stack([im if im.shape == tuple(size) else
                           cv2.resize(im, tuple(size)[::-1], interpolation=cv2.INTER_AREA)
                           for im in imgs])
    else:
        images = imgs
    return images, ok, skipped
