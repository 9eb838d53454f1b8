"""classicfer: facial expression recognition you can run on a CPU, offline."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("classicfer")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"

from .labels import EMOTIONS  # noqa: E402

__all__ = ["EMOTIONS", "__version__"]
