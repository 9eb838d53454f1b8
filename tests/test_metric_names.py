"""One set of metric names (accuracy, balanced_accuracy, macro_f1, per_class) and one run
record across evaluate, grid, fit and the sidecars; older sidecars still read.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.datasets import load_dataset
from classicfer.evaluation import METRICS, run_grid, split_metrics, write_grid_results


def _check_run_record(run):
    assert len(run["dataset"]["manifest_sha256"]) == 64
    assert {"commit", "dirty"} <= set(run["git"])
    assert {"python", "numpy", "scikit-learn"} <= set(run["versions"])
    assert isinstance(run["command"], list)


def test_grid_uses_the_shared_names_and_run_record(tiny_ckplus48, tmp_path):
    ds = load_dataset(tiny_ckplus48)
    summary, folds, info = run_grid(ds.images, ds.labels, features=["hog"],
                                    classifiers=["logreg"], params={"C": [0.1, 1.0]},
                                    cv="group:3", groups=ds.subjects)
    for m in METRICS:
        assert all(0 <= r[f"mean_test_{m}"] <= 1 and f"std_test_{m}" in r for r in summary)
        assert all(f"test_{m}" in f for f in folds)
    assert not any("f1_macro" in k for r in summary + folds for k in r)
    out = write_grid_results(tmp_path / "g", summary, folds, {**info, "seed": 0}, dataset=ds)
    run = json.loads((out / "run.json").read_text())
    _check_run_record(run)
    assert run["dataset"]["name"] == "ckplus48" and run["cv"] == info["cv"]
    assert "| Macro-F1 |" in (out / "summary.md").read_text()


def test_fit_stores_the_shared_names_and_run_record(tiny_fer_folder, tmp_path):
    from classicfer.runtime._format import read_sidecar

    out = tmp_path / "m"
    r = CliRunner().invoke(cli, ["fit", "--data", str(tiny_fer_folder), "--features", "hog",
                                 "--classifier", "logreg", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    meta, _ = read_sidecar(out)
    m = meta["metrics"]
    assert set(m) == {"split", "n", *METRICS, "per_class"} and m["split"] == "val"
    assert m["macro_f1"] == pytest.approx(np.mean([v["f1"] for v in m["per_class"].values()]))
    run = meta["training"]["run"]
    _check_run_record(run)
    assert "root" not in run["dataset"]  # no folder of the training machine in the model


def test_split_metrics_is_scikit_learns_default_macro_f1():
    from sklearn.metrics import f1_score

    y = np.array(["happy", "sad", "sad", "angry"])
    p = np.array(["happy", "sad", "happy", "surprise"])
    m = split_metrics(y, p, split="test")
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert list(m["per_class"]) == ["angry", "happy", "sad", "surprise"]  # canonical order
    assert (m["split"], m["n"], m["accuracy"]) == ("test", 4, 0.5)


@pytest.mark.parametrize("metrics, accuracy", [
    ({"accuracy": 0.5, "test_accuracy": 0.9}, 0.5),  # the current name wins
    ({"test_accuracy": 0.6}, 0.6),  # train-cnn sidecars before the names were shared
    ({"privatetest_accuracy": 0.71, "privatetest_macro_f1": 0.7}, 0.71),  # the bundled CNN
    ({"val_accuracy": 0.8}, 0.0),  # not a figure of held-out rows
    ({"accuracy": "high"}, 0.0),
    ([], 0.0),
])
def test_the_headline_metric_is_the_recorded_accuracy(metrics, accuracy):
    from classicfer.runtime._model import _headline_metric

    assert _headline_metric(metrics) == accuracy


def test_older_sidecar_metrics_read_under_the_current_names():
    from classicfer.runtime._model import sidecar_metrics

    old = {"privatetest_accuracy": 0.71, "privatetest_macro_f1": 0.70,
           "privatetest_per_class_f1": {"happy": 0.9, "sad": 0.5}, "publictest_accuracy": 0.69}
    m = sidecar_metrics(old)
    assert (m["split"], m["accuracy"], m["macro_f1"]) == ("test", 0.71, 0.70)
    assert m["per_class"] == {"happy": {"f1": 0.9}, "sad": {"f1": 0.5}}
    assert m["publictest_accuracy"] == 0.69  # other keys kept
    fit = sidecar_metrics({"split": "val", "n": 14, "accuracy": 0.9, "f1_macro": 0.8})
    assert (fit["split"], fit["macro_f1"]) == ("val", 0.8)
    from classicfer.runtime import bundled_models_dir

    bundled = json.loads((bundled_models_dir() / "fer2013-cnn" / "model.json").read_text())
    assert sidecar_metrics(bundled["metrics"])["accuracy"] == bundled["metrics"][
        "privatetest_accuracy"]
