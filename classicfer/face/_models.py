"""Locating and caching the face models (loaded lazily, once per process).

dlib models come from the ``face-recognition-models`` package. That package's
``__init__`` imports ``pkg_resources`` (removed from recent setuptools), so its
folder is found with :func:`importlib.util.find_spec` without importing it.
The MTCNN ONNX files ship inside ``classicfer/face/models``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from pathlib import Path

_FRM_INSTALL = "pip install face-recognition-models"
_LOCAL = threading.local()


def _per_thread(func):
    """Cache ``func(*args)`` once per thread.

    OpenCV's ``CascadeClassifier`` and dlib's detectors keep scratch buffers inside
    the object: one instance used by two threads at once fails
    (``getScaleData`` assertion) or returns wrong boxes. Each thread (e.g. each
    worker of ``classicfer serve``) therefore gets its own instance.
    """

    @functools.wraps(func)
    def wrapper(*args):
        cache = getattr(_LOCAL, "cache", None)
        if cache is None:
            cache = _LOCAL.cache = {}
        key = (func.__qualname__, args)
        if key not in cache:
            cache[key] = func(*args)
        return cache[key]

    return wrapper

#: dlib model file names inside face_recognition_models/models/
DLIB_FILES = {
    "68": "shape_predictor_68_face_landmarks.dat",
    "5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
}


def _frm_folder() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_model_path(kind: str) -> Path:
    """Path of a dlib model file (``"68"``, ``"5"`` or ``"cnn"``).

    ``CLASSICFER_DLIB_MODELS`` may name a folder holding the ``.dat`` files instead.

    Raises
    ------
    FileNotFoundError
        When the file is not installed; the message gives the install command.
    """
    name = DLIB_FILES[kind]
    folders = []
    env = os.environ.get("CLASSICFER_DLIB_MODELS")
    if env:
        folders.append(Path(env))
    frm = _frm_folder()
    if frm is not None:
        folders.append(frm)
    for folder in folders:
        p = folder / name
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"dlib model {name} not found (looked in {', '.join(map(str, folders)) or 'nowhere'}); "
        f"install it with: {_FRM_INSTALL}")


#: ONNX networks shipped in ``classicfer/face/models`` -> (file, script that makes it)
ONNX_FILES = {
    "pnet": ("mtcnn_pnet.onnx", "scripts/convert_mtcnn.py"),
    "rnet": ("mtcnn_rnet.onnx", "scripts/convert_mtcnn.py"),
    "onet": ("mtcnn_onet.onnx", "scripts/convert_mtcnn.py"),
    "blazeface": ("blazeface_short.onnx", "scripts/convert_blazeface.py"),
}


def onnx_model_path(net: str) -> Path:
    """Path of a detector network shipped with classicfer (a key of :data:`ONNX_FILES`)."""
    from importlib.resources import files

    name, script = ONNX_FILES[net]
    p = Path(str(files("classicfer.face") / "models" / name))
    if not p.is_file():
        raise FileNotFoundError(
            f"detector model {name} not found in {p.parent}; reinstall classicfer "
            f"(pip install --force-reinstall classicfer) or regenerate it with {script}")
    return p


def mtcnn_model_path(net: str) -> Path:
    """Path of ``mtcnn_{pnet,rnet,onet}.onnx`` shipped with classicfer."""
    return onnx_model_path(net)


@_per_thread
def haar_cascade(name: str = "haarcascade_frontalface_default.xml"):
    """The OpenCV cascade shipped in ``cv2.data.haarcascades`` (cached)."""
    import cv2

    path = Path(cv2.data.haarcascades) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"OpenCV cascade {path} not found; install it with: "
            "pip install opencv-contrib-python-headless")
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise FileNotFoundError(f"OpenCV cascade {path} failed to load (corrupt file?)")
    return clf


@_per_thread
def dlib_hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@_per_thread
def dlib_cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(str(dlib_model_path("cnn")))


@functools.cache
def shape_predictor(kind: str):
    import dlib

    return dlib.shape_predictor(str(dlib_model_path(kind)))


@functools.cache
def onnx_session(net: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("CLASSICFER_ORT_THREADS", "1"))
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_model_path(net)), sess_options=opts,
                                providers=["CPUExecutionProvider"])
