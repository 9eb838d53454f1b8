"""``classicfer export``: joblib pipeline / CNN checkpoint -> deployment folder + parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.exceptions import ConfigError, ModelError
from classicfer.export import check_crops, export, parity
from classicfer.runtime import Predictor, load_model

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


def _rotated_faces(n=45, labels=("angry", "happy", "sad"), seed=0):
    import cv2

    from classicfer.imageio import read_image

    img = read_image(ASTRONAUT, gray=True)
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        lab = labels[i % len(labels)]
        ang = {"angry": -15, "happy": 0, "sad": 15}[lab] + rng.uniform(-3, 3)
        m = cv2.getRotationMatrix2D((224, 114), ang, 1.0)
        r = cv2.warpAffine(img, m, img.shape[::-1])
        X.append(cv2.resize(r[60:170, 170:280], (48, 48), interpolation=cv2.INTER_AREA))
        y.append(lab)
    return np.stack(X), np.array(y)


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory):
    import joblib

    from classicfer.pipeline import fit_pipeline, make_pipeline

    X, y = _rotated_faces()
    pipe = make_pipeline("hog", "logreg")
    fit_pipeline(pipe, X, y, cache=False)
    path = tmp_path_factory.mktemp("pipe") / "pipeline.joblib"
    joblib.dump(pipe, path)
    return path


def test_export_classical_pipeline(pipeline_file, tmp_path):
    out = tmp_path / "deployed"
    r = CliRunner().invoke(cli, ["export", str(pipeline_file), "--out", str(out),
                                 "--allow-pickle"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "label agreement 100.0%" in r.output
    meta = json.loads((out / "model.json").read_text())
    assert meta["kind"] == "classical" and meta["features"]["spec"] == "hog"
    assert meta["labels"] == ["angry", "happy", "sad"]
    # the head's own parity record (scikit-learn vs ONNX on the check crops' features)
    rec = meta["training"]["onnx_parity"]
    assert set(rec) == {"agreement", "n", "max_abs_prob_diff"} and rec["agreement"] == 1.0
    assert rec["n"] == 64 and rec["max_abs_prob_diff"] < 1e-4
    # the deployed model reproduces the original on new crops
    import joblib

    pipe = joblib.load(pipeline_file)
    X, _ = _rotated_faces(12, seed=5)
    p_dep = load_model(out, cache=False).predict_proba(X)
    assert np.allclose(p_dep, pipe.predict_proba(X), atol=1e-4)
    # and runs end to end on the photo (level crop: upright face)
    faces = Predictor(out).predict(str(ASTRONAUT))
    assert len(faces) == 1 and faces[0].best_guess == "happy"


def test_export_from_folder_and_refusals(pipeline_file, tmp_path):
    out = tmp_path / "d1"
    export(pipeline_file.parent, out, allow_pickle=True)  # a folder holding pipeline.joblib
    with pytest.raises(ConfigError, match="not empty"):
        export(pipeline_file, out, allow_pickle=True)
    with pytest.raises(ConfigError, match="already a deployment folder"):
        export(out, tmp_path / "d2", allow_pickle=True)
    with pytest.raises(ConfigError, match="no such file"):
        export(tmp_path / "nope.joblib", tmp_path / "d3", allow_pickle=True)
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot load the pipeline"):
        export(bad, tmp_path / "d4", allow_pickle=True)
    other = tmp_path / "model.txt"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unknown model file type"):
        export(other, tmp_path / "d5", allow_pickle=True)
    with pytest.raises(ConfigError, match="runs any code stored in it.*--allow-pickle"):
        export(pipeline_file, tmp_path / "d6")  # a pickle is loaded only when allowed
    assert not (tmp_path / "d6").exists()


def test_parity_failure_refuses_and_writes_nothing(pipeline_file, tmp_path, monkeypatch):
    """If the deployed model disagrees with the original, nothing is left behind."""
    from classicfer.runtime import _model

    real = _model.DeployedModel.predict_proba

    def broken(self, crops):
        p = real(self, crops)
        return p[:, ::-1].copy()  # labels scrambled

    monkeypatch.setattr(_model.DeployedModel, "predict_proba", broken)
    out = tmp_path / "broken"
    with pytest.raises(ModelError, match="parity check failed"):
        export(pipeline_file, out, allow_pickle=True)
    assert not out.exists()


def test_parity_compares_in_the_deployed_label_order():
    ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    dep = ref[:, [2, 0, 1]].astype(np.float32)
    p = parity(ref, dep, labels=["a", "b", "c"], deployed_labels=["c", "a", "b"])
    assert p["n"] == 3 and p["agreement"] == 1.0 and p["max_abs_diff"] < 1e-7
    p = parity(ref, dep + [[0, 0, 0.6], [0, 0, 0], [0, 0, 0]],  # row 0 now says "b"
               labels=["a", "b", "c"], deployed_labels=["c", "a", "b"])
    assert p["agreement"] == pytest.approx(2 / 3) and p["max_abs_diff"] == pytest.approx(0.6)
    # predicted classes given separately (scikit-learn's predict)
    p = parity(ref, ref, labels=["a", "b", "c"], reference_pred=["a", "c", "a"])
    assert p["agreement"] == pytest.approx(2 / 3) and p["max_abs_diff"] == 0.0
    assert parity(np.zeros((0, 3)), np.zeros((0, 3)))["max_abs_diff"] == 0.0
    with pytest.raises(ModelError, match="shape"):
        parity(ref, ref[:, :2])
    with pytest.raises(ModelError, match="label 'd' is not among"):
        parity(ref, ref, labels=["a", "b", "c"], deployed_labels=["a", "b", "d"])


def test_check_crops():
    c = check_crops((48, 48), n=16)
    assert c.shape == (16, 48, 48) and c.dtype == np.uint8
    assert not np.array_equal(c[0], c[1])


def test_export_cnn_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from classicfer.cnn_head.model import FerNet

    torch.manual_seed(0)
    model = FerNet(n_classes=7, widths=(8, 16), attention=True).eval()
    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    ck = {"config": model.config, "classes": classes, "mean": 0.5, "std": 0.25, "epochs": 1,
          "model": model.state_dict(), "epoch": 1, "val_acc": 0.3}
    path = tmp_path / "best.pt"
    torch.save(ck, path)
    out = tmp_path / "cnn"
    r = export(path, out, name="tiny-cnn", allow_pickle=True)
    assert r["kind"] == "cnn" and r["parity"]["agreement"] == 1.0
    assert r["parity"]["max_abs_diff"] < 1e-4
    m = load_model(out, cache=False)
    assert m.kind == "cnn" and m.labels == classes


def test_cnn_export_names_missing_torch_but_raises_its_own_import_errors(tmp_path,
                                                                           monkeypatch):
    """Only the torch extra is reported as missing; a failing import of classicfer's own
    export code is raised as it is.
    """
    import sys

    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"not read: the imports fail first")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch", None)
        with pytest.raises(ConfigError, match="needs torch"):
            export(ckpt, tmp_path / "out", allow_pickle=True)
    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "classicfer.export._cnn", None)
    with pytest.raises(ImportError, match="classicfer.export._cnn"):
        export(ckpt, tmp_path / "out2", allow_pickle=True)
