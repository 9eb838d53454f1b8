"""Geometric features from the 68 facial landmarks of the iBUG 300-W scheme."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np

from ._base import ImageTransformer

# iBUG 68-point index ranges (0-based)
JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)   # subject's right = image left
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_MOUTH = slice(48, 60)
INNER_MOUTH = slice(60, 68)

RATIO_NAMES = (
    "eye_aspect_right", "eye_aspect_left", "mouth_aspect_outer", "mouth_aspect_inner",
    "mouth_width", "mouth_open", "mouth_corner_lift_right", "mouth_corner_lift_left",
    "brow_raise_right", "brow_raise_left", "brow_gap", "brow_inner_raise",
    "nose_to_mouth", "chin_to_mouth", "upper_lip", "lower_lip", "jaw_width",
)


def _eye_aspect(eye):
    # Soukupova & Cech (2016): (|p2-p6| + |p3-p5|) / (2 |p1-p4|)
    a = np.linalg.norm(eye[:, 1] - eye[:, 5], axis=-1)
    b = np.linalg.norm(eye[:, 2] - eye[:, 4], axis=-1)
    c = np.linalg.norm(eye[:, 0] - eye[:, 3], axis=-1)
    return (a + b) / (2 * np.maximum(c, 1e-6))


def landmark_geometry(landmarks, *, rotate=True):
    """Pose-normalised geometry of (N, 68, 2) landmarks.

    The points are centred on the mid-point of the eye centres, divided by the
    inter-ocular distance (IOD) and, with ``rotate``, turned so the eyes lie on
    a horizontal line. From them:

    - the 136 normalised coordinates;
    - 68 distances and 68 (cos, sin) angle pairs of each point from the
      centroid of the normalised shape;
    - 17 shape ratios (eye and mouth aspect ratios, mouth width and opening,
      mouth-corner lift, brow raise, brow gap, lip thickness, jaw width),
      all relative to the IOD (see ``RATIO_NAMES``).

    Parameters
    ----------
    landmarks : (N, 68, 2) ndarray
        (x, y) points in image coordinates.
    rotate : bool
        Remove in-plane rotation (roll).

    Returns
    -------
    (N, 357) float32 ndarray
    """
    from ..face import eye_centers

    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"expected (N, 68, 2) landmarks, got shape {pts.shape}")
    re, le = eye_centers(pts, "ibug68")  # the subject's right eye is on the image's left
    mid = (re + le) / 2
    d = le - re
    iod = np.maximum(np.linalg.norm(d, axis=-1), 1e-6)
    p = (pts - mid[:, None]) / iod[:, None, None]
    if rotate:
        ang = np.arctan2(d[:, 1], d[:, 0])
        c, s = np.cos(-ang), np.sin(-ang)
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
        p = np.einsum("nij,nkj->nki", rot, p)
    centroid = p.mean(1, keepdims=True)
    v = p - centroid
    dist = np.linalg.norm(v, axis=-1)
    theta = np.arctan2(v[..., 1], v[..., 0])

    def nd(a, b):
        return np.linalg.norm(p[:, a] - p[:, b], axis=-1)

    mouth_c = p[:, 62:67:4].mean(1)  # inner-lip mid-points 62 and 66
    ratios = np.stack([
        _eye_aspect(p[:, RIGHT_EYE]),
        _eye_aspect(p[:, LEFT_EYE]),
        nd(51, 57) / np.maximum(nd(48, 54), 1e-6),
        nd(62, 66) / np.maximum(nd(60, 64), 1e-6),
        nd(48, 54),
        nd(62, 66),
        mouth_c[:, 1] - p[:, 48, 1],
        mouth_c[:, 1] - p[:, 54, 1],
        p[:, RIGHT_EYE, 1].mean(1) - p[:, RIGHT_BROW, 1].mean(1),
        p[:, LEFT_EYE, 1].mean(1) - p[:, LEFT_BROW, 1].mean(1),
        nd(21, 22),
        (p[:, 39, 1] - p[:, 21, 1] + p[:, 42, 1] - p[:, 22, 1]) / 2,
        nd(33, 51),
        nd(8, 57),
        nd(51, 62),
        nd(66, 57),
        nd(0, 16),
    ], -1)
    out = np.concatenate([p.reshape(len(p), -1), dist, np.cos(theta), np.sin(theta), ratios], -1)
    return out.astype(np.float32)


N_LANDMARK_FEATURES = 136 + 68 * 3 + len(RATIO_NAMES)


class LandmarkFeatures(ImageTransformer):
    """Geometry of the 68 dlib landmarks of each crop (see :func:`landmark_geometry`).

    The whole crop is the face box; crops are upscaled to ``upscale`` pixels
    before dlib's shape predictor (``shape_predictor_68_face_landmarks.dat``
    from face-recognition-models) runs.

    Parameters
    ----------
    upscale : int, default=192
        Side of the square the crop is resized to for the predictor.
    rotate : bool, default=True
        Remove in-plane rotation (eyes made horizontal).
    n_jobs : int or None, default=None
    """

    _min_size = (16, 16)
    _parameter_constraints: ClassVar[dict] = {"upscale": [Integral], "rotate": ["boolean"]}
    #: the geometry is pose-normalised already: the landmarks are found on the crop as given
    takes_aligned_crops: ClassVar[bool] = False

    def __init__(self, *, upscale=192, rotate=True, n_jobs=None):
        self.upscale = upscale
        self.rotate = rotate
        self.n_jobs = n_jobs

    _param_error_name = "landmarks"

    def _check_more_params(self):
        if self.upscale < 32:
            raise ValueError(f"upscale must be >= 32 pixels, got {self.upscale}")

    def _n_features(self, shape):
        return N_LANDMARK_FEATURES

    def get_feature_names_out(self, input_features=None):
        names = [f"landmarks_{a}{i}" for i in range(68) for a in "xy"]
        names += [f"landmarks_dist{i}" for i in range(68)]
        names += [f"landmarks_cos{i}" for i in range(68)]
        names += [f"landmarks_sin{i}" for i in range(68)]
        names += [f"landmarks_{r}" for r in RATIO_NAMES]
        return np.asarray(names, dtype=object)

    def _describe_batch(self, images):
        from ._dlib import crop_landmarks

        return landmark_geometry(crop_landmarks(images, self.upscale), rotate=self.rotate)
