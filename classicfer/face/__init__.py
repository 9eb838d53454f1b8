"""classicfer.face: detect faces, find landmarks, align and crop.

Quick use::

    from skimage.data import astronaut
    from classicfer.face import detect_faces, face_landmarks, align_face
    img = astronaut()
    face = detect_faces(img, "dlib-hog")[0]
    pts = face_landmarks(img, face, model="5")     # or "68"
    crop = align_face(img, pts, size=48)           # (48, 48) uint8, eyes level
    crop = crop_face(img, face.box, pts, framing="level", size=48)  # FER-2013 framing

Detectors (``detect_faces(image, method=...)``): ``blazeface`` (MediaPipe, ONNX,
the runtime default), ``haar`` (OpenCV cascade), ``dlib-hog``, ``dlib-cnn`` (MMOD)
and ``mtcnn`` (ONNX weights bundled, numpy cascade, no TensorFlow/torch). Models
load lazily once per process.

Every crop is cut by :func:`crop_face` with a named framing (``whole``, ``box``,
``level``, ``aligned``, ``square``; see :mod:`classicfer.face._crop`).
"""

from ._align import align_face, crop_box, normalize_crop, normalize_pixels
from ._augment import augment_face, flip_landmarks, random_augment
from ._crop import (
    CROP_MODES,
    FRAMINGS,
    IOD_FRACTION,
    alignment_matrix,
    crop_face,
    transform_points,
)
from ._detect import METHODS, detect_faces
from ._draw import draw_faces
from ._landmarks import BOX_ADJUST, MODELS, adjust_box, face_landmarks
from ._types import LAYOUTS, Face, eye_centers

__all__ = [
                     "BOX_ADJUST",
                     "CROP_MODES",
                     "FRAMINGS",
                     "IOD_FRACTION",
                     "LAYOUTS",
                     "METHODS",
                     "MODELS",
                     "Face",
                     "FaceCropper",
                     "adjust_box",
                     "align_face",
                     "alignment_matrix",
                     "augment_face",
                     "crop_box",
                     "crop_face",
                     "detect_faces",
                     "draw_faces",
                     "eye_centers",
                     "face_landmarks",
                     "flip_landmarks",
                     "normalize_crop",
                     "normalize_pixels",
                     "random_augment",
                     "transform_points",
]


def __getattr__(name):
    # FaceCropper needs scikit-learn (slow to import); load it only when asked, so the
    # kiosk runtime (detect + landmarks) does not import sklearn/joblib.
    if name == "FaceCropper":
        from ._cropper import FaceCropper

        return FaceCropper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
