"""``classicfer fit`` and ``classicfer grid`` through click's CliRunner."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from classicfer.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_fit_saves_a_model(runner, tiny_fer_folder, tmp_path):
    from classicfer.runtime._format import read_sidecar

    out = tmp_path / "model"
    r = runner.invoke(cli, ["fit", "--data", str(tiny_fer_folder), "--features", "hog",
                            "--classifier", "logreg", "--param", "C=0.5", "--out", str(out),
                            "--flip", "-q"])
    assert r.exit_code == 0, r.output
    meta, _ = read_sidecar(out)
    assert meta["features"]["spec"] == "hog"
    assert meta["training"]["n_train"] == 2 * 28  # Training images + their flips
    assert meta["metrics"]["split"] == "val" and meta["metrics"]["n"] == 14  # PublicTest
    # the reported accuracy is the saved model's, recomputed on the PublicTest images
    import numpy as np

    from classicfer.datasets import load_dataset
    from classicfer.runtime import load_model

    val = load_dataset(tiny_fer_folder).split("val")
    model = load_model(out)
    pred = np.asarray(model.labels)[model.predict_proba(val.images).argmax(1)]
    assert meta["metrics"]["accuracy"] == pytest.approx(np.mean(pred == val.labels))
    assert meta["metrics"]["accuracy"] > 3 / 7  # the classes are learnable: chance is 1/7
    assert len(meta["labels"]) == 7
    # a second fit with other classifier parameters reuses the cached features
    r = runner.invoke(cli, ["fit", "--data", str(tiny_fer_folder), "--features", "hog",
                            "--classifier", "logreg", "--param", "C=1", "--out",
                            str(tmp_path / "m2"), "--flip"])
    assert r.exit_code == 0, r.output
    assert "features from cache" in r.output


def _assert_refused(r, code, message):
    """Exit 2 is click's usage error (usage line + message), exit 1 a ClassicferError the CLI
    reports as one ``Error:`` line.
    """
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == code, r.output
    assert message in r.output
    if code == 2:
        assert r.output.startswith("Usage: ")
    else:
        assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args,code,message", [
    (["--features", "hgo", "--classifier", "logreg"], 2,
     ("Error: Invalid value for --features: unknown feature 'hgo'; choose from hog, lbp, "
      "landmarks, embedding")),
    (["--features", "hog", "--classifier", "svn"], 1,
     "Error: unknown classifier 'svn'; choose from linear-svm, svm, xgboost, logreg, knn"),
    (["--features", "hog", "--classifier", "logreg", "--param", "C=abc"], 1,
     "Error: parameter 'classifier__C'='abc' is invalid"),
    (["--features", "hog", "--classifier", "logreg", "--param", "Cee=1"], 1,
     "Error: unknown parameter 'Cee'"),
    (["--features", "hog", "--classifier", "logreg", "--param", "C"], 2,
     "Error: Invalid value for --param: expected KEY=VALUE, got 'C'"),
])
def test_fit_bad_input(runner, tiny_fer_folder, tmp_path, args, code, message):
    r = runner.invoke(cli, ["fit", "--data", str(tiny_fer_folder), "--out",
                            str(tmp_path / "m"), *args])
    _assert_refused(r, code, message)


def test_fit_refuses_one_class(runner, tmp_path):
    import shutil

    from conftest import make_tiny_fer_folder

    root = make_tiny_fer_folder(tmp_path / "fer")
    for part in ("train", "test"):
        for d in (root / part).iterdir():
            if d.name != "happy":
                shutil.rmtree(d)
    r = runner.invoke(cli, ["fit", "--data", str(root), "--features", "hog", "--classifier",
                            "logreg", "--out", str(tmp_path / "m")])
    assert r.exit_code == 1
    assert "Error: the training set has one class ('happy')" in r.output


@pytest.mark.slow  # eight models x three folds: about 20 s
def test_grid_writes_every_combination(runner, tiny_ckplus48, tmp_path):
    out = tmp_path / "res"
    r = runner.invoke(cli, ["grid", "--data", str(tiny_ckplus48), "--features", "hog,hog+lbp",
                            "--classifier", "logreg,knn", "--param", "C=0.1,1",
                            "--param", "n_neighbors=1,3", "--cv", "group:3", "--out", str(out),
                            "-q"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((out / "summary.csv").open()))
    # 2 feature specs x (logreg: 2 C values + knn: 2 n_neighbors values)
    assert len(rows) == 8
    assert {r["classifier"] for r in rows} == {"logreg", "knn"}
    assert sorted(int(r["rank_test_accuracy"]) for r in rows) == list(range(1, 9))
    folds = list(csv.DictReader((out / "folds.csv").open()))
    assert len(folds) == 8 * 3
    # each mean is the mean of its three folds; rank 1 has the best mean; all beat chance (1/7)
    key = ("features", "classifier", "params")
    for row in rows:
        accs = [float(f["test_accuracy"]) for f in folds
                if [f[k] for k in key] == [row[k] for k in key]]
        assert len(accs) == 3
        assert float(row["mean_test_accuracy"]) == pytest.approx(sum(accs) / 3)
    means = sorted((float(r["mean_test_accuracy"]) for r in rows), reverse=True)
    best = next(r for r in rows if r["rank_test_accuracy"] == "1")
    assert float(best["mean_test_accuracy"]) == means[0]
    assert means[-1] > 0.5
    run = json.loads((out / "run.json").read_text())
    assert "StratifiedGroupKFold" in run["cv"] and run["seed"] == 0
    assert "scikit-learn" in run["versions"]
    assert "| Rank |" in (out / "summary.md").read_text()


def test_grid_subject_folds_keep_subjects_apart(tiny_ckplus48):
    import numpy as np

    from classicfer.datasets import load_dataset
    from classicfer.evaluation import grid_cv

    ds = load_dataset(tiny_ckplus48)
    folds, _ = grid_cv("group:3", labels=ds.labels, groups=ds.subjects)
    for tr, te in folds:
        assert not set(ds.subjects[tr]) & set(ds.subjects[te])
    assert np.sort(np.concatenate([te for _, te in folds])).tolist() == list(range(len(ds)))


def test_grid_official_split_and_flip(runner, tiny_fer_folder, tmp_path):
    out = tmp_path / "res"
    r = runner.invoke(cli, ["grid", "--data", str(tiny_fer_folder), "--features", "lbp",
                            "--classifier", "logreg", "--cv", "official", "--flip",
                            "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    run = json.loads((out / "run.json").read_text())
    assert run["cv"].startswith("official") and run["flip"] is True


@pytest.mark.parametrize("args,code,message", [
    (["--features", "hog,nope", "--classifier", "logreg"], 2,
     "Error: Invalid value for --features: unknown feature 'nope'"),
    (["--features", "hog", "--classifier", "logreg,boost"], 2,
     "Error: Invalid value for --classifier: unknown classifier 'boost'"),
    (["--features", "hog", "--classifier", "logreg", "--param", "gamma=1,2"], 1,
     "Error: unknown parameter 'gamma'"),
    (["--features", "hog", "--classifier", "logreg", "--cv", "many"], 1,
     "Error: --cv 'many': expected auto, official, group, group:K or an integer"),
])
def test_grid_bad_input(runner, tiny_ckplus48, tmp_path, args, code, message):
    r = runner.invoke(cli, ["grid", "--data", str(tiny_ckplus48), "--out", str(tmp_path / "r"),
                            "-q", *args])
    _assert_refused(r, code, message)


def test_help(runner):
    for cmd in ("fit", "grid"):
        r = runner.invoke(cli, [cmd, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output


def test_fit_help_lists_every_registered_feature(runner):
    from classicfer.features import FEATURES

    r = runner.invoke(cli, ["fit", "--help"])
    assert r.exit_code == 0
    words = set(r.output.replace(",", " ").replace("(", " ").replace(")", " ").split())
    assert set(FEATURES) <= words, sorted(set(FEATURES) - words)


def _data_args(command, data, tmp_path):
    extra = {"fit": ["--out", str(tmp_path / "m")],
             "evaluate": ["--folds", "2", "--out", str(tmp_path / "r")],
             "grid": ["--cv", "group:3", "--out", str(tmp_path / "r")]}[command]
    return [command, "--data", str(data), "--features", "hog", "-q", *extra]


@pytest.mark.parametrize("command", ["fit", "evaluate", "grid"])
@pytest.mark.parametrize("classifier,param,message", [
    ("logreg", "pca=5000", "Error: --param pca=5000 does not suit this data: n_components=5000"),
    ("knn", "n_neighbors=5000", "Error: --param n_neighbors=5000 does not suit this data"),
    ("logreg", "pixels_per_cell=100",
     "Error: fitting failed with --param pixels_per_cell=100: crop is 48x48"),
])
def test_param_the_data_cannot_take_is_one_error_line(runner, tiny_ckplus48, tmp_path, command,
                                                      classifier, param, message):
    r = runner.invoke(cli, [*_data_args(command, tiny_ckplus48, tmp_path),
                            "--classifier", classifier, "--param", param])
    assert isinstance(r.exception, SystemExit), repr(r.exception)  # not the estimator's error
    assert r.exit_code == 1
    assert message in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_fit_refuses_a_non_empty_out_folder_without_force(runner, tiny_fer_folder, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["fit", "--data", str(tiny_fer_folder), "--features", "hog", "--classifier", "logreg",
            "--out", str(out), "-q"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 1
    assert f"Error: {out}: folder exists and is not empty; choose another --out or pass --force" \
        in r.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    r = runner.invoke(cli, [*args, "--force"])
    assert r.exit_code == 0, r.output
    assert (out / "model.json").is_file() and (out / "model.onnx").is_file()

