"""Per-group metrics on a synthetic fixture with a known gap; groups CSV matching; plot."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from classicfer.datasets._base import Dataset
from classicfer.evaluation.fairness import (
    group_metrics,
    group_metrics_markdown,
    load_groups_csv,
    plot_group_metrics,
)
from classicfer.exceptions import DataError

LABELS = ["angry", "happy", "sad"]


def known_gap_fixture():
    """Group A: 200 images, 180 right (90 %). Group B: 200 images, 120 right (60 %).
    Group C: 10 images, all right (small). Errors in B are all 'happy' misread as 'sad'
    and 'angry' misread as 'sad', so happy's TPR gap is known exactly.
    """
    y_true, y_pred, grp = [], [], []
    # A: per class (angry 70, happy 70, sad 60); 20 errors: 10 angry->sad, 10 happy->sad.
    for lab, n, wrong in (("angry", 70, 10), ("happy", 70, 10), ("sad", 60, 0)):
        y_true += [lab] * n
        y_pred += ["sad"] * wrong + [lab] * (n - wrong)
        grp += ["A"] * n
    # B: 80 errors: 40 angry->sad, 40 happy->sad.
    for lab, n, wrong in (("angry", 70, 40), ("happy", 70, 40), ("sad", 60, 0)):
        y_true += [lab] * n
        y_pred += ["sad"] * wrong + [lab] * (n - wrong)
        grp += ["B"] * n
    y_true += ["happy"] * 10
    y_pred += ["happy"] * 10
    grp += ["C"] * 10
    return np.array(y_true), np.array(y_pred), np.array(grp)


def test_known_gap_is_recovered():
    y_true, y_pred, grp = known_gap_fixture()
    res = group_metrics(y_true, y_pred, {"site": grp}, LABELS, min_size=30, n_boot=500)
    a = res["attributes"]["site"]
    ga, gb, gc = (a["groups"][g] for g in "ABC")
    assert (ga["n"], gb["n"], gc["n"]) == (200, 200, 10)
    assert ga["accuracy"] == pytest.approx(0.9)
    assert gb["accuracy"] == pytest.approx(0.6)
    assert a["worst_group"] == "B"
    # C (small, 100 %) is excluded from the comparison: the gap is A - B.
    assert a["compared"] == ["A", "B"]
    assert a["accuracy_gap"] == pytest.approx(0.3)
    # Equal opportunity: happy TPR is 60/70 in A, 30/70 in B; sad is 1.0 in both.
    assert ga["tpr"]["happy"] == pytest.approx(60 / 70)
    assert gb["tpr"]["happy"] == pytest.approx(30 / 70)
    assert a["tpr_gap"]["happy"] == pytest.approx(30 / 70)
    assert a["tpr_gap"]["sad"] == pytest.approx(0.0)
    assert a["max_tpr_gap"]["class"] in ("angry", "happy")
    assert a["max_tpr_gap"]["gap"] == pytest.approx(30 / 70)
    # Small-group warning names C.
    assert gc["small"] and not ga["small"]
    assert any("site=C" in w and "10 images" in w for w in a["warnings"])
    # Macro-F1 agrees with sklearn on each group.
    for g in "AB":
        m = grp == g
        assert a["groups"][g]["macro_f1"] == pytest.approx(
            f1_score(y_true[m], y_pred[m], average="macro"))
    assert a["macro_f1_gap"] == pytest.approx(ga["macro_f1"] - gb["macro_f1"])
    # Intervals bracket the estimate and separate A from B (a 30-point gap at n=200).
    for g in (ga, gb):
        lo, hi = g["accuracy_ci"]
        assert lo <= g["accuracy"] <= hi
        assert hi - lo < 0.2
    assert gb["accuracy_ci"][1] < ga["accuracy_ci"][0]
    # Overall figures.
    assert res["overall"]["n"] == 410
    assert res["overall"]["accuracy"] == pytest.approx((180 + 120 + 10) / 410)


def test_bootstrap_is_seeded_and_indices_accepted():
    y_true, y_pred, grp = known_gap_fixture()
    r1 = group_metrics(y_true, y_pred, grp, LABELS, n_boot=200, seed=3)
    r2 = group_metrics(y_true, y_pred, grp, LABELS, n_boot=200, seed=3)
    assert r1 == r2
    idx = {lab: i for i, lab in enumerate(LABELS)}
    r3 = group_metrics(np.array([idx[v] for v in y_true]), np.array([idx[v] for v in y_pred]),
                       grp, LABELS, n_boot=200, seed=3)
    assert r3["attributes"]["group"]["groups"] == r1["attributes"]["group"]["groups"]


def test_no_gap_when_groups_are_identical():
    y_true, y_pred, _ = known_gap_fixture()
    sel = slice(0, 200)  # group A only, split in two identical halves
    yt = np.concatenate([y_true[sel], y_true[sel]])
    yp = np.concatenate([y_pred[sel], y_pred[sel]])
    g = np.array(["x"] * 200 + ["y"] * 200)
    a = group_metrics(yt, yp, {"g": g}, LABELS, n_boot=0)["attributes"]["g"]
    assert a["accuracy_gap"] == 0 and a["macro_f1_gap"] == 0
    assert all(v == 0 for v in a["tpr_gap"].values())
    assert a["groups"]["x"]["accuracy_ci"] is None


def test_all_small_groups_warn_that_gaps_are_unreliable():
    y_true, y_pred, grp = known_gap_fixture()
    a = group_metrics(y_true, y_pred, {"site": grp}, LABELS, min_size=500,
                      n_boot=0)["attributes"]["site"]
    assert a["compared"] == ["A", "B", "C"]
    assert any("unreliable" in w and "fewer than two groups" in w for w in a["warnings"])


def test_bad_inputs():
    with pytest.raises(DataError, match="not in"):
        group_metrics(["angry", "joy"], ["angry", "angry"], ["a", "b"], LABELS)
    with pytest.raises(DataError, match="values for"):
        group_metrics(["angry"], ["angry"], {"g": ["a", "b"]}, LABELS)


def test_markdown_and_plot(tmp_path):
    y_true, y_pred, grp = known_gap_fixture()
    res = group_metrics(y_true, y_pred, {"site": grp, "half": np.where(
        np.arange(len(grp)) % 2, "odd", "even")}, LABELS, n_boot=100)
    md = group_metrics_markdown(res)
    assert "| B | 200 | 60.0 [" in md
    assert "C (small)" in md and "worst group: B" in md
    out = plot_group_metrics(res, tmp_path / "groups.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- CSV


def _dataset(root):
    paths = [f"{root}/train/happy/Training_1.jpg", f"{root}/train/sad/Training_2.jpg",
             f"{root}/test/sad/PublicTest_3.jpg"]
    return Dataset(images=np.zeros((3, 48, 48), np.uint8),
                   labels=np.array(["happy", "sad", "sad"]), subjects=None,
                   splits=np.array(["train", "train", "val"]), paths=np.array(paths),
                   name="tiny", root=str(root))


def test_load_groups_csv_matches_full_relative_basename_and_id(tmp_path):
    ds = _dataset(tmp_path)
    csv = tmp_path / "groups.csv"
    csv.write_text("image,gender,age_band\n"
                   f"{tmp_path}/train/happy/Training_1.jpg,f,18-30\n"
                   "train/sad/Training_2.jpg,m,31-50\n"
                   "PublicTest_3,f,51+\n"
                   "Training_999.jpg,m,18-30\n")  # not in the dataset: ignored
    g = load_groups_csv(csv, ds)
    assert list(g) == ["gender", "age_band"]
    assert g["gender"].tolist() == ["f", "m", "f"]
    assert g["age_band"].tolist() == ["18-30", "31-50", "51+"]


def test_load_groups_csv_errors(tmp_path):
    ds = _dataset(tmp_path)
    csv = tmp_path / "g.csv"
    csv.write_text("path,gender\nTraining_1.jpg,f\n")
    with pytest.raises(DataError, match="2 of 3 dataset images have no row"):
        load_groups_csv(csv, ds)
    g = load_groups_csv(csv, ds, allow_missing=True)
    assert g["gender"].tolist() == ["f", "", ""]
    csv.write_text("path,gender\nnope.jpg,f\n")
    with pytest.raises(DataError, match="none of its 1 keys matches"):
        load_groups_csv(csv, ds)
    csv.write_text("path\nTraining_1.jpg\n")
    with pytest.raises(DataError, match="at least one attribute"):
        load_groups_csv(csv, ds)
    csv.write_text("path,gender\nTraining_1.jpg,f\nTraining_1.jpg,m\n")
    with pytest.raises(DataError, match="appears twice"):
        load_groups_csv(csv, ds)
    with pytest.raises(DataError, match="not found"):
        load_groups_csv(tmp_path / "missing.csv", ds)
    csv.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_groups_csv(csv, ds)


@pytest.mark.parametrize("text, message", [
    ("path,gender\nTraining_1.jpg,f,extra\n", r"g.csv:2: 3 fields, header has 2"),
    ("path,gender\n ,f\n", r"g.csv:2: empty 'path'"),
    ("path,gender\nTraining_1.jpg,f\nTraining_1,m\n",
     r"g.csv:3: .*Training_1.jpg gets gender='m' but an earlier row gave 'f'"),
    ("path,gender\n\n", "header but no rows"),
    ("path,gender,gender\nTraining_1.jpg,f,f\n", "duplicate column names"),
])
def test_load_groups_csv_row_errors_name_the_line(tmp_path, text, message):
    ds = _dataset(tmp_path)
    csv = tmp_path / "g.csv"
    csv.write_text(text)
    with pytest.raises(DataError, match=message):
        load_groups_csv(csv, ds, allow_missing=True)


def test_load_groups_csv_ambiguous_basename(tmp_path):
    ds = _dataset(tmp_path)
    ds.paths[1] = f"{tmp_path}/test/sad/Training_1.jpg"  # two files named Training_1.jpg
    csv = tmp_path / "g.csv"
    csv.write_text("path,gender\nTraining_1.jpg,f\n")
    with pytest.raises(DataError, match="matches 2 dataset images"):
        load_groups_csv(csv, ds, allow_missing=True)


def test_predictions_outside_labels_count_as_errors():
    y_true = np.array(["angry", "happy", "sad", "sad"] * 10)
    y_pred = np.array(["angry", "neutral", "sad", "happy"] * 10)  # neutral is not a label
    g = np.array(["a"] * 20 + ["b"] * 20)
    r = group_metrics(y_true, y_pred, {"g": g}, LABELS, min_size=5, n_boot=50)
    assert r["overall"]["accuracy"] == pytest.approx(0.5)
    assert r["overall"]["tpr"]["happy"] == 0.0
    assert r["overall"]["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0))
    with pytest.raises(DataError, match="not in"):
        group_metrics(y_pred, y_true, g, LABELS)  # unknown *true* labels are an error


@pytest.mark.slow
def test_evaluate_cli_writes_groups_report(tiny_ckplus48, tmp_path):
    """The harness calls load_groups_csv / group_metrics / plot_group_metrics."""
    import json
    import os

    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.datasets import load_dataset

    ds = load_dataset(tiny_ckplus48)
    csv = tmp_path / "groups.csv"
    rows = ["path,block"] + [f"{os.path.relpath(p, ds.root)},{'a' if s < 'S5' else 'b'}"
                             for p, s in zip(ds.paths, ds.subjects, strict=True)]
    csv.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_ckplus48), "--protocol",
                                 "subject-kfold", "--folds", "3", "--features", "hog",
                                 "--classifier", "linear-svm", "--groups", str(csv), "--out",
                                 str(tmp_path / "res"), "--gallery", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    (gj,) = (tmp_path / "res").glob("*/subject-kfold/*/groups.json")
    g = json.loads(gj.read_text())
    assert set(g["attributes"]["block"]["groups"]) <= {"a", "b"}
    assert sum(v["n"] for v in g["attributes"]["block"]["groups"].values()) == len(ds)
    assert (gj.parent / "groups.png").is_file()
    csv.write_text("path,block\nnope.png,a\n")
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_ckplus48), "--protocol",
                                 "subject-kfold", "--folds", "3", "--features", "hog",
                                 "--classifier", "linear-svm", "--groups", str(csv), "--out",
                                 str(tmp_path / "res2"), "--quiet"])
    assert r.exit_code == 1 and "Error: " in r.output and "matches an image" in r.output
