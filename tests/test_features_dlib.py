"""Landmark geometry and the dlib face embedding on a real face (skimage astronaut)."""

from __future__ import annotations

import numpy as np
import pytest

from classicfer.features import EmbeddingFeatures, LandmarkFeatures, landmark_geometry


@pytest.fixture(scope="module")
def face48():
    import cv2
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    x, y, w, h = 177, 66, 95, 95
    return cv2.resize(gray[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)


def test_landmark_features_on_a_face(face48):
    from classicfer.features._dlib import crop_landmarks

    X = np.stack([face48, face48[:, ::-1]])
    est = LandmarkFeatures()
    out = est.fit_transform(X)
    assert out.shape == (2, len(est.get_feature_names_out())) and np.isfinite(out).all()
    pts = crop_landmarks(X[:1])[0]
    # eyes above the nose tip above the mouth, all inside the crop
    assert pts[36:48, 1].mean() < pts[33, 1] < pts[48:68, 1].mean()
    assert (pts > -2).all() and (pts < 50).all()
    names = list(est.get_feature_names_out())
    ear_r, ear_l = names.index("landmarks_eye_aspect_right"), names.index(
        "landmarks_eye_aspect_left")
    # a mirrored face swaps the eyes: ratios agree within landmark noise
    assert abs(out[0, ear_r] - out[1, ear_l]) < 0.1


def test_landmark_geometry_is_pose_normalised():
    rng = np.random.default_rng(0)
    pts = rng.uniform(10, 40, (1, 68, 2))
    th = np.deg2rad(20)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    moved = (pts[0] @ rot.T) * 2.5 + 7
    a = landmark_geometry(pts)
    b = landmark_geometry(moved[None])
    np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="68, 2"):
        landmark_geometry(np.zeros((1, 5, 2)))


def test_eye_centres_of_a_batch_are_those_of_each_face():
    """landmark_geometry reads a batch's eye centres with the face stage's eye_centers."""
    from classicfer.face import eye_centers

    rng = np.random.default_rng(1)
    for k, layout in ((68, None), (5, None), (6, "blazeface6")):
        pts = rng.uniform(0, 48, (3, k, 2))
        left, right = eye_centers(pts, layout)
        assert left.shape == right.shape == (3, 2)
        for i in range(3):
            one = eye_centers(pts[i], layout)
            np.testing.assert_array_equal(left[i], one[0])
            np.testing.assert_array_equal(right[i], one[1])


def test_embedding_is_128d_and_deterministic(face48):
    X = np.stack([face48, face48, np.rot90(face48)])
    out = EmbeddingFeatures().fit_transform(X)
    assert out.shape == (3, 128) and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert np.linalg.norm(out[0] - out[2]) > 1e-3
