"""The :class:`Face` record and the landmark layouts the face stage knows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face.

    Attributes
    ----------
    box : tuple of 4 int
        ``(x, y, w, h)`` in pixels of the image given to the detector.
    score : float
        Detector confidence; its scale depends on ``method`` (Haar: level weight,
        dlib: SVM/MMOD score, MTCNN: O-Net probability).
    method : str
        The detector that produced the face (``"haar"``, ``"dlib-hog"``, ...).
    landmarks : (K, 2) float ndarray or None
        ``(x, y)`` points, when computed (``K`` = 68, 5 or MTCNN's 5).
    layout : str or None
        Name of the landmark layout (a key of :data:`LAYOUTS`); ``None`` means
        "infer from K" (68 -> ``"ibug68"``, 5 -> ``"dlib5"``).
    """

    box: tuple
    score: float
    method: str
    landmarks: np.ndarray | None = None
    layout: str | None = field(default=None)

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, not arrays)."""
        return {
            "box": [int(v) for v in self.box],
            "score": float(self.score),
            "method": self.method,
            "landmarks": None if self.landmarks is None
            else np.round(np.asarray(self.landmarks, float), 2).tolist(),
            "layout": None if self.landmarks is None
            else resolve_layout(self.landmarks, self.layout),
        }


def _flip68():
    p = np.arange(68)
    p[0:17] = np.arange(16, -1, -1)            # jaw
    p[17:27] = np.arange(26, 16, -1)           # eyebrows
    p[31:36] = np.arange(35, 30, -1)           # nose bottom
    p[36:48] = [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    p[48:60] = [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lip
    p[60:68] = [64, 63, 62, 61, 60, 67, 66, 65]                  # inner lip
    return p


#: layout name -> index sets. ``left_eye`` is the eye on the image's left
#: (the subject's right eye); ``flip`` is the permutation that maps the points of
#: a horizontally flipped image back to the layout's order.
LAYOUTS = {
    "ibug68": {"n": 68, "left_eye": list(range(36, 42)), "right_eye": list(range(42, 48)),
               "nose": [30], "mouth": list(range(48, 68)), "flip": _flip68()},
    # dlib's 5-point model: 0/1 outer/inner corner of the image-right eye,
    # 2/3 outer/inner corner of the image-left eye, 4 below the nose.
    "dlib5": {"n": 5, "left_eye": [2, 3], "right_eye": [0, 1], "nose": [4], "mouth": [],
              "flip": np.array([2, 3, 0, 1, 4])},
    # MTCNN: image-left eye centre, image-right eye centre, nose tip, mouth corners.
    "mtcnn5": {"n": 5, "left_eye": [0], "right_eye": [1], "nose": [2], "mouth": [3, 4],
               "flip": np.array([1, 0, 2, 4, 3])},
    # BlazeFace: image-left eye, image-right eye, nose tip, mouth centre, image-left ear
    # tragion, image-right ear tragion.
    "blazeface6": {"n": 6, "left_eye": [0], "right_eye": [1], "nose": [2], "mouth": [3],
                   "flip": np.array([1, 0, 2, 3, 5, 4])},
    # just the two eye centres (image-left first)
    "eyes2": {"n": 2, "left_eye": [0], "right_eye": [1], "nose": [], "mouth": [],
              "flip": np.array([1, 0])},
}


def resolve_layout(landmarks, layout: str | None = None) -> str:
    """The layout name for ``(K, 2)`` (or ``(N, K, 2)``) ``landmarks``.

    ``layout`` if given, else inferred from K.
    """
    from ..exceptions import ConfigError

    k = np.shape(landmarks)[-2] if np.ndim(landmarks) >= 2 else np.shape(landmarks)[0]
    if layout is None:
        layout = {68: "ibug68", 5: "dlib5", 2: "eyes2"}.get(k)
        if layout is None:
            raise ConfigError(f"cannot infer a landmark layout for {k} points; expected 68, 5 "
                              f"or 2 points, or pass layout= one of {', '.join(LAYOUTS)}")
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown landmark layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if LAYOUTS[layout]["n"] != k:
        raise ConfigError(f"layout {layout!r} has {LAYOUTS[layout]['n']} points, "
                          f"got landmarks of shape {np.shape(landmarks)}")
    return layout


def eye_centers(landmarks, layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the image-left and image-right eyes.

    Parameters
    ----------
    landmarks : (K, 2) or (N, K, 2) array
        68-point (iBUG), dlib 5-point, MTCNN 5-point (pass ``layout="mtcnn5"``,
        or a :class:`Face`), BlazeFace 6-point (``layout="blazeface6"``) or 2 eye
        centres; a batch of N faces gives N centres each.
    layout : str, optional
        A key of :data:`LAYOUTS`; inferred from K when omitted.

    Returns
    -------
    left, right : (2,) (or (N, 2)) float ndarrays
        ``(x, y)`` of the eye on the image's left, then the one on the right.
    """
    if isinstance(landmarks, Face):
        layout = layout or landmarks.layout
        landmarks = landmarks.landmarks
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim not in (2, 3) or pts.shape[-1] != 2:
        from ..exceptions import ConfigError

        raise ConfigError(f"expected landmarks of shape (K, 2) or (N, K, 2), got {pts.shape}")
    lay = LAYOUTS[resolve_layout(pts, layout)]
    return (pts[..., lay["left_eye"], :].mean(axis=-2),
            pts[..., lay["right_eye"], :].mean(axis=-2))
