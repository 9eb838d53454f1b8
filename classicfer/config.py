"""Settings shared by every layer: where classicfer caches, which files are images or pickles.

Nothing here imports the rest of classicfer.

Environment
-----------
``CLASSICFER_CACHE``
    The cache folder (dataset cache under ``datasets/``, feature cache under
    ``features/``); ``off`` (or ``0``, ``no``, ``false``, ``none``, empty) disables
    both. Default ``$XDG_CACHE_HOME/classicfer``, else ``~/.cache/classicfer``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the cache folder (or ``off``).
CACHE_ENV = "CLASSICFER_CACHE"
#: Values of :data:`CACHE_ENV` that disable caching (compared lower-case, stripped).
CACHE_OFF = frozenset({"", "0", "off", "no", "false", "none"})

#: File name endings read as images (lower case): those Pillow and OpenCV both decode.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff",
                    ".webp", ".pgm", ".ppm", ".pbm", ".pnm")
#: File name endings of pickled estimators and pipelines (joblib or pickle files; lower case).
PICKLE_EXTS = (".joblib", ".pkl", ".pickle")


def cache_root() -> Path | None:
    """The classicfer cache folder, or None when ``CLASSICFER_CACHE`` disables caching.

    Returns
    -------
    pathlib.Path or None
        ``$CLASSICFER_CACHE``, else ``$XDG_CACHE_HOME/classicfer``, else
        ``~/.cache/classicfer``.
    """
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in CACHE_OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "classicfer"


def is_image_file(name) -> bool:
    """Whether the file name ``name`` (str or path) ends with an :data:`IMAGE_EXTENSIONS` entry.

    Parameters
    ----------
    name : str or os.PathLike

    Returns
    -------
    bool
    """
    return os.fspath(name).lower().endswith(IMAGE_EXTENSIONS)


__all__ = ["CACHE_ENV", "CACHE_OFF", "IMAGE_EXTENSIONS", "PICKLE_EXTS", "cache_root",
           "is_image_file"]
