"""classicfer compare: one table per dataset/protocol, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classicfer.datasets import load_dataset
from classicfer.evaluation import compare_markdown, evaluate, report_dir, write_report


def _flatten(X):
    """Pixels at 1/4 resolution (12x12 for 48x48 crops): small, fast, still learnable."""
    X = np.asarray(X, dtype=np.float32)[:, ::4, ::4]
    return X.reshape(len(X), -1) / 255.0


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from conftest import make_tiny_ckplus48, make_tiny_fer_folder

    base = tmp_path_factory.mktemp("compare")
    root = base / "results"
    fer = load_dataset(make_tiny_fer_folder(base / "fer2013"))
    ck = load_dataset(make_tiny_ckplus48(base / "ckplus48"))
    runs = [
        (fer, "official", make_pipeline(FunctionTransformer(_flatten),
                                        LogisticRegression(C=1e-7, max_iter=50)), "weak"),
        (fer, "official", make_pipeline(FunctionTransformer(_flatten),
                                        LogisticRegression(max_iter=300)), "logreg"),
        (ck, "subject-kfold", make_pipeline(FunctionTransformer(_flatten), LinearSVC()), "svm"),
    ]
    for ds, proto, est, name in runs:
        res = evaluate(est, ds, proto, folds=3, name=name)
        write_report(res, ds, report_dir(root, res), n_boot=100, gallery=4)
    return root


def test_compare_one_table_per_dataset_protocol_and_best_marked(results):
    md = compare_markdown(results, root_label="results")
    assert md.count("\n## ") == 2
    assert "## ckplus48 / subject-kfold" in md and "## fer2013 / official" in md
    fer_table = md.split("## fer2013 / official")[1]
    rows = [line for line in fer_table.splitlines() if line.startswith("| [")]
    assert [r.split("]")[0][3:] for r in rows] == ["logreg", "weak"]  # best first
    assert rows[0].split(" | ")[1].startswith("**")  # best accuracy bold
    assert not rows[1].split(" | ")[1].startswith("**")
    header = fer_table.splitlines()[4]
    for col in ("Accuracy %", "Macro-F1 %", "F1 happy", "F1 neutral", "ms / image"):
        assert col in header
    ck_header = md.split("## ckplus48 / subject-kfold")[1].splitlines()[4]
    assert "Fold mean ± std" in ck_header and "F1 contempt" in ck_header


def test_compare_is_deterministic(results):
    from click.testing import CliRunner

    from classicfer.cli import cli

    first = compare_markdown(results, root_label="results")
    assert compare_markdown(results, root_label="results") == first
    r = CliRunner().invoke(cli, ["compare", str(results)])
    assert r.exit_code == 0, r.output
    written = (results / "README.md").read_bytes()
    r = CliRunner().invoke(cli, ["compare", str(results)])
    assert (results / "README.md").read_bytes() == written
    r = CliRunner().invoke(cli, ["compare", str(results), "--check"])
    assert r.exit_code == 0 and "up to date" in r.output
    (results / "README.md").write_text(written.decode() + "edited by hand\n")
    r = CliRunner().invoke(cli, ["compare", str(results), "--check"])
    assert r.exit_code == 1 and "out of date" in r.output


def test_compare_missing_folder_is_a_clean_error(tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "none")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "no such results" in r.output
