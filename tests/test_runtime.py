"""Runtime: deployment folders, checksum refusal, onnxruntime inference, crops, Predictor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from classicfer.exceptions import ConfigError, ImageError, ModelError
from classicfer.export._testing import make_linear_model
from classicfer.face import crop_face
from classicfer.labels import EMOTIONS
from classicfer.runtime import (
    FaceResult,
    Predictor,
    list_models,
    load_model,
    read_sidecar,
)

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    return make_linear_model(tmp_path_factory.mktemp("models") / "linear")


def _copy_model(src, dst):
    dst.mkdir()
    for f in ("model.onnx", "model.json"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


# ------------------------------------------------------------------ format / loading
def test_load_model_and_probabilities(linear_model):
    m = load_model(linear_model, cache=False)
    assert m.labels == list(EMOTIONS[:7])
    assert m.input_size == (48, 48)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    p = m.predict_proba(crops)
    assert p.shape == (5, 7)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p >= 0).all()
    # different inputs give different outputs (the model is really run)
    assert not np.allclose(p[0], p[1])
    # one crop of another size, RGB: resized and converted
    q = m.predict_proba(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8))
    assert q.shape == (1, 7)


def test_logits_softmax_matches_numpy(linear_model):
    """The runtime's normalisation + softmax equals a hand computation of the graph."""
    import onnx
    from onnx import numpy_helper

    m = load_model(linear_model, cache=False)
    g = onnx.load(str(linear_model / "model.onnx")).graph
    w = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    crop = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    x = ((crop.astype(np.float64) / 255.0) - 0.5) / 0.25
    z = x.reshape(1, -1) @ w["W"] + w["b"]
    e = np.exp(z - z.max())
    assert np.allclose(m.predict_proba(crop)[0], (e / e.sum())[0], atol=1e-5)


def test_temperature_is_applied(tmp_path, linear_model):
    d = _copy_model(linear_model, tmp_path / "t")
    meta = json.loads((d / "model.json").read_text())
    meta["temperature"] = 4.0
    (d / "model.json").write_text(json.dumps(meta))
    crop = np.random.default_rng(2).integers(0, 256, (48, 48), dtype=np.uint8)
    p1 = load_model(linear_model, cache=False).predict_proba(crop)[0]
    p4 = load_model(d, cache=False).predict_proba(crop)[0]
    assert p4.max() < p1.max()  # softer
    assert np.argmax(p4) == np.argmax(p1)


def test_checksum_refuses_tampered_onnx(tmp_path, linear_model):
    d = _copy_model(linear_model, tmp_path / "tampered")
    data = bytearray((d / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (d / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(d, cache=False)


def test_checksum_refuses_truncated_onnx(tmp_path, linear_model):
    d = _copy_model(linear_model, tmp_path / "trunc")
    data = (d / "model.onnx").read_bytes()
    (d / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="refusing to load"):
        load_model(d, cache=False)


def test_cached_model_rechecks_a_modified_file(tmp_path, linear_model):
    d = _copy_model(linear_model, tmp_path / "cached")
    load_model(d)
    data = bytearray((d / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (d / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(d)


@pytest.mark.parametrize("problem, match", [
    ("no_sidecar", "not a classicfer model folder"),
    ("bad_json", "invalid JSON"),
    ("no_sha", "refusing an unverified model"),
    ("missing", "no such model folder"),
])
def test_bad_model_folders(tmp_path, linear_model, problem, match):
    d = _copy_model(linear_model, tmp_path / "m")
    if problem == "no_sidecar":
        (d / "model.json").unlink()
    elif problem == "bad_json":
        (d / "model.json").write_text("{not json")
    elif problem == "no_sha":
        meta = json.loads((d / "model.json").read_text())
        del meta["onnx"]["sha256"]
        (d / "model.json").write_text(json.dumps(meta))
    else:
        d = tmp_path / "nope"
    with pytest.raises(ModelError, match=match):
        load_model(d, cache=False)


def test_sidecar_label_count_mismatch(tmp_path, linear_model):
    """A label count other than the graph's output width is refused at load time."""
    d = _copy_model(linear_model, tmp_path / "lab")
    meta = json.loads((d / "model.json").read_text())
    meta["labels"] = meta["labels"][:5]
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="outputs 7 values per face but the sidecar lists 5"):
        load_model(d, cache=False)


def test_runtime_imports_no_torch_or_pickle(linear_model):
    """The deployment path must not import torch or joblib."""
    import subprocess

    code = (
        "import sys; from classicfer.runtime import Predictor; "
        f"p = Predictor({str(linear_model)!r}); "
        f"r = p.predict({str(ASTRONAUT)!r}); "
        "bad = [m for m in ('torch', 'joblib', 'tensorflow') if m in sys.modules]; "
        "print(len(r), bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "1 []"


def test_import_classicfer_is_light():
    import subprocess

    code = ("import sys, classicfer; "
            "print([m for m in ('onnxruntime', 'cv2', 'torch') if m in sys.modules]); "
            "print(callable(classicfer.predict))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"


# ------------------------------------------------------------------------ crops
def test_crop_modes_shape_and_framing():
    from classicfer.imageio import read_image

    img = read_image(ASTRONAUT, gray=True)
    box = (170, 60, 108, 108)
    c = crop_face(img, box, size=(48, 48), framing="box")
    assert c.shape == (48, 48) and c.dtype == np.uint8
    # a face near the border still gives a full crop (replicated border)
    c2 = crop_face(img, (0, 0, 60, 60), size=(48, 48), framing="box")
    assert c2.shape == (48, 48)
    # "level": eyes given explicitly (dlib 5-point order), tilted by 20 degrees
    lm = np.array([[319, 98], [302, 98], [259, 94], [276, 96], [288, 126]], float)
    c3 = crop_face(img, box, lm, size=(48, 48), framing="level")
    assert c3.shape == (48, 48)
    whole = crop_face(img, None, size=(48, 48), framing="whole")
    assert whole.shape == (48, 48)


def test_level_crop_levels_a_rotated_face():
    """Rotate the photo by 15 degrees; the 'level' crop undoes it (eyes level again)."""
    import cv2

    from classicfer.face import detect_faces, eye_centers, face_landmarks
    from classicfer.imageio import read_image

    img = read_image(ASTRONAUT, gray=True)
    m = cv2.getRotationMatrix2D((224, 110), 15, 1.0)
    rot = cv2.warpAffine(img, m, img.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    f = detect_faces(rot, "haar")[0]
    lm = face_landmarks(rot, f, model="5")
    a, b = eye_centers(lm)
    assert abs(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0]))) > 8  # tilted in the frame
    crop = crop_face(rot, f.box, lm, size=(96, 96), framing="level")
    lm2 = face_landmarks(crop, None, model="5")
    a2, b2 = eye_centers(lm2)
    assert abs(np.degrees(np.arctan2(b2[1] - a2[1], b2[0] - a2[0]))) < 5
    assert 0.3 < (a2[1] + b2[1]) / 2 / 96 < 0.5  # eye line near EYE_Y


# -------------------------------------------------------------------- predictor
def test_predictor_on_astronaut(linear_model):
    p = Predictor(linear_model)
    faces = p.predict(str(ASTRONAUT))
    assert len(faces) == 1
    f = faces[0]
    x, y, w, h = f.box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 180  # the face, not the helmet
    assert sum(f.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert f.status in ("ok", "uncertain")
    if f.status == "ok":
        assert f.label in EMOTIONS


def test_default_model_on_astronaut():
    """The shipped default model: one face, a label from the vocabulary, probs sum to 1."""
    if not list_models():
        pytest.skip("no model bundled in classicfer/bundled_models/ yet")
    import classicfer

    faces = classicfer.predict(str(ASTRONAUT))
    assert len(faces) == 1
    f = faces[0]
    assert f.best_guess in EMOTIONS
    assert sum(f.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert f.status in ("ok", "uncertain")


def test_predict_accepts_arrays_bytes_and_pil(linear_model):
    from PIL import Image

    p = Predictor(linear_model)
    arr = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    r1 = p.predict(arr)
    r2 = p.predict(ASTRONAUT.read_bytes())
    r3 = p.predict(Image.open(ASTRONAUT))
    assert len(r1) == len(r2) == len(r3) == 1
    assert r1[0].box == r2[0].box


def test_thresholds_mark_faces_instead_of_guessing(linear_model):
    small = Predictor(linear_model, min_face=500).predict(str(ASTRONAUT))
    assert small[0].status == "too_small" and small[0].label is None
    assert small[0].probabilities is None
    unsure = Predictor(linear_model, min_confidence=0.99).predict(str(ASTRONAUT))
    assert unsure[0].status == "uncertain" and unsure[0].label is None
    assert unsure[0].probabilities is not None


def test_no_detect_treats_image_as_one_face(linear_model):
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    r = Predictor(linear_model, detect=False).predict(crop)
    assert len(r) == 1 and r[0].box == (0, 0, 48, 48)
    direct = load_model(linear_model).predict_proba(crop)[0]
    assert np.allclose(list(r[0].probabilities.values()), direct, atol=1e-6)


def test_no_face_is_an_empty_list(linear_model):
    assert Predictor(linear_model).predict(np.full((200, 300, 3), 128, np.uint8)) == []


def test_default_detector_reports_no_face_on_a_cat(linear_model):
    """The kiosk default (BlazeFace, verified by O-Net) gives no expression for a cat, a
    blank or a noise frame, and still exactly one face for the astronaut.
    """
    from skimage.data import chelsea

    p = Predictor(linear_model)
    assert p.predict(chelsea()) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert p.predict(noise) == [] and p.predict(np.zeros((480, 640, 3), np.uint8)) == []
    assert len(p.predict(str(ASTRONAUT))) == 1


def test_predict_record_schema(linear_model):
    rec = Predictor(linear_model).predict_record(str(ASTRONAUT), "astronaut.jpg")
    assert rec["path"] == "astronaut.jpg"
    assert (rec["width"], rec["height"]) == (512, 512)
    json.dumps(rec)  # serialisable
    (f,) = rec["faces"]
    assert set(f) >= {"box", "label", "confidence", "probabilities", "status", "top3"}
    assert len(f["box"]) == 4 and all(isinstance(v, int) for v in f["box"])
    assert list(f["probabilities"]) == list(EMOTIONS[:7])
    assert [k for k, _ in f["top3"]] == sorted(f["probabilities"],
                                               key=lambda k: -f["probabilities"][k])[:3]


def test_predict_timed_reports_every_stage(linear_model):
    _, t = Predictor(linear_model).predict_timed(str(ASTRONAUT))
    assert set(t) == {"decode", "detect", "landmarks", "features", "classify", "total"}
    assert t["total"] >= t["detect"] > 0


@pytest.mark.parametrize("kw, match", [
    ({"detector": "hogg"}, "unknown detector"),
    ({"landmarks": "7"}, "unknown landmark model"),
    ({"crop": "zoom"}, "unknown crop mode"),
    ({"min_confidence": 2}, "min_confidence"),
    ({"threads": -1}, "threads"),
])
def test_predictor_bad_options(linear_model, kw, match):
    with pytest.raises(ConfigError, match=match):
        Predictor(linear_model, **kw)


def test_bad_image_inputs(linear_model):
    p = Predictor(linear_model)
    with pytest.raises(ImageError, match="no such file"):
        p.predict("/nonexistent/x.jpg")
    with pytest.raises(ImageError):
        p.predict(b"not an image")
    with pytest.raises(ImageError, match="expected a path"):
        p.predict(12345)


def test_face_result_dict_roundtrip():
    f = FaceResult((1, 2, 3, 4), "happy", 0.8, {"happy": 0.8, "sad": 0.2})
    d = f.to_dict()
    assert d["top3"] == [["happy", 0.8], ["sad", 0.2]]
    assert d["status"] == "ok"


def test_bundled_models_are_valid():
    """Every folder shipped in classicfer/bundled_models/ passes its checksum and runs."""
    for d in list_models():
        meta, _ = read_sidecar(d)
        m = load_model(d, cache=False)
        p = m.predict_proba(np.full((48, 48), 128, np.uint8))
        assert p.shape == (1, len(meta["labels"]))
        assert set(meta["labels"]) <= set(EMOTIONS)


def test_predict_and_load_open_no_network(linear_model, tmp_path):
    """Loading a model, detecting, landmarks and classifying open no socket."""
    from classicfer.netguard import no_network
    from classicfer.runtime import _model, _predict

    _model._CACHE.clear()
    _predict._DEFAULT.clear()
    with no_network():
        import classicfer

        faces = classicfer.predict(str(ASTRONAUT), model=str(linear_model), landmarks="5")
        assert len(faces) == 1
        rec = Predictor(load_model(linear_model, cache=False)).predict_record(str(ASTRONAUT))
        assert rec["faces"]


def test_fast_decode_matches_read_image(tmp_path):
    """The runtime's OpenCV decode path gives read_image's pixels (incl. EXIF rotation)."""
    from PIL import Image

    from classicfer.imageio import read_image
    from classicfer.runtime._decode import decode_image

    assert np.array_equal(decode_image(ASTRONAUT), read_image(ASTRONAUT))
    im = Image.open(ASTRONAUT).crop((0, 0, 300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=95)
    a, b = decode_image(p), read_image(p)
    assert a.shape == b.shape == (300, 200, 3)
    assert np.abs(a.astype(int) - b).mean() < 1.0
    gray = tmp_path / "g.png"
    Image.fromarray(read_image(ASTRONAUT, gray=True)).save(gray)
    assert np.array_equal(decode_image(gray), read_image(gray))
    data = ASTRONAUT.read_bytes()
    with pytest.raises(ImageError, match="truncated|cannot decode"):
        decode_image(data[: len(data) // 2])


def test_predictor_is_thread_safe(linear_model):
    """One Predictor shared by threads (as `serve` does) gives the same answers."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    p = Predictor(linear_model)
    arr = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    crop = np.asarray(Image.open(ASTRONAUT).convert("L").resize((48, 48)))
    want = p.predict(arr)[0].probabilities
    nodetect = Predictor(linear_model, detect=False)
    want_crop = nodetect.predict(crop)[0].probabilities

    def job(i):
        if i % 2:
            return p.predict(arr)[0].probabilities == want
        return nodetect.predict(crop)[0].probabilities == want_crop

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(job, range(16)))


@pytest.mark.parametrize(("detector", "landmarks", "n_points"),
                         [("blazeface", "auto", 6), ("blazeface", "5", 5),
                          ("mtcnn", "auto", 5), ("haar", "auto", 5), ("haar", "none", None)])
def test_landmark_source_per_detector(linear_model, detector, landmarks, n_points):
    """``auto`` keeps a detector's own eye points (BlazeFace 6, MTCNN 5) and runs dlib's
    5-point model otherwise; ``5`` always runs dlib's.
    """
    p = Predictor(str(linear_model), detector=detector, landmarks=landmarks)
    (face,) = p.predict(str(ASTRONAUT))
    if n_points is None:
        assert face.landmarks is None
    else:
        assert face.landmarks.shape == (n_points, 2)
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 260 and 100 < y + h / 2 < 170  # the astronaut's face


def test_default_detector_is_blazeface(linear_model):
    from classicfer.runtime._predict import DEFAULT_DETECTOR

    assert Predictor(str(linear_model)).detector == DEFAULT_DETECTOR == "blazeface"


def test_cli_min_face_default_is_the_runtime_default():
    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.runtime._predict import MIN_FACE

    r = CliRunner().invoke(cli, ["predict", "--help"])
    assert f"[default: {MIN_FACE};" in " ".join(r.output.split())
