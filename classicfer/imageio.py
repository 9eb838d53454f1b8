"""Reading images safely: any mode in, uint8 RGB or grayscale out.

Decoding goes through Pillow (EXIF orientation, palette, RGBA, 16-bit, TIFF...)
with a pixel limit against decompression bombs. Every failure becomes an
:class:`~classicfer.exceptions.ImageError` with one clear line naming the file.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from .exceptions import ImageError

#: Largest image accepted, in pixels (about 8K x 5K). Override with ``CLASSICFER_MAX_PIXELS``.
MAX_PIXELS: int = int(os.environ.get("CLASSICFER_MAX_PIXELS", "40000000"))


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (or wider) integer images: scale by the dtype's range, or by the
        # actual maximum when the data use only the low bits (12-bit sensors).
        hi = float(arr.max()) if arr.size else 1.0
        top = 255.0 if hi <= 255 else (65535.0 if hi <= 65535 else hi)
        return np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
    a = arr.astype(np.float64)
    if a.size and a.max() <= 1.0:
        a = a * 255.0
    return np.clip(a, 0, 255).astype(np.uint8)


def as_uint8_image(image, *, gray: bool = False) -> np.ndarray:
    """Coerce an array to uint8 ``(H, W)`` grayscale or ``(H, W, 3)`` RGB.

    Accepts grayscale, RGB, RGBA and ``(H, W, 1)`` arrays of any numeric dtype
    (floats in [0, 1] or [0, 255], 16-bit integers are rescaled).
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(
            f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"image is empty (shape {arr.shape})")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(
            f"image has {arr.shape[0] * arr.shape[1]:,} pixels, above the limit of "
            f"{MAX_PIXELS:,} (set CLASSICFER_MAX_PIXELS to raise it)"
        )
    arr = _to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if gray and arr.ndim == 3:
        import cv2

        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    elif not gray and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def read_image(source, *, gray: bool = False) -> np.ndarray:
    """Decode an image file (path, bytes or file object) to a uint8 array.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        The encoded image.
    gray : bool
        Return ``(H, W)`` grayscale instead of ``(H, W, 3)`` RGB.

    Raises
    ------
    ImageError
        Missing, empty, truncated, non-image or too-large files.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"{name}: empty data (0 bytes)")
        fh = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.exists(name):
            raise ImageError(f"{name}: no such file")
        if os.path.isdir(name):
            raise ImageError(f"{name}: is a directory, not an image")
        if os.path.getsize(name) == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        fh = name
    elif hasattr(source, "read"):
        fh = source
    else:
        raise ImageError(f"expected a path, bytes or a binary file object, got "
                         f"{type(source).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"{name}: {w}x{h} = {w * h:,} pixels is above the limit of "
                        f"{MAX_PIXELS:,} (set CLASSICFER_MAX_PIXELS to raise it)"
                    )
                im.load()
                im = ImageOps.exif_transpose(im)
                if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    arr = np.asarray(im)
                    return as_uint8_image(arr, gray=gray)
                im = im.convert("L" if gray else "RGB")
                return np.asarray(im).copy()
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: not a readable image ({e.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: cannot decode image ({e})") from None
