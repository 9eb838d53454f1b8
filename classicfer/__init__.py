"""classicfer: facial expression recognition you can run on a CPU, offline."""

import os as _os

# onnxruntime's telemetry writes a device id and an event database under
# ~/.cache/Microsoft/DeveloperTools and looks up Microsoft's event host unless this is set
# before onnxruntime loads. classicfer runs offline and writes nothing unasked: keep it off.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from .labels import EMOTIONS

#: The facade: the verbs a user needs, loaded on first use (``import classicfer`` stays fast).
#: Everything else lives in the subpackages (datasets, face, features, evaluation, runtime...).
_FACADE = {
    "predict": ("runtime", "predict"),
    "load_model": ("runtime", "load_model"),
    "Predictor": ("runtime", "Predictor"),
    "load_dataset": ("datasets", "load_dataset"),
    "inspect_dataset": ("datasets", "inspect_dataset"),
    "detect_faces": ("face", "detect_faces"),
    "make_pipeline": ("pipeline", "make_pipeline"),
    "evaluate": ("evaluation", "evaluate"),
    "export": ("export", "export"),
    "corrupt": ("evaluation.corruptions", "corrupt"),
}

# Spelled out so that tools reading the source see it; tests/test_api.py keeps it in step
# with _FACADE.
__all__ = [
    "EMOTIONS", "__version__", "Predictor", "corrupt", "detect_faces", "evaluate", "export",
    "inspect_dataset", "load_dataset", "load_model", "make_pipeline", "predict",
]


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
    if name in _FACADE:
        from importlib import import_module

        module, attr = _FACADE[name]
        value = getattr(import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'classicfer' has no attribute {name!r}")
