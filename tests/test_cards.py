"""Model cards: every section, figures read from the sidecar and harness reports, licences."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.export._testing import make_linear_model
from classicfer.export.cards import CARD_FILE, SECTIONS, find_evaluations, write_model_card

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _model(tmp_path, name="fer-test", **training):
    d = make_linear_model(tmp_path / "models" / name, name=name)
    side = d / "model.json"
    meta = json.loads(side.read_text())
    meta["training"] = {"dataset": "fer2013", "epochs": 3, **training}
    meta["metrics"] = {"test_accuracy": 0.6123}
    side.write_text(json.dumps(meta))
    return d, meta


def _report(tmp_path, meta, *, dataset="fer2013", protocol="official", groups=True, sha=None):
    """A report folder written by the harness's own writer from known predictions.

    400 images, the first 60 of them wrong (mostly "x read as sad"): accuracy 85 %.
    ``run.json`` records ``sha`` (default: the model's own sha256) as the harness does,
    from the model description of the result. Returns the folder and the written
    ``metrics.json`` and ``calibration.json``.
    """
    from classicfer.datasets._base import Dataset
    from classicfer.evaluation import (
        METRICS,
        EvaluationResult,
        classification_metrics,
        write_report,
    )

    rng = np.random.default_rng(0)
    n = 400
    y_true = np.array(LABELS)[rng.integers(0, 7, n)]
    y_pred = y_true.copy()
    y_pred[:60] = "sad"
    y_pred[(y_true == "sad") & (np.arange(n) < 60)] = "neutral"
    proba = np.full((n, 7), 0.05)
    proba[np.arange(n), [LABELS.index(v) for v in y_pred]] = 0.7
    fm = classification_metrics(y_true, y_pred, LABELS)
    train, _, test = dataset.rpartition("-to-")
    paths = np.array([f"{i}.png" for i in range(n)])
    ds = Dataset(images=np.zeros((n, 48, 48), np.uint8), labels=y_true, subjects=None,
                 splits=np.array(["test"] * n), paths=paths, name=test)
    res = EvaluationResult(
        dataset=dataset, protocol=protocol, model=meta["name"], model_kind="deployed",
        labels=list(LABELS), rows=np.arange(n), y_true=y_true, y_pred=y_pred, proba=proba,
        score_kind="probability", fold=np.zeros(n, int),
        folds=[{"fold": 0, "n_train": 0, "n_test": n, "fit_time": None, "predict_time": 0.1,
                **{f"test_{k}": fm[k] for k in METRICS}}],
        paths=paths, subjects=None,
        model_description={"name": meta["name"], "sha256": sha or meta["onnx"]["sha256"]},
        train_dataset=train or None)
    out = tmp_path / "results" / dataset / protocol / meta["name"]
    g = {"site": np.where(np.arange(n) < 200, "site-a", "site-b")} if groups else None
    write_report(res, ds, out, command=["classicfer", "evaluate"], n_boot=200, gallery=0,
                 groups=g)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_samples"] == n and metrics["accuracy"] == pytest.approx(0.85)
    return out, metrics, json.loads((out / "calibration.json").read_text())


def _sections(text):
    return re.findall(r"^## (.+)$", text, flags=re.MULTILINE)


def test_card_has_every_section_in_order_without_reports(tmp_path):
    d, _ = _model(tmp_path)
    path = write_model_card(d, results_dirs=[tmp_path / "nothing"])
    assert path == d / CARD_FILE
    text = path.read_text()
    assert _sections(text) == list(SECTIONS)
    assert "No evaluation-harness report was found" in text
    assert "**Not measured.**" in text
    for word in ("employment", "education", "credit", "policing"):
        assert word in text
    assert "Expressions are not feelings" in text
    assert "Posed vs spontaneous" in text and "Cultural" in text


def test_card_reports_harness_figures(tmp_path):
    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    _out, metrics, cal = _report(tmp_path, meta)
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    # Metrics per dataset, per class, confusions, calibration, groups: all from the files.
    acc, (lo, hi) = metrics["accuracy"], metrics["accuracy_ci95"]
    assert lo < acc < hi
    assert (f"| fer2013 | official | 400 | {100 * acc:.1f} % [{100 * lo:.1f} %, {100 * hi:.1f} %]"
            in text)
    happy = metrics["per_class"]["happy"]
    assert f"| happy | {100 * happy['precision']:.1f} % | {100 * happy['recall']:.1f} %" in text
    cm = np.array(metrics["confusion"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(off.argmax(), off.shape)
    assert f"- {LABELS[i]} read as {LABELS[j]}: {off[i, j]} images" in text
    assert f"{100 * cal['ece']:.2f} %" in text
    assert "site-a" in text and "worst group:" in text
    assert "Test_accuracy" not in text and "test_accuracy: 61.2 %" in text
    # Training data notes for FER-2013.
    assert "No demographic labels" in text and "Label noise" in text and "duplicate" in text


@pytest.mark.parametrize("dataset, protocol", [("ckplus48", "subject-kfold"),
                                               ("fer2013-to-ckplus48", "cross-dataset")])
def test_card_training_notes_for_ckplus(tmp_path, dataset, protocol):
    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    _report(tmp_path, meta, dataset=dataset, protocol=protocol, groups=False)
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    assert "Posed expressions" in text and "118 subjects" in text
    assert "non-commercial research only" in text


def test_licences_table(tmp_path):
    d, _ = _model(tmp_path)
    text = write_model_card(d, results_dirs=[tmp_path]).read_text()
    lic = text.split("## Licences")[1].split("## ")[0]
    assert "iBUG 300-W" in lic and "excludes commercial use" in lic
    assert "shape_predictor_5_face_landmarks" in lic and "CC0" in lic
    assert "Boost Software License" in lic
    assert "Intel License Agreement" in lic
    assert "MTCNN" in lic and "MIT" in lic
    assert "CK+" in lic and "non-commercial" in lic
    assert "BSD-3-Clause" in lic
    assert "does not need the 68-point landmark model" in lic


def test_landmark_feature_model_is_flagged_non_commercial(tmp_path):
    d, _ = _model(tmp_path)
    side = d / "model.json"
    meta = json.loads(side.read_text())
    meta["kind"] = "classical"
    meta["features"] = {"spec": "hog+landmarks", "params": {}}
    side.write_text(json.dumps(meta))
    text = write_model_card(d, results_dirs=[tmp_path]).read_text()
    assert "needs the 68-point landmark model" in text
    assert "must not be used commercially" in text


def test_stale_report_of_an_older_model_is_ignored(tmp_path):
    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    _report(tmp_path, meta, sha="0" * 64)
    evs = find_evaluations(d, results_dirs=[tmp_path / "results"])
    assert len(evs) == 1 and evs[0]["stale"]
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    assert "No evaluation-harness report was found" in text
    assert "older model with the same name were ignored" in text


def test_temperature_record_appears(tmp_path):
    from classicfer.datasets._base import Dataset
    from classicfer.evaluation.calibration import calibrate_model_dir

    d, _ = _model(tmp_path)
    rng = np.random.default_rng(0)
    ds = Dataset(images=rng.integers(0, 256, (60, 48, 48), dtype=np.uint8),
                 labels=np.array(LABELS)[rng.integers(0, 7, 60)], subjects=None,
                 splits=np.array(["val"] * 60), paths=np.array([f"{i}.png" for i in range(60)]),
                 name="fake")
    rec = calibrate_model_dir(d, ds)
    text = write_model_card(d, results_dirs=[tmp_path]).read_text()
    assert (f"T = {rec['fitted_temperature']:.3f} was fitted on {rec['n_fit']} of the 60 images "
            f"of fake:val") in text
    assert f"checked on the other {rec['n_check']}" in text


@pytest.mark.parametrize("kept", [True, False])
def test_card_says_whether_the_temperature_was_kept(tmp_path, monkeypatch, kept):
    import classicfer.evaluation.calibration as cal
    from classicfer.datasets._base import Dataset

    rng = np.random.default_rng(0)
    n, k = 400, len(LABELS)
    z = rng.normal(0, 1.5, (n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    if kept:
        scores = 3 * z  # over-confident: a temperature near 3 helps
    else:  # top-1 calibrated, true class far below when wrong: the NLL-fitted T hurts ECE
        pred = z.argmax(1)
        conf = np.where(np.arange(n) % 2 == 0, 0.6, 0.9)
        y = np.where(rng.random(n) < conf, pred, (pred + 2) % k)
        scores = np.full((n, k), -30.0)
        scores[np.arange(n), pred] = 0.0
        scores[np.arange(n), (pred + 1) % k] = np.log((1 - conf) / conf)
    monkeypatch.setattr(cal, "_model_scores", lambda model_dir, images: scores)
    d, _ = _model(tmp_path)
    ds = Dataset(images=np.zeros((n, 48, 48), np.uint8), labels=np.array(LABELS)[y],
                 subjects=None, splits=np.array(["val"] * n),
                 paths=np.array([f"{i}.png" for i in range(n)]), name="fake")
    rec = cal.calibrate_model_dir(d, ds)
    assert rec["kept"] is kept
    text = write_model_card(d, results_dirs=[tmp_path]).read_text()
    calib = text.split("## Calibration")[1].split("## ")[0]
    assert (f"ECE {100 * rec['ece_before']:.2f} % at T = 1 -> {100 * rec['ece_after']:.2f} % "
            f"at T = {rec['fitted_temperature']:.3f}") in calib
    if kept:
        assert "so it was **kept**" in calib and "not kept" not in calib
        assert f"| Temperature | {rec['temperature']:.4g} |" in text
    else:
        assert "so it was **not kept**: T = 1" in calib
        assert "| Temperature | 1 (no temperature scaling) |" in text


def test_explicit_evaluations_and_bad_folder(tmp_path):
    from classicfer.exceptions import ModelError

    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    out, _, _ = _report(tmp_path, meta)
    text = write_model_card(d, evaluations=[out], out=tmp_path / "c.md").read_text()
    assert "| fer2013 | official | 400 |" in text
    with pytest.raises(ModelError, match="no metrics.json"):
        write_model_card(d, evaluations=[tmp_path])


def test_cli_card(tmp_path):
    d, _meta = _model(tmp_path)
    r = CliRunner().invoke(cli, ["card", str(d), "--results", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (d / CARD_FILE).is_file()
    r = CliRunner().invoke(cli, ["card", str(d), "--stdout", "--results", str(tmp_path)])
    assert r.exit_code == 0 and r.output.startswith("# Model card: fer-test")
    r = CliRunner().invoke(cli, ["card", str(tmp_path / "missing")])
    assert r.exit_code == 1
    assert "Error: " in r.output and "no such model folder" in r.output
    # A tampered model is refused.
    (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes() + b"x")
    r = CliRunner().invoke(cli, ["card", str(d)])
    assert r.exit_code == 1 and "checksum mismatch" in r.output


def test_reports_older_than_the_sidecar_are_flagged(tmp_path):
    import os

    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    _report(tmp_path, meta)
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    assert "Protocols: *official*: fit on the train split" in text
    assert "reports are older than `model.json`" not in text
    st = (d / "model.json").stat()
    os.utime(d / "model.json", (st.st_atime, st.st_mtime + 60))  # e.g. a temperature fitted later
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    assert "reports are older than `model.json`" in text


def test_cli_card_calibrate(tmp_path, tiny_fer_folder):
    d, _ = _model(tmp_path)
    r = CliRunner().invoke(cli, ["card", str(d), "--calibrate", str(tiny_fer_folder),
                                 "--results", str(tmp_path)])
    assert r.exit_code == 0, r.output
    meta = json.loads((d / "model.json").read_text())
    rec = meta["calibration"]
    assert rec["fitted_on"].endswith(":val")
    assert meta["temperature"] == (rec["fitted_temperature"] if rec["kept"] else 1.0)
    assert f"checked on the other {rec['n_check']}" in r.output
    assert ("kept (T = " if rec["kept"] else "not kept") in r.output
    assert f"T = {rec['fitted_temperature']:.3f} was fitted on" in (d / CARD_FILE).read_text()
    r = CliRunner().invoke(cli, ["card", str(d), "--calibrate", str(tmp_path / "nodata")])
    assert r.exit_code == 1 and "Error: " in r.output


def test_default_runtime_path_never_loads_the_68_point_model(tmp_path, monkeypatch):
    """The card says the default path is free of the iBUG 300-W (non-commercial) model."""
    import dlib

    from classicfer.face import _models

    loaded = []
    real = dlib.shape_predictor

    def spy(path):
        loaded.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(dlib, "shape_predictor", spy)
    _models.shape_predictor.cache_clear()
    d = make_linear_model(tmp_path / "m")
    try:
        r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(d)])
        assert r.exit_code == 0, r.output
        # the default (BlazeFace + its own eye points) loads no shape predictor at all
        assert all("68" not in name for name in loaded), loaded
        r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(d), "--landmarks", "5"])
        assert r.exit_code == 0, r.output
        assert loaded and all("68" not in name for name in loaded), loaded
        assert any("5_face_landmarks" in name for name in loaded)
        # The spy does see the 68-point model when it is asked for.
        r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(d), "--landmarks", "68"])
        assert r.exit_code == 0, r.output
        assert any("68" in name for name in loaded)
    finally:
        _models.shape_predictor.cache_clear()


def test_every_exported_model_gets_a_card(tmp_path):
    d = make_linear_model(tmp_path / "exported", name="exported")
    text = (d / CARD_FILE).read_text()
    assert text.startswith("# Model card: exported")
    assert _sections(text) == list(SECTIONS)


def _run_next_step(text, model_dir, dataset, out):
    """Run the card's ``classicfer evaluate`` command with MODEL_DIR and DATASET filled in."""
    import shlex

    cmd = re.search(r"Run `(classicfer evaluate [^`]+)`", text).group(1)
    args = [str(model_dir) if a == "MODEL_DIR" else str(dataset) if a == "DATASET" else a
            for a in shlex.split(cmd)[2:]]
    return cmd, CliRunner().invoke(cli, ["evaluate", *args, "--out", str(out), "-q",
                                         "--n-boot", "100", "--gallery", "0"])


def test_next_step_runs_for_a_model_fitted_on_unsplit_data(tmp_path, tiny_ckplus48,
                                                             tiny_fer_folder):
    """A model fitted on all of a dataset without splits is scored on other data."""
    m = tmp_path / "ck-model"
    r = CliRunner().invoke(cli, ["fit", "--data", str(tiny_ckplus48), "--features", "hog",
                                 "--classifier", "logreg", "--out", str(m), "-q"])
    assert r.exit_code == 0, r.output
    # The default protocol of this dataset refits per fold: it cannot score this model.
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(m), "--data", str(tiny_ckplus48),
                                 "--out", str(tmp_path / "r0"), "-q"])
    assert r.exit_code == 1 and "prefit" in r.output
    text = write_model_card(m, results_dirs=[tmp_path / "results"]).read_text()
    cmd, r = _run_next_step(text, m, tiny_fer_folder, tmp_path / "results")
    assert "--protocol cross-dataset --test-data DATASET" in cmd
    assert r.exit_code == 0, r.output
    assert "labelled data the model never saw" in text
    # the groups how-to gives the same command
    assert f"`{cmd} --groups groups.csv`" in text
    # ... and its report now shows up in the card
    text = write_model_card(m, results_dirs=[tmp_path / "results"]).read_text()
    assert re.search(r"\| \S+-to-fer2013 \| cross-dataset \| \d+ \|", text)


def test_next_step_scores_the_unseen_test_split(tmp_path, tiny_fer_folder):
    d, _ = _model(tmp_path)
    side = d / "model.json"
    meta = json.loads(side.read_text())
    meta["metrics"] = {"n_train": 28, "n_val": 14, "n_test": 14, "test_accuracy": 0.5}
    side.write_text(json.dumps(meta))
    text = write_model_card(d, results_dirs=[tmp_path / "results"]).read_text()
    cmd, r = _run_next_step(text, d, tiny_fer_folder, tmp_path / "results")
    assert cmd == "classicfer evaluate --model MODEL_DIR --data DATASET --protocol split"
    assert r.exit_code == 0, r.output
    assert "(split):" in r.output


@pytest.mark.parametrize("relative", [False, True])
def test_card_never_shows_an_absolute_data_path(tmp_path, tiny_ckplus48, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    data = "ckplus48" if relative else str(tiny_ckplus48)
    assert tiny_ckplus48 == tmp_path / "ckplus48"
    r = CliRunner().invoke(cli, ["fit", "--data", data, "--features", "hog", "--classifier",
                                 "logreg", "--out", "m", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "m" / "model.json").read_text())["training"]["data"] == data
    text = write_model_card(tmp_path / "m", results_dirs=[tmp_path / "results"]).read_text()
    assert str(tmp_path) not in text
    assert "Trained on: **ckplus48**" in text and "- data: ckplus48" in text
    assert "Posed expressions" in text  # the CK+ notes, found from the dataset's name
    # an absolute path anywhere in the training record is cut to its last part
    side = tmp_path / "m" / "model.json"
    meta = json.loads(side.read_text())
    meta["training"]["teachers"] = ["/home/someone/runs/teacher-1/best.pt", "runs/t2.pt"]
    meta["training"]["command"] = "train --data C:\\Users\\someone\\fer2013 --out ~/x/out"
    side.write_text(json.dumps(meta))
    text = write_model_card(tmp_path / "m", results_dirs=[tmp_path / "results"]).read_text()
    assert '["best.pt", "runs/t2.pt"]' in text
    assert "train --data fer2013 --out out" in text
    assert "someone" not in text and str(tmp_path) not in text


def test_a_new_model_folder_gets_a_card_without_reports_whatever_the_current_folder(
        tmp_path, monkeypatch):
    """Reports are never picked up from ./results or a results/ folder above the model."""
    name = "fer-test"
    monkeypatch.chdir(tmp_path)
    probe = make_linear_model(tmp_path / "probe", name=name)  # only to get a matching sha256
    _report(tmp_path, json.loads((probe / "model.json").read_text()))
    d = make_linear_model(tmp_path / "models" / name, name=name)
    for text in ((d / CARD_FILE).read_text(), write_model_card(d).read_text()):
        assert "No evaluation-harness report was found" in text
        assert "| fer2013 | official |" not in text
    assert find_evaluations(d, results_dirs=[]) == []


def test_cli_card_reads_the_reports_it_is_given(tmp_path, monkeypatch):
    d, meta = _model(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    _report(tmp_path, meta)  # tmp_path/results/fer2013/official/fer-test
    other, _, _ = _report(tmp_path / "elsewhere", meta, dataset="ckplus48",
                          protocol="subject-kfold", groups=False)
    monkeypatch.chdir(tmp_path)
    # default: the reports of this model under ./results
    r = CliRunner().invoke(cli, ["card", str(d), "--stdout"])
    assert r.exit_code == 0, r.output
    assert "| fer2013 | official | 400 |" in r.output and "ckplus48" not in r.output
    # --report: that folder only (./results is not read)
    r = CliRunner().invoke(cli, ["card", str(d), "--stdout", "--report", str(other)])
    assert r.exit_code == 0, r.output
    assert "| ckplus48 | subject-kfold | 400 |" in r.output and "| fer2013 |" not in r.output
    # both, explicitly
    r = CliRunner().invoke(cli, ["card", str(d), "--report", str(other), "--results", "results"])
    assert r.exit_code == 0, r.output
    text = (d / CARD_FILE).read_text()
    assert "| ckplus48 | subject-kfold |" in text and "| fer2013 | official |" in text
    r = CliRunner().invoke(cli, ["card", str(d), "--report", str(tmp_path / "models")])
    assert r.exit_code == 1 and "no metrics.json" in r.output and "Traceback" not in r.output


def test_generalisation_section_shows_the_models_row(tmp_path):
    model = make_linear_model(tmp_path / "models" / "lin", name="lin")
    gen = tmp_path / "gen"
    gen.mkdir()
    rec = {"accuracy": 0.5, "n": 10, "n_unscorable": 2,
           "recall": {"angry": 0.25, "happy": 0.9, "contempt": 0.0}}
    (gen / "matrix.json").write_text(json.dumps(
        {"command": ["python", "benchmarks/generalisation.py"],
         "matrix": {"lin": {"ckplus48": rec}, "other": {"ckplus48": dict(rec, accuracy=0.9)}}}))
    acc = {c: [0.5, 0.4, 0.3, 0.2, 0.1] for c in ("gaussian_noise", "jpeg")}
    acc["jpeg"] = [0.5, 0.45, 0.4, 0.3, 0.2]
    (gen / "robustness.json").write_text(json.dumps({"robustness": {"lin": {"ferplus": {
        "clean": 0.6, "accuracy": acc, "mean_s3": 0.35, "relative_s3": 0.35 / 0.6}}}}))
    r = CliRunner().invoke(cli, ["card", str(model), "--generalisation", str(gen), "--stdout"])
    assert r.exit_code == 0, r.output
    section = r.output.split("## Generalisation")[1].split("\n## ")[0]
    assert "| CK+48, all 981 images | 50.0 % | 10 | contempt 0.0 %, angry 25.0 %" in section
    assert "| 90.0 % | 10 |" not in section  # another model's row
    assert "hardest at severity 3: gaussian_noise 30.0 %" in section
    r = CliRunner().invoke(cli, ["card", str(model), "--generalisation", str(tmp_path),
                                 "--stdout"])
    assert r.exit_code == 1 and "no matrix.json" in r.output
    r = CliRunner().invoke(cli, ["card", str(model), "--stdout"])
    assert "Not measured" in r.output.split("## Generalisation")[1].split("\n## ")[0]
