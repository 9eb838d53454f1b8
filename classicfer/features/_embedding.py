"""128-d face descriptor of dlib's pretrained ResNet (face-recognition-models)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImageTransformer

CHIP = 150


class EmbeddingFeatures(ImageTransformer):
    """dlib ResNet face descriptor of each crop (128 values).

    Parameters
    ----------
    align : {'resize', 'landmarks'}, default='resize'
        'resize': the whole crop, resized to dlib's 150x150 chip, is the input
        (the crop is already a face). 'landmarks': run the 68-point predictor
        on the crop and cut dlib's own aligned chip (``padding``) from it.
    num_jitters : int, default=0
        dlib's test-time jittering (each extra jitter costs one more network pass).
    padding : float, default=0.25
        Chip padding for ``align='landmarks'``.
    n_jobs : int or None, default=None

    Notes
    -----
    The network (He et al., 2016; dlib's ``dlib_face_recognition_resnet_model_v1``)
    was trained for identity, not expression; it is a baseline descriptor here.
    """

    _min_size = (16, 16)
    #: the network gets its own chip (``align``): the eye-alignment step does not run first
    takes_aligned_crops: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "align": [StrOptions({"resize", "landmarks"})],
        "num_jitters": [Interval(Integral, 0, None, closed="left")],
        "padding": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, align="resize", num_jitters=0, padding=0.25, n_jobs=None):
        self.align = align
        self.num_jitters = num_jitters
        self.padding = padding
        self.n_jobs = n_jobs

    _param_error_name = "embedding"

    def _n_features(self, shape):
        return 128

    def _feature_prefix(self):
        return "embedding_"

    def _describe_batch(self, images):
        import cv2
        import dlib

        from ._dlib import LANDMARK_SIDE, crop_shapes, face_recognition_model, upscale

        net = face_recognition_model()
        if self.align == "landmarks":
            ups, shapes = crop_shapes(images, LANDMARK_SIDE)
            chips = [dlib.get_face_chip(cv2.cvtColor(u, cv2.COLOR_GRAY2RGB), s, size=CHIP,
                                        padding=float(self.padding))
                     for u, s in zip(ups, shapes, strict=True)]
        else:
            chips = [cv2.cvtColor(upscale(im, CHIP), cv2.COLOR_GRAY2RGB) for im in images]
        out = []
        for s in range(0, len(chips), 64):
            out.extend(net.compute_face_descriptor(chips[s:s + 64], int(self.num_jitters)))
        return np.asarray([np.asarray(v) for v in out], np.float32).reshape(len(images), 128)
