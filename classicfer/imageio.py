"""Reading images safely: any mode in, uint8 RGB or grayscale out.

Decoding goes through Pillow (EXIF orientation, palette, RGBA, 16-bit, TIFF...)
with a pixel limit against decompression bombs (:func:`max_pixels`). Every failure,
whatever the decoder raises, becomes an :class:`~classicfer.exceptions.ImageError`
with one clear line naming the file.
"""

from __future__ import annotations

import io
import os
import re
import warnings

import numpy as np

from .exceptions import ClassicferError, ConfigError, ImageError

#: Largest image accepted by default, in pixels (about 8K x 5K).
DEFAULT_MAX_PIXELS = 40_000_000
#: Largest image accepted, in pixels. ``None``: the ``CLASSICFER_MAX_PIXELS`` environment
#: variable, else :data:`DEFAULT_MAX_PIXELS`, read when an image is checked (see
#: :func:`max_pixels`).
MAX_PIXELS: int | None = None
_HINT = "set CLASSICFER_MAX_PIXELS to raise it"


def max_pixels() -> int:
    """The largest image accepted, in pixels.

    Returns
    -------
    int
        :data:`MAX_PIXELS` when set, else the ``CLASSICFER_MAX_PIXELS`` environment
        variable, else :data:`DEFAULT_MAX_PIXELS` (40,000,000).

    Raises
    ------
    ConfigError
        ``CLASSICFER_MAX_PIXELS`` is not a positive whole number.
    """
    if MAX_PIXELS is not None:
        return int(MAX_PIXELS)
    raw = os.environ.get("CLASSICFER_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"CLASSICFER_MAX_PIXELS must be a positive whole number of pixels "
                          f"(e.g. 100000000), got {raw!r}")
    return value


def _too_many(pixels: int, limit: int) -> str:
    return f"{pixels:,} pixels is above the limit of {limit:,} ({_HINT})"


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
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if a.size and a.max() <= 1.0:
        a = a * 255.0
    return np.clip(a, 0, 255).astype(np.uint8)


def _numeric(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when it holds integers, floats or booleans.

    An object array of numbers is converted to float; anything else (text,
    complex...) is an ImageError.
    """
    if arr.dtype.kind in "biuf":  # booleans, signed and unsigned integers, floats
        return arr
    if arr.dtype == object:
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise ImageError(f"expected an image of numbers (integers, floats or booleans), "
                     f"got dtype {arr.dtype}")


def as_uint8_image(image, *, gray: bool = False) -> np.ndarray:
    """Coerce an array to uint8 ``(H, W)`` grayscale or ``(H, W, 3)`` RGB.

    Accepts grayscale, RGB, RGBA and ``(H, W, 1)`` arrays of any numeric dtype
    (floats in [0, 1] or [0, 255], 16-bit integers are rescaled; NaN becomes 0).

    Raises
    ------
    ImageError
        Another shape, an empty or too-large image, or a non-numeric dtype.
    """
    arr = _numeric(np.asarray(image))
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(
            f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"image is empty (shape {arr.shape})")
    limit = max_pixels()
    if arr.shape[0] * arr.shape[1] > limit:
        raise ImageError(f"image has {arr.shape[0] * arr.shape[1]:,} pixels, above the limit of "
                         f"{limit:,} ({_HINT})")
    arr = _to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if gray and arr.ndim == 3:
        import cv2

        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    elif not gray and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def _open_source(source):
    """(name for messages, what ``Image.open`` takes) for a path, bytes or file object."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"{name}: empty data (0 bytes)")
        return name, io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(name):
            raise ImageError(f"{name}: no such file")
        if os.path.isdir(name):
            raise ImageError(f"{name}: is a directory, not an image")
        if os.path.getsize(name) == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        return name, name
    if hasattr(source, "read"):
        return name, source
    raise ImageError(f"expected a path, bytes or a binary file object, got "
                     f"{type(source).__name__}")


def _one_line(exc: BaseException, width: int = 160) -> str:
    """An exception's message on one short line (its class name when it has none)."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _bomb_message(name: str, exc: BaseException, limit: int) -> str:
    """Pillow refused the image as a decompression bomb: say how many pixels, and the limit."""
    from PIL import Image

    m = re.search(r"\((\d+) pixels\)", str(exc))
    if m is None:
        return (f"{name}: too many pixels (a decompression bomb?), above the limit of "
                f"{limit:,} ({_HINT})")
    pixels = int(m.group(1))
    if pixels > limit:
        return f"{name}: {_too_many(pixels, limit)}"
    pillow = 2 * int(Image.MAX_IMAGE_PIXELS or 0)
    return (f"{name}: {pixels:,} pixels is above Pillow's decompression-bomb limit of "
            f"{pillow:,} (raise PIL.Image.MAX_IMAGE_PIXELS to read it)")


def _decode(fh, name: str, gray: bool, limit: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # Pillow warns from ~89 Mpx; our own limit, checked before decoding, is the one
        # that counts (Pillow still refuses twice its limit: DecompressionBombError).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(fh) as im:
            w, h = im.size
            if w * h > limit:
                raise ImageError(f"{name}: {w}x{h} = {_too_many(w * h, limit)}")
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return as_uint8_image(np.asarray(im), gray=gray)
            im = im.convert("L" if gray else "RGB")
            return np.asarray(im).copy()


def read_image(source, *, gray: bool = False) -> np.ndarray:
    """Decode an image file (path, bytes or file object) to a uint8 array.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        The encoded image.
    gray : bool
        Return ``(H, W)`` grayscale instead of ``(H, W, 3)`` RGB.

    Returns
    -------
    ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` grayscale, uint8.

    Raises
    ------
    ImageError
        Missing, empty, truncated, corrupt, non-image or too-large files: whatever
        the decoder raises (Pillow's plugins raise OSError, ValueError, SyntaxError,
        EOFError, RuntimeError, NotImplementedError...) becomes one line naming the file.
    ConfigError
        ``CLASSICFER_MAX_PIXELS`` is set to something other than a positive number.
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    name, fh = _open_source(source)
    try:
        return _decode(fh, name, gray, limit)
    except ClassicferError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(_bomb_message(name, e, limit)) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (UnidentifiedImageError)") from None
    except MemoryError:
        raise ImageError(f"{name}: image too large to decode (out of memory)") from None
    except Exception as e:  # noqa: BLE001 (a corrupt file can make a decoder raise anything)
        raise ImageError(f"{name}: cannot decode image ({_one_line(e)})") from None
