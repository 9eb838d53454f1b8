"""Detect -> crop -> classify every face in an image.

>>> import classicfer
>>> faces = classicfer.predict("photo.jpg")          # doctest: +SKIP
>>> faces[0].label, faces[0].confidence              # doctest: +SKIP
('happy', 0.93)

Faces are never guessed when the evidence is weak: a face whose box is smaller
than ``min_face`` pixels gets ``status="too_small"`` and no label or
probabilities; a face whose top probability is below ``min_confidence`` gets
``status="uncertain"`` and ``label=None`` (its probabilities are still given).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError, ImageError
from ..face._crop import CROP_MODES, crop_face
from ..face._detect import METHODS

#: Smallest face side (pixels, in the input image) that is classified. The default model
#: keeps 78.7 % of its accuracy's 82.2 % on FER+ faces downscaled to 24 px and back
#: (``results/generalisation/robustness.md``, low_resolution severity 3), so faces of 24 px
#: and more get a label.
MIN_FACE = 24
#: Smallest top probability for a label to be reported (7 classes: chance is 0.14).
MIN_CONFIDENCE = 0.30
#: Smallest face the detector looks for (pixels; larger is faster). None = the detector's
#: default (haar 60, dlib 80, mtcnn 40, blazeface: no limit).
MIN_SIZE = None
#: The kiosk default: one 128x128 network pass, eye keypoints included.
DEFAULT_DETECTOR = "blazeface"
DETECTORS = tuple(METHODS)
LANDMARK_MODELS = ("auto", "5", "68", "none")
#: landmark layouts of detectors that already give eye centres (``landmarks="auto"`` keeps them)
EYE_LAYOUTS = ("mtcnn5", "blazeface6")


@dataclass
class FaceResult:
    """One face: where it is and what the model says about it.

    Attributes
    ----------
    box : (x, y, w, h) ints, in the input image's pixels
    label : str or None
        The predicted label, or ``None`` when ``status`` is not ``"ok"``.
    confidence : float or None
        Top probability (``None`` for ``too_small``).
    probabilities : dict or None
        label -> probability in the model's label order, summing to 1.
    status : {"ok", "uncertain", "too_small"}
    score : float or None
        The detector's score (``None`` with ``detect=False``).
    """

    box: tuple
    label: str | None
    confidence: float | None
    probabilities: dict | None
    status: str = "ok"
    score: float | None = None
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        if not self.probabilities:
            return []
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    @property
    def best_guess(self) -> str | None:
        t = self.top(1)
        return t[0][0] if t else None

    def to_dict(self) -> dict:
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "confidence": None if self.confidence is None else round(float(self.confidence), 6),
            "probabilities": None if self.probabilities is None else
            {k: round(float(v), 6) for k, v in self.probabilities.items()},
            "top3": [[k, round(float(v), 6)] for k, v in self.top(3)],
            "status": self.status,
            "detector_score": None if self.score is None else round(float(self.score), 4),
        }


def _to_image(image, what="image"):
    """Path / bytes / file / ndarray -> uint8 RGB or gray ndarray."""
    from ..imageio import as_uint8_image
    from ._decode import decode_image

    if isinstance(image, np.ndarray):
        return as_uint8_image(image) if image.ndim == 3 else as_uint8_image(image, gray=True)
    if (isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview))
            or hasattr(image, "read")):
        return decode_image(image)
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        return as_uint8_image(np.asarray(image.convert("RGB")))
    raise ImageError(f"expected a path, bytes or an ndarray for {what}, got {type(image).__name__}")


class Predictor:
    """Reusable face-expression predictor (one ONNX session, cached detector).

    Parameters
    ----------
    model : str, Path or DeployedModel, optional
        Model folder (default: :func:`~classicfer.runtime.default_model_dir`).
    detector : {"blazeface", "haar", "dlib-hog", "dlib-cnn", "mtcnn"}
        Face detector. ``blazeface`` (the default) is the fastest and gives eye
        points (so with ``landmarks="auto"`` no landmark model runs); one pass
        finds faces of at least an eighth of the image's longer side (a person
        near the camera), and ``min_size`` adds windows for smaller faces; each face
        is confirmed by MTCNN's O-Net (about 1 ms), so look-alikes such as a cat's
        head are not reported. For many small faces in large photos use ``mtcnn``
        (``min_size=20`` for faces below 40 px): it finds more of them than ``haar``
        or windowed BlazeFace, and faster (``results/face/false_positives.md``).
    landmarks : {"auto", "5", "68", "none"}
        Landmarks used to level the eyes before cropping. ``"auto"`` (default):
        the detector's own eye points when it has them (``blazeface``, ``mtcnn``),
        else dlib's 5-point model. ``"5"``: always dlib's 5-point model (free for
        commercial use; more precise eye centres than BlazeFace's, about 1 ms more
        per face); ``"68"``: dlib's 68-point model, trained on iBUG 300-W, whose
        licence forbids commercial use.
    crop : {"whole", "box", "level", "aligned"}, optional
        How a detected face is framed (a framing of
        :func:`classicfer.face.crop_face`); default from the model's sidecar
        (``input.crop``; ``"whole"`` there means "FER-style crops", which the
        runtime makes with ``"level"``, or ``"box"`` without landmarks).
    detect : bool
        ``False``: every image is one already-cropped face (FER-2013, CK+48).
    min_face : int
        Faces smaller than this (pixels) are reported as ``too_small``.
    min_confidence : float
        Faces whose top probability is lower are reported as ``uncertain``.
    min_size : float, optional
        Smallest face side the detector searches for, in pixels (larger is
        faster); default: the detector's own (haar 60, dlib 80, mtcnn 40,
        blazeface none).
    max_faces : int, optional
        Keep only the largest ``max_faces`` faces.
    threads : int, optional
        onnxruntime intra-op threads (default 1).
    """

    def __init__(self, model=None, *, detector=DEFAULT_DETECTOR, landmarks="auto", crop=None,
                 detect=True, min_face=MIN_FACE, min_confidence=MIN_CONFIDENCE, min_size=MIN_SIZE,
                 max_faces=None, threads=None):
        from ._model import DeployedModel, load_model

        if detector not in METHODS:
            raise ConfigError(f"unknown detector {detector!r}; choose from {', '.join(METHODS)}")
        landmarks = "none" if landmarks in (None, False) else str(landmarks)
        if landmarks not in LANDMARK_MODELS:
            raise ConfigError(f"unknown landmark model {landmarks!r}; choose from "
                              f"{', '.join(LANDMARK_MODELS)}")
        if crop is not None and crop not in CROP_MODES:
            raise ConfigError(f"unknown crop mode {crop!r}; choose from {', '.join(CROP_MODES)}")
        if not 0 <= float(min_confidence) <= 1:
            raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.model = model if isinstance(model, DeployedModel) else load_model(model,
                                                                                threads=threads)
        self.detector = detector
        self.landmarks = landmarks
        self.detect = bool(detect)
        self.min_face = int(min_face)
        self.min_confidence = float(min_confidence)
        self.min_size = None if min_size is None else float(min_size)
        self.max_faces = max_faces
        side_crop = self.model.crop
        if crop is None:
            crop = "level" if side_crop in ("whole", "level", None) else side_crop
            if crop == "level" and landmarks == "none":
                crop = "box"
        if crop == "aligned" and landmarks == "none":
            raise ConfigError("crop='aligned' needs landmarks; use landmarks='auto' or "
                              "crop='box'")
        self.crop = crop
        self.gray = self.model.color == "gray"

    @property
    def labels(self):
        return self.model.labels

    # ---------------------------------------------------------------- stages
    def find_faces(self, image) -> list:
        """Faces in ``image`` (uint8 RGB or gray) as ``classicfer.face.Face`` objects.

        Boxes are in ``image``'s pixels; landmarks are set when a landmark model is.
        """
        import cv2

        from ..face import detect_faces

        src = image
        if self.detector in ("haar", "dlib-hog") and image.ndim == 3:
            src = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return detect_faces(src, method=self.detector, min_size=self.min_size,
                            max_faces=self.max_faces)

    def add_landmarks(self, image, faces) -> None:
        if self.landmarks == "none":
            return
        import cv2

        from ..face import face_landmarks

        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        for f in faces:
            if f.landmarks is not None and f.layout in EYE_LAYOUTS and self.landmarks == "auto":
                continue  # the detector's own eye points (MTCNN, BlazeFace)
            model = "5" if self.landmarks == "auto" else self.landmarks
            f.landmarks = face_landmarks(gray, f.box, model=model, source=f.method)
            f.layout = None

    def crops(self, image, faces, mode=None) -> np.ndarray:
        import cv2

        src = image
        if self.gray and image.ndim == 3:
            src = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        elif not self.gray and image.ndim == 2:
            src = np.repeat(image[:, :, None], 3, axis=2)
        out = [crop_face(src, f.box, f.landmarks, size=self.model.input_size,
                         framing=mode or self.crop,
                         detector=self.detector, layout=getattr(f, "layout", None))
               for f in faces]
        return self.model.prepare(out)

    def _results(self, faces, proba) -> list[FaceResult]:
        res, j = [], 0
        for f in faces:
            box = tuple(int(v) for v in f.box)
            if box[2] < self.min_face or box[3] < self.min_face:
                res.append(FaceResult(box, None, None, None, "too_small", f.score, f.landmarks))
                continue
            p = proba[j]
            j += 1
            probs = {lab: float(v) for lab, v in zip(self.labels, p, strict=True)}
            k = int(np.argmax(p))
            conf = float(p[k])
            if conf < self.min_confidence:
                res.append(FaceResult(box, None, conf, probs, "uncertain", f.score, f.landmarks))
            else:
                res.append(FaceResult(box, self.labels[k], conf, probs, "ok", f.score,
                                      f.landmarks))
        return res

    # ------------------------------------------------------------------ API
    def predict(self, image) -> list[FaceResult]:
        """Every face in ``image`` (path, bytes, PIL image or uint8 array, RGB).

        Returns an empty list when no face is found (with ``detect=True``).
        """
        return self.predict_timed(image)[0]

    def predict_timed(self, image, clock=time.perf_counter) -> tuple[list[FaceResult], dict]:
        """:meth:`predict` plus the time (ms) of each stage.

        The stages: decode, detect, landmarks (+ crop/align), features (the feature code
        of a classical model; 0 for a CNN, whose normalisation is part of classify),
        classify.

        ``clock``: ``time.perf_counter`` (wall time) or ``time.thread_time`` (CPU
        time of this thread, robust to other processes competing for the CPU).
        """
        t0 = clock()
        img = _to_image(image)
        t1 = clock()
        if self.detect:
            faces = self.find_faces(img)
        else:
            from ..face import Face

            faces = [Face(box=(0, 0, img.shape[1], img.shape[0]), score=None, method="none")]
        t2 = clock()
        ok = [f for f in faces if f.box[2] >= self.min_face and f.box[3] >= self.min_face]
        if self.detect:
            self.add_landmarks(img, ok)
            crops = self.crops(img, ok)
        else:
            crops = self.crops(img, ok, mode="whole")
        t3 = clock()
        if self.model.kind == "classical" and len(crops):
            feats = self.model.features(crops)
            t4 = clock()
            proba = self.model.classify_features(feats)
        else:
            t4 = clock()
            proba = self.model.predict_proba(crops)
        t5 = clock()

        def ms(a, b):
            return (b - a) * 1000.0

        timings = {"decode": ms(t0, t1), "detect": ms(t1, t2), "landmarks": ms(t2, t3),
                   "features": ms(t3, t4), "classify": ms(t4, t5), "total": ms(t0, t5)}
        return self._results(faces, proba), timings

    def predict_record(self, image, path=None) -> dict:
        """The JSON record of one input: ``{"path", "width", "height", "faces": [...]}``."""
        img = _to_image(image)
        faces = self.predict(img)
        return {"path": None if path is None else str(path),
                "width": int(img.shape[1]), "height": int(img.shape[0]),
                "model": self.model.name, "detector": self.detector if self.detect else None,
                "faces": [f.to_dict() for f in faces]}

    def __repr__(self):
        return (f"Predictor(model={self.model.name!r}, detector={self.detector!r}, "
                f"landmarks={self.landmarks!r}, crop={self.crop!r}, detect={self.detect})")


_DEFAULT: dict = {}


def predict(image, **kwargs) -> list[FaceResult]:
    """Faces and expressions in ``image`` (path, bytes, PIL image or RGB array).

    Keyword arguments go to :class:`Predictor` (``model=``, ``detector=``,
    ``detect=False`` for an already-cropped face, ...). Predictors are cached by
    their arguments, so repeated calls do not reload anything.
    """
    key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    p = _DEFAULT.get(key)
    if p is None:
        p = _DEFAULT[key] = Predictor(**kwargs)
    return p.predict(image)
