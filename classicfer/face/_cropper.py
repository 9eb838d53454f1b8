"""FaceCropper: an sklearn transformer from images to aligned face crops."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..exceptions import DataError
from ..imageio import as_uint8_image


class FaceCropper(TransformerMixin, BaseEstimator):
    """Images -> aligned square face crops, one per image (the largest face).

    Parameters
    ----------
    detector : {'haar', 'dlib-hog', 'dlib-cnn', 'mtcnn'} or None
        Face detector; ``None`` means the images are already face crops
        (FER-2013, CK+48): the whole image is the box, upscaled before landmarking.
    landmarks : {'5', '68', 'detector'} or None
        Landmark model used for alignment: dlib's 5-point model (default; free of
        the 68-point model's non-commercial data licence), the 68-point model,
        ``'detector'`` = MTCNN's own 5 points (only with ``detector='mtcnn'``), or
        ``None`` = no alignment (square crop of the box).
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
        Passed to :func:`classicfer.face.detect_faces`.

    Attributes
    ----------
    found_ : (N,) bool ndarray
        After :meth:`transform`/:meth:`crop`: whether each image had a face.
    """

    _parameter_constraints: ClassVar[dict] = {
        "detector": [StrOptions({"haar", "dlib-hog", "dlib-cnn", "mtcnn"}), None],
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
        self._validate_params()
        if self.landmarks == "detector" and self.detector != "mtcnn":
            raise DataError("landmarks='detector' needs detector='mtcnn' (the only detector "
                            f"that returns landmarks), got detector={self.detector!r}")
        self.is_fitted_ = True
        return self

    def transform(self, X):
        """``X``: (N, H, W[, C]) array or list of images -> uint8 crops."""
        check_is_fitted(self)
        crops, _ = self.crop(X)
        return crops

    def crop(self, X):
        """Like :meth:`transform`, also returning ``found`` ((N,) bool)."""
        check_is_fitted(self)
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
                from ._align import crop_box

                crop = crop_box(image, None, self.size, gray=self.gray,
                                normalize=self.normalize)
            out.append(crop)
        self.found_ = np.asarray(found, bool)
        shape = (0, self.size, self.size) + (() if self.gray else (3,))
        return (np.stack(out) if out else np.zeros(shape, np.uint8)), self.found_

    def _one(self, image):
        from ._align import align_face, crop_box
        from ._detect import detect_faces
        from ._landmarks import face_landmarks, landmarks_plausible

        img = as_uint8_image(image)
        kw = {"size": self.size, "margin": self.margin, "gray": self.gray,
              "normalize": self.normalize}
        if self.detector is None:
            box, face = (0, 0, img.shape[1], img.shape[0]), None
        else:
            faces = detect_faces(img, self.detector, min_size=self.min_size,
                                 upsample=self.upsample, max_faces=1)
            if not faces:
                return None
            face = faces[0]
            box = face.box
        if self.landmarks is None:
            return crop_box(img, box, margin=self.margin, size=self.size, gray=self.gray,
                            normalize=self.normalize)
        if self.landmarks == "detector":
            return align_face(img, face, **kw)
        pts = face_landmarks(img, face if face is not None else None, self.landmarks)
        if face is None and not landmarks_plausible(pts, box):
            return None
        return align_face(img, pts, **kw)

    def get_feature_names_out(self, input_features=None):
        n = self.size * self.size * (1 if self.gray else 3)
        return np.asarray([f"pixel{i}" for i in range(n)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags
