"""classicfer: facial expression recognition you can run on a CPU, offline."""

from .labels import EMOTIONS

__all__ = ["EMOTIONS", "__version__"]


def _get_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("classicfer")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+src"


def __getattr__(name):
    # Lazy, so ``import classicfer`` stays fast: the version (importlib.metadata is slow
    # to import) and the runtime (onnxruntime / OpenCV) load on first use.
    if name == "__version__":
        v = _get_version()
        globals()["__version__"] = v
        return v
    if name in ("predict", "load_model", "Predictor"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'classicfer' has no attribute {name!r}")
