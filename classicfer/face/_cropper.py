"""FaceCropper: an sklearn transformer from images to aligned face crops."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ..exceptions import ConfigError, DataError
from ..imageio import as_uint8_image
from ._detect import METHODS

#: Detectors that return eye points (``landmarks='detector'``).
EYE_DETECTORS = ("mtcnn", "blazeface")


class FaceCropper(TransformerMixin, BaseEstimator):
    """Images -> aligned square face crops, one per image (the largest face).

    Each crop is cut by :func:`classicfer.face.crop_face`: the ``"aligned"``
    framing from the landmarks, or the ``"square"`` framing of the box without them.

    Parameters
    ----------
    detector : {'haar', 'blazeface', 'dlib-hog', 'dlib-cnn', 'mtcnn'} or None
        Face detector (``'blazeface'`` is the runtime's default); ``None`` means the
        images are already face crops (FER-2013, CK+48): the whole image is the
        box, upscaled before landmarking.
    landmarks : {'5', '68', 'detector'} or None
        Landmark model used for alignment: dlib's 5-point model (default; free of
        the 68-point model's non-commercial data licence), the 68-point model,
        ``'detector'`` = the detector's own eye points (``detector='mtcnn'`` or
        ``'blazeface'``), or ``None`` = no alignment (square crop of the box).
    size : int
        Output side (48, 64, 224...).
    margin : float
        Context around the face, see :func:`classicfer.face.align_face`.
    gray : bool
        Grayscale ``(N, size, size)`` output, else RGB ``(N, size, size, 3)``.
    normalize : {None, 'equalize', 'clahe', 'minmax'}
        Photometric normalisation of each crop.
    no_face : {'center', 'skip', 'error'}
        What to do when no face (or, for ``detector=None``, no plausible landmark
        set) is found: ``'center'`` = central square of the image (one output per
        input, safe inside a Pipeline); ``'skip'`` = drop the image (use
        :meth:`crop` to learn which were kept; not for Pipelines with labels);
        ``'error'`` = raise :class:`~classicfer.exceptions.DataError`.
    min_size, upsample :
        Passed to :func:`classicfer.face.detect_faces` (``blazeface`` cannot
        upsample).

    Attributes
    ----------
    found_ : (N,) bool ndarray
        After :meth:`transform`/:meth:`crop`: whether each image had a face.
    """

    _parameter_constraints: ClassVar[dict] = {
        "detector": [StrOptions(set(METHODS)), None],
        "landmarks": [StrOptions({"5", "68", "detector"}), None],
        "size": [Interval(Integral, 8, None, closed="left")],
        "margin": [Interval(Real, -0.4, None, closed="neither")],
        "gray": ["boolean"],
        "normalize": [StrOptions({"equalize", "clahe", "minmax"}), None],
        "no_face": [StrOptions({"center", "skip", "error"})],
        "min_size": [Interval(Real, 0, None, closed="neither"), None],
        "upsample": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, *, detector="haar", landmarks="5", size=48, margin=0.1, gray=True,
                 normalize=None, no_face="center", min_size=None, upsample=0):
        self.detector = detector
        self.landmarks = landmarks
        self.size = size
        self.margin = margin
        self.gray = gray
        self.normalize = normalize
        self.no_face = no_face
        self.min_size = min_size
        self.upsample = upsample

    def fit(self, X=None, y=None):
        """Stateless: validates the parameters and returns ``self``."""
        self._check_params()
        self.is_fitted_ = True
        return self

    def _check_params(self):
        try:
            self._validate_params()
        except ValueError as e:
            raise ConfigError(f"FaceCropper: {e}") from None
        if self.landmarks == "detector" and self.detector not in EYE_DETECTORS:
            raise DataError("landmarks='detector' needs detector='mtcnn' or 'blazeface' (the "
                            f"detectors that return eye points), got detector={self.detector!r}")
        if self.detector == "blazeface" and self.upsample:
            raise ConfigError("FaceCropper: detector='blazeface' looks at the whole image at "
                              "once and cannot upsample; use upsample=0 (min_size finds smaller "
                              "faces)")

    def transform(self, X):
        """``X``: (N, H, W[, C]) array or list of images -> uint8 crops.

        Works without :meth:`fit` (the cropper learns nothing); the parameters are
        validated on every call.
        """
        crops, _ = self.crop(X)
        return crops

    def crop(self, X):
        """Like :meth:`transform`, also returning ``found`` ((N,) bool)."""
        self._check_params()
        out, found = [], []
        for i, image in enumerate(X):
            crop = self._one(image)
            found.append(crop is not None)
            if crop is None:
                if self.no_face == "error":
                    raise DataError(f"no face found in image {i}; use no_face='center' or "
                                    "'skip' to continue")
                if self.no_face == "skip":
                    continue
                crop = self._cut(as_uint8_image(image, gray=self.gray), None, None, None,
                                 margin=0.0)
            out.append(crop)
        self.found_ = np.asarray(found, bool)
        shape = (0, self.size, self.size) + (() if self.gray else (3,))
        return (np.stack(out) if out else np.zeros(shape, np.uint8)), self.found_

    def _cut(self, img, box, landmarks, layout, *, margin):
        """:func:`~classicfer.face.crop_face` of ``img``, then normalisation.

        ``img`` is already in the output colour. The ``"aligned"`` framing from
        ``landmarks``, else the ``"square"`` framing of ``box``.
        """
        from ._align import normalize_crop
        from ._crop import crop_face

        framing = "square" if landmarks is None else "aligned"
        crop = crop_face(img, box, landmarks, framing=framing, size=self.size, margin=margin,
                         layout=layout)
        return normalize_crop(crop, self.normalize)

    def _one(self, image):
        from ._detect import detect_faces
        from ._landmarks import face_landmarks, landmarks_plausible

        img = as_uint8_image(image)
        if self.detector is None:
            box, face = (0, 0, img.shape[1], img.shape[0]), None
        else:
            faces = detect_faces(img, self.detector, min_size=self.min_size,
                                 upsample=self.upsample, max_faces=1)
            if not faces:
                return None
            face = faces[0]
            box = face.box
        src = as_uint8_image(img, gray=self.gray)
        if self.landmarks is None:
            return self._cut(src, box, None, None, margin=self.margin)
        if self.landmarks == "detector":
            return self._cut(src, box, face.landmarks, face.layout, margin=self.margin)
        pts = face_landmarks(img, face if face is not None else None, self.landmarks)
        if face is None and not landmarks_plausible(pts, box):
            return None
        return self._cut(src, box, pts, None, margin=self.margin)

    def get_feature_names_out(self, input_features=None):
        n = self.size * self.size * (1 if self.gray else 3)
        return np.asarray([f"pixel{i}" for i in range(n)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags
