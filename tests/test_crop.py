"""The one face crop function (``classicfer.face.crop_face``) and its users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classicfer.exceptions import ConfigError
from classicfer.face import FaceCropper, align_face, crop_box, crop_face, detect_faces
from classicfer.imageio import read_image

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def img():
    return read_image(ASTRONAUT)


def test_framings_are_the_face_stages_crops(img):
    gray = read_image(ASTRONAUT, gray=True)
    pts = np.array([[200.0, 120.0], [250.0, 118.0]])  # two eye centres
    assert np.array_equal(crop_face(gray, None, pts, framing="aligned", size=48),
                          align_face(img, pts, 48))
    assert np.array_equal(crop_face(gray, None, framing="square", size=32),
                          crop_box(img, None, 32))
    box = (170, 60, 108, 108)
    assert crop_face(img, box, framing="box", size=(48, 64)).shape == (48, 64, 3)
    # "level" without usable eyes is the "box" framing
    assert np.array_equal(crop_face(gray, box, None, framing="level", detector="blazeface"),
                          crop_face(gray, box, framing="box", detector="blazeface"))
    far_apart = np.array([[0.0, 100.0], [500.0, 100.0]])  # wider than the box: a misfit
    assert np.array_equal(crop_face(gray, box, far_apart, framing="level", layout="eyes2"),
                          crop_face(gray, box, framing="box"))
    for bad in ({"framing": "tight"}, {"size": 0}, {"size": (48,)}, {"border": "wrap"}):
        with pytest.raises(ConfigError):
            crop_face(gray, box, **bad)


def test_predictor_crops_with_crop_face(tmp_path, img):
    from classicfer.export._testing import make_linear_model
    from classicfer.runtime import Predictor

    p = Predictor(make_linear_model(tmp_path / "m"))
    faces = p.find_faces(img)
    p.add_landmarks(img, faces)
    gray = read_image(ASTRONAUT, gray=True)
    want = [crop_face(gray, f.box, f.landmarks, framing="level", size=(48, 48),
                      detector="blazeface", layout=f.layout) for f in faces]
    assert len(faces) == 1 and np.array_equal(p.crops(img, faces), np.stack(want))


def test_face_cropper_cuts_with_crop_face(img, monkeypatch):
    from classicfer.face import _crop

    framings = []
    real = _crop.crop_face

    def spy(*args, **kwargs):
        framings.append(kwargs["framing"])
        return real(*args, **kwargs)

    monkeypatch.setattr(_crop, "crop_face", spy)
    blank = np.zeros((120, 120), np.uint8)
    FaceCropper(detector="haar").transform([img, blank])  # landmarks, then no face
    FaceCropper(detector="haar", landmarks=None).transform([img])
    assert framings == ["aligned", "square", "square"]


def test_face_cropper_accepts_blazeface(img):
    own = FaceCropper(detector="blazeface", landmarks="detector").fit([img])
    crops, found = own.crop([img, np.zeros((160, 160), np.uint8)])
    assert crops.shape == (2, 48, 48) and found.tolist() == [True, False]
    face = detect_faces(img, "blazeface")[0]
    gray = read_image(ASTRONAUT, gray=True)
    assert np.array_equal(crops[0], crop_face(gray, face.box, face.landmarks, framing="aligned",
                                              size=48, layout=face.layout))
    dlib5 = FaceCropper(detector="blazeface", size=64).transform([img])
    assert dlib5.shape == (1, 64, 64)
    with pytest.raises(ConfigError, match="cannot upsample"):
        FaceCropper(detector="blazeface", upsample=1).fit([img])


def test_level_reads_the_eyes_through_eye_centers(img):
    """"level" takes its eye centres from :func:`classicfer.face.eye_centers`: any layout it
    knows gives the same crop as the two centres themselves; unreadable points fall back.
    """
    from classicfer.face import eye_centers

    gray = read_image(ASTRONAUT, gray=True)
    box = (170, 60, 108, 108)
    five = np.array([[262.0, 121.0], [240.0, 122.0], [195.0, 118.0], [218.0, 120.0],
                     [225.0, 150.0]])  # dlib 5-point: two corners per eye, then the nose
    left, right = eye_centers(five)
    ref = crop_face(gray, box, five, framing="level")
    assert not np.array_equal(ref, crop_face(gray, box, framing="box"))
    assert np.array_equal(crop_face(gray, box, np.stack([left, right]), framing="level"), ref)
    # 68 points read with a 5-point layout are not eyes: the "box" framing
    wrong = np.full((68, 2), 200.0)
    wrong[:2] = [[190.0, 120.0], [250.0, 121.0]]  # where mtcnn5 would look for the eyes
    assert np.array_equal(crop_face(gray, box, wrong, framing="level", layout="mtcnn5"),
                          crop_face(gray, box, framing="box"))
