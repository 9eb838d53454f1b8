"""classicfer: facial expression recognition you can run on a CPU, offline."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("classicfer")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"

from .labels import EMOTIONS

__all__ = ["EMOTIONS", "__version__"]


def __getattr__(name):
    # Lazy: ``import classicfer`` stays fast (no onnxruntime / OpenCV at import).
    if name in ("predict", "load_model", "Predictor"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'classicfer' has no attribute {name!r}")
