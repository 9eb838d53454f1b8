"""The evaluation harness: metrics, protocols, model kinds, report folder, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC

from classicfer.datasets import Dataset, load_dataset
from classicfer.evaluation import (
    REPORT_FILES,
    PrefitClassifier,
    applicable_protocols,
    bootstrap_accuracy_ci,
    classification_metrics,
    evaluate,
    read_predictions,
    subject_kfold,
    top_confusions,
    write_report,
)
from classicfer.exceptions import ConfigError, DataError, ModelError


def _flatten(X):
    """Pixels at 1/4 resolution (12x12 for 48x48 crops): small, fast, still learnable."""
    X = np.asarray(X, dtype=np.float32)[:, ::4, ::4]
    return X.reshape(len(X), -1) / 255.0


def pixel_model(clf=None):
    """Flattened pixels -> scaler -> classifier (stands in for a classicfer pipeline)."""
    return make_pipeline(FunctionTransformer(_flatten), StandardScaler(),
                         clf if clf is not None else LogisticRegression(max_iter=300))


@pytest.fixture
def fer(tiny_fer_folder):
    return load_dataset(tiny_fer_folder)


@pytest.fixture
def ck(tiny_ckplus48):
    return load_dataset(tiny_ckplus48)


# --------------------------------------------------------------------------- metrics
def test_metrics_agree_with_sklearn():
    from sklearn import metrics as skm

    y_true = np.array(["a", "a", "a", "b", "b", "c", "c", "c", "c", "a"])
    y_pred = np.array(["a", "b", "a", "b", "c", "c", "c", "a", "c", "a"])
    labels = ["a", "b", "c"]
    m = classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred)) == 0.7
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 3 / 4) / 3)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels)
    for i, c in enumerate(labels):
        assert m["per_class"][c]["precision"] == pytest.approx(p[i])
        assert m["per_class"][c]["recall"] == pytest.approx(r[i])
        assert m["per_class"][c]["f1"] == pytest.approx(f[i])
        assert m["per_class"][c]["support"] == s[i]
    assert m["confusion"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert np.allclose(m["confusion_normalized"],
                       skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="true"))


def test_absent_class_scores_zero_and_empty_row_stays_zero():
    m = classification_metrics(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_normalized"][2] == [0.0, 0.0, 0.0]


def test_bootstrap_interval_is_seeded_and_brackets_accuracy():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400).astype(str)
    p = np.where(rng.random(400) < 0.7, y, "x")
    acc = np.mean(y == p)
    lo, hi = bootstrap_accuracy_ci(y, p, seed=3)
    assert (lo, hi) == bootstrap_accuracy_ci(y, p, seed=3)
    assert lo < acc < hi and hi - lo < 0.12
    # Clustered resampling (few large groups whose accuracies differ) gives a wider
    # interval than resampling images.
    groups = np.repeat(np.arange(8), len(y) // 8)
    pg = np.where(rng.random(400) < np.where(groups < 4, 0.45, 0.95), y, "x")
    acc_g = np.mean(y == pg)
    glo, ghi = bootstrap_accuracy_ci(y, pg, groups=groups, seed=3)
    ilo, ihi = bootstrap_accuracy_ci(y, pg, seed=3)
    assert glo <= acc_g <= ghi and ilo <= acc_g <= ihi
    assert ghi - glo > 1.5 * (ihi - ilo)


def test_top_confusions_order_and_rates():
    cm = [[8, 2, 0], [5, 5, 0], [0, 1, 9]]
    top = top_confusions(cm, ["a", "b", "c"], k=2)
    assert [(t["true"], t["pred"]) for t in top] == [("b", "a"), ("a", "b")]
    assert top[0]["rate"] == pytest.approx(0.5) and top[0]["count"] == 5


# --------------------------------------------------------------------------- protocols
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_grouped_folds_never_share_a_subject(seed):
    rng = np.random.default_rng(seed)
    subjects = rng.integers(0, 40, 600).astype(str)
    labels = rng.integers(0, 5, 600).astype(str)
    folds, desc = subject_kfold(labels, subjects, n_splits=10, seed=seed)
    assert len(folds) == 10 and "StratifiedGroupKFold" in desc
    seen = []
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
        seen.extend(te)
    assert sorted(seen) == list(range(600))  # every row tested exactly once


def test_subject_kfold_run_keeps_subjects_in_one_fold(ck):
    res = evaluate(pixel_model(LinearSVC()), ck, "subject-kfold", folds=3)
    assert len(res.folds) == 3 and len(res.y_true) == len(ck)
    fold_of = {}
    for s, f in zip(res.subjects, res.fold, strict=True):
        assert fold_of.setdefault(s, f) == f, f"subject {s} in two test folds"
    for f in res.folds:
        assert f["n_train"] + f["n_test"] == len(ck)
    # Same seed, same folds, same predictions.
    again = evaluate(pixel_model(LinearSVC()), ck, "subject-kfold", folds=3)
    assert np.array_equal(res.fold, again.fold) and np.array_equal(res.y_pred, again.y_pred)


def test_official_fits_train_and_reports_private_test(fer):
    res = evaluate(pixel_model(), fer, "official", name="pix")
    assert res.protocol == "official" and len(res.folds) == 1
    assert res.folds[0]["n_train"] == (fer.splits == "train").sum()
    assert set(fer.splits[res.rows]) == {"test"}
    assert res.score_kind == "probability"
    assert np.allclose(res.proba.sum(axis=1), 1)
    m = res.metrics(n_boot=200)
    assert m["accuracy"] > 1 / 7 + 0.2  # the tiny fixture's classes are learnable


def test_loso_one_subject_per_fold(ck):
    res = evaluate(pixel_model(LinearSVC()), ck, "loso")
    assert len(res.folds) == len(set(ck.subjects))
    for k in range(len(res.folds)):
        assert len(set(res.subjects[res.fold == k])) == 1


def test_grid_is_selected_on_val(fer):
    from classicfer.evaluation import ModelSpec

    spec = ModelSpec(pixel_model(), "grid", "estimator", False,
                     grid={"logisticregression__C": [1e-6, 1.0]})
    res = evaluate(spec, fer, "official")
    assert [s["params"]["logisticregression__C"] for s in res.selection] == [1e-6, 1.0]
    best = max(res.selection, key=lambda s: s["val_accuracy"])
    assert res.selected_params == best["params"]
    with pytest.raises(ConfigError, match="only searched by --protocol official"):
        evaluate(spec, fer, "split")


def test_protocol_that_does_not_fit_names_those_that_do(fer, ck):
    with pytest.raises(DataError, match=r"needs subject ids, and fer2013 has none; protocols "
                                        r"that fit fer2013: official, split, cross-dataset"):
        evaluate(pixel_model(), fer, "subject-kfold")
    with pytest.raises(DataError, match=r"'official' needs train, val and test splits.*"
                                        r"protocols that fit ckplus48: subject-kfold, loso"):
        evaluate(pixel_model(), ck, "official", folds=3)
    with pytest.raises(DataError, match="needs at least 50 subjects"):
        evaluate(pixel_model(), ck, "subject-kfold", folds=50)
    assert applicable_protocols(fer) == ["official", "split", "cross-dataset"]


# --------------------------------------------------------------------------- model kinds
def test_prefit_estimator_is_not_refitted(fer):
    train = fer.split("train")
    est = pixel_model().fit(train.images, train.labels)
    coef = est[-1].coef_.copy()
    res = evaluate(est, fer, "official")
    assert res.folds[0]["fit_time"] is None and res.folds[0]["n_train"] == 0
    assert np.array_equal(est[-1].coef_, coef)
    assert np.array_equal(res.y_pred, est.predict(fer.images[res.rows]).astype(str))
    assert len(evaluate(est, fer, "split").y_pred) == (fer.splits == "test").sum()
    with pytest.raises(ConfigError, match="already trained.*cross-dataset"):
        evaluate(est, _with_subjects(fer), "subject-kfold", folds=2)


def _with_subjects(ds):
    out = ds.subset(np.arange(len(ds)))
    out.subjects = np.array([f"S{i % 6}" for i in range(len(ds))])
    return out


def test_deployed_model_goes_through_the_same_path(fer, tmp_path):
    from classicfer.evaluation import model_from_path
    from classicfer.export._testing import make_linear_model

    d = make_linear_model(tmp_path / "lin")
    spec = model_from_path(d)
    assert spec.prefit and spec.kind == "deployed" and isinstance(spec.estimator,
                                                                    PrefitClassifier)
    res = evaluate(spec, fer, "official")
    direct = spec.estimator.model.predict_proba(fer.images[res.rows])
    assert np.allclose(res.proba, direct, atol=1e-6)
    assert np.array_equal(res.y_pred, np.asarray(spec.estimator.classes_)[direct.argmax(1)])
    with pytest.raises(ConfigError, match="prefit"):
        evaluate(spec, _with_subjects(fer), "subject-kfold", folds=2)


def test_class_mismatch_refused_unless_mapped_or_shared(ck, tmp_path):
    from classicfer.evaluation import model_from_path
    from classicfer.export._testing import make_linear_model

    spec = model_from_path(make_linear_model(tmp_path / "fer7"))  # FER's 7 classes
    ck_test = ck.subset(np.arange(len(ck)))
    ck_test.splits = np.array(["test"] * len(ck))
    with pytest.raises(ModelError, match=r"the dataset has contempt which the model lacks; "
                                         r"the model predicts neutral which the dataset lacks"):
        evaluate(spec, ck_test, "split")
    res = evaluate(spec, ck_test, "split", shared_classes=True)
    assert "contempt" not in res.labels and "neutral" not in res.labels
    assert set(res.y_pred) <= set(res.labels)
    assert len(res.y_true) == (ck.labels != "contempt").sum()
    # Mapping contempt away still leaves neutral unmatched -> still refused ...
    with pytest.raises(ModelError, match="neutral"):
        evaluate(spec, ck_test, "split", label_map={"contempt": ""})
    # ... and cross-dataset implies the shared classes.
    res2 = evaluate(spec, None, test_dataset=ck)
    assert res2.protocol == "cross-dataset" and res2.labels == res.labels


def test_cross_dataset_fits_on_a_tests_on_b(fer, ck):
    res = evaluate(pixel_model(), fer, test_dataset=ck, name="pix")
    assert res.dataset == "fer2013-to-ckplus48"
    assert res.folds[0]["n_train"] == (fer.labels != "neutral").sum()
    assert len(res.y_true) == (ck.labels != "contempt").sum()
    assert any("neutral" in n for n in res.notes) and any("contempt" in n for n in res.notes)


# --------------------------------------------------------------------------- report folder
def test_report_folder_has_every_file_and_valid_pngs(fer, tmp_path):
    from PIL import Image

    res = evaluate(pixel_model(), fer, "official", name="pix")
    out = tmp_path / "run"
    m = write_report(res, fer, out, command=["classicfer", "evaluate"], n_boot=200)
    for f in REPORT_FILES:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    for png in out.glob("*.png"):
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] >= 300 and im.size[1] >= 150
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(m["accuracy"])
    assert saved["confusion"] == m["confusion"]
    per_class = (out / "per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,precision,recall,f1,support" and len(per_class) == 8
    conf = (out / "confusion.csv").read_text().splitlines()
    assert sum(int(x) for line in conf[1:] for x in line.split(",")[1:]) == len(res.y_true)
    preds = (out / "predictions.csv").read_text().splitlines()
    assert preds[0].startswith("path,true,pred,confidence,fold,row") and \
        len(preds) == len(res.y_true) + 1
    back = read_predictions(out)  # the reader beside the writer: the same predictions
    assert back["labels"] == list(res.labels)
    assert np.array_equal(back["pred"], res.y_pred) and np.array_equal(back["row"], res.rows)
    assert np.array_equal(back["fold"], res.fold) and np.array_equal(back["true"], res.y_true)
    assert np.allclose(back["proba"], res.proba, atol=5e-7)
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["command"] == ["classicfer", "evaluate"]
    assert len(run["dataset"]["manifest_sha256"]) == 64
    assert {"numpy", "scikit-learn", "python"} <= set(run["versions"])
    assert "timings" in run and "git" in run
    md = (out / "confusions.md").read_text()
    assert "Most confused pairs" in md and "Always answering the majority class" in md
    # Calibration hook: a probabilistic model gets calibration.json + reliability.png.
    assert (out / "calibration.json").is_file() and (out / "reliability.png").is_file()


def test_report_with_groups_and_decision_scores(ck, tmp_path):
    import csv

    groups = tmp_path / "groups.csv"
    with open(groups, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "gender"])
        for i, p in enumerate(ck.paths):
            w.writerow([p, "f" if i % 2 else "m"])
    from classicfer.evaluation.fairness import load_groups_csv

    res = evaluate(pixel_model(LinearSVC()), ck, "subject-kfold", folds=3)
    assert res.score_kind == "decision"
    out = tmp_path / "run"
    write_report(res, ck, out, n_boot=200, groups=load_groups_csv(groups, ck))
    assert (out / "groups.json").is_file() and (out / "groups.png").is_file()
    assert not (out / "calibration.json").exists()  # decision scores are not probabilities
    m = json.loads((out / "metrics.json").read_text())
    assert m["bootstrap"]["unit"] == "subject" and m["n_folds"] == 3
    assert m["std_test_accuracy"] is not None


def test_cli_evaluate_and_bad_input(tiny_fer_folder, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "lin", name="lin")
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_fer_folder), "--model",
                                 str(model), "--out", str(tmp_path / "res"), "-q",
                                 "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "res" / "fer2013" / "official" / "lin" / "metrics.json").is_file()
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_fer_folder), "--model",
                                 str(model), "--protocol", "subject-kfold", "-q"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error: protocol 'subject-kfold' "
                                                       "refits the model")
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_fer_folder), "-q"])
    assert r.exit_code == 1 and "Error: no model: give --model FOLDER" in r.output
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tmp_path / "nope"), "--model",
                                 str(model), "-q"])
    assert r.exit_code == 1 and "Traceback" not in r.output and "Error:" in r.output


def test_empty_dataset_after_map_is_an_error(ck):
    with pytest.raises(DataError, match="no rows left"):
        evaluate(pixel_model(), ck, "subject-kfold", folds=3,
                 label_map=dict.fromkeys(set(ck.labels), ""))


def test_dataset_without_anything_has_no_default_protocol():
    ds = Dataset(images=np.zeros((4, 8, 8), np.uint8), labels=np.array(["happy", "sad"] * 2),
                 subjects=None, splits=np.array([""] * 4), paths=np.array(list("abcd")),
                 name="bare")
    with pytest.raises(DataError, match="cross-dataset"):
        evaluate(pixel_model(), ds)


def test_predictions_equal_a_manual_fold_loop(ck):
    """Features computed once per run give the same predictions as fitting per fold."""
    from sklearn.base import clone

    model = pixel_model(LogisticRegression(max_iter=300))
    res = evaluate(model, ck, "subject-kfold", folds=3, seed=2)
    assert res.model_description.get("features_precomputed") is True
    folds, _ = subject_kfold(ck.labels, ck.subjects, n_splits=3, seed=2)
    manual = np.empty(len(ck), dtype=object)
    for tr, te in folds:
        manual[te] = clone(model).fit(ck.images[tr], ck.labels[tr]).predict(ck.images[te])
    assert np.array_equal(res.rows, np.arange(len(ck)))
    assert np.array_equal(res.y_pred, manual.astype(str))
    assert all(f["fit_time"] > 0 and f["predict_time"] > 0 for f in res.folds)


def test_cli_cross_dataset_prefit_and_bad_map(tiny_ckplus48, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "lin", name="lin")
    r = CliRunner().invoke(cli, ["evaluate", "--protocol", "cross-dataset", "--test-data",
                                 str(tiny_ckplus48), "--model", str(model), "--out",
                                 str(tmp_path / "res"), "-q", "--n-boot", "100", "--gallery", "4"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "res" / "prefit-to-ckplus48" / "cross-dataset" / "lin"
    m = json.loads((out / "metrics.json").read_text())
    assert "contempt" not in m["labels"] and "neutral" not in m["labels"]
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_ckplus48), "--model", str(model),
                                 "--map", "anger=bogus", "-q"])
    assert r.exit_code == 2 and "unknown emotion label 'bogus'" in r.output


def test_flip_doubles_training_rows_and_matches_a_manual_loop(ck):
    """--flip: each fold trains on its crops plus their mirrors; test crops are untouched."""
    from sklearn.base import clone

    model = pixel_model(LogisticRegression(max_iter=300))
    res = evaluate(model, ck, "subject-kfold", folds=3, seed=1, flip=True)
    plain = evaluate(model, ck, "subject-kfold", folds=3, seed=1)
    for f, g in zip(res.folds, plain.folds, strict=True):
        assert f["n_train"] == 2 * g["n_train"] and f["n_test"] == g["n_test"]
    assert any("mirror" in n for n in res.notes)
    X, y = ck.images, np.asarray(ck.labels)
    for k in range(3):
        te = res.rows[res.fold == k]
        tr = np.setdiff1d(np.arange(len(y)), te)
        Xtr = np.concatenate([X[tr], X[tr][:, :, ::-1]])
        est = clone(model).fit(Xtr, np.concatenate([y[tr], y[tr]]))
        assert np.array_equal(est.predict(X[te]).astype(str), res.y_pred[res.fold == k])


def test_flip_is_refused_for_a_prefit_model(tiny_fer_folder, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "lin", name="lin")
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_fer_folder), "--model",
                                 str(model), "--flip", "-q"])
    assert r.exit_code == 1 and "--flip augments training data" in r.output


@pytest.mark.parametrize("module", ["calibration", "fairness"])
def test_a_report_section_that_cannot_load_is_an_error(module, ck, tmp_path, monkeypatch):
    """A failing import of the package's own module is raised, not a silently missing file."""
    import sys

    res = evaluate(pixel_model(), ck, "subject-kfold", folds=3)
    groups = {"gender": np.where(np.arange(len(ck)) % 2, "f", "m")}
    monkeypatch.setitem(sys.modules, f"classicfer.evaluation.{module}", None)
    with pytest.raises(ImportError, match=module):
        write_report(res, ck, tmp_path / "run", n_boot=50, groups=groups)


# --------------------------------------------------------------------------- CV objects, timings
def test_protocols_are_scikit_learn_cv_objects(fer, ck):
    from sklearn.model_selection import (
        LeaveOneGroupOut,
        PredefinedSplit,
        StratifiedGroupKFold,
        cross_val_score,
    )

    from classicfer.evaluation import make_cv

    plan = make_cv("official", labels=fer.labels, splits=fer.splits)
    assert isinstance(plan.cv, PredefinedSplit)
    [(tr, te)] = plan.folds(fer.labels)
    assert set(fer.splits[tr]) == {"train"} and set(fer.splits[te]) == {"test"}  # val held out
    # the same object scores the model as the harness does
    acc = cross_val_score(pixel_model(), fer.images[plan.rows], fer.labels[plan.rows],
                          cv=plan.cv)
    assert acc[0] == pytest.approx(evaluate(pixel_model(), fer, "official").metrics(
        n_boot=100)["accuracy"])
    [(tr, va)] = make_cv("select", labels=fer.labels, splits=fer.splits).folds(fer.labels)
    assert set(fer.splits[tr]) == {"train"} and set(fer.splits[va]) == {"val"}
    kfold = make_cv("subject-kfold", labels=ck.labels, groups=ck.subjects, n_splits=3, seed=2)
    assert isinstance(kfold.cv, StratifiedGroupKFold) and kfold.description == repr(kfold.cv)
    assert [te.tolist() for _, te in kfold.folds(ck.labels, ck.subjects)] == \
        [te.tolist() for _, te in subject_kfold(ck.labels, ck.subjects, n_splits=3, seed=2)[0]]
    assert isinstance(make_cv("loso", labels=ck.labels, groups=ck.subjects).cv, LeaveOneGroupOut)
    with pytest.raises(ConfigError, match="unknown CV scheme 'nope'"):
        make_cv("nope", labels=ck.labels)


def test_grid_selection_is_a_grid_search_on_the_val_split(fer):
    """The official protocol's selection equals GridSearchCV over PredefinedSplit(train -> val),
    and the chosen model is fitted on the training rows only.
    """
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    from classicfer.evaluation import ModelSpec

    grid = {"logisticregression__C": [1e-6, 1e-2, 1.0]}
    res = evaluate(ModelSpec(pixel_model(), "grid", "estimator", False, grid=grid), fer,
                   "official")
    rows = np.flatnonzero(np.isin(fer.splits, ["train", "val"]))
    search = GridSearchCV(pixel_model(), grid, cv=PredefinedSplit(
        np.where(fer.splits[rows] == "val", 0, -1))).fit(fer.images[rows], fer.labels[rows])
    assert [s["val_accuracy"] for s in res.selection] == pytest.approx(
        list(search.cv_results_["mean_test_score"]))
    assert res.selected_params == search.best_params_
    assert res.folds[0]["n_train"] == (fer.splits == "train").sum()


def test_cpu_timings_belong_to_their_own_call(ck):
    """Each evaluate() counts its own CPU seconds: another evaluate() running meanwhile (here
    inside the model's fit) neither resets nor inflates them.
    """
    import time

    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.dummy import DummyClassifier

    inner_data = ck

    class Busy(ClassifierMixin, BaseEstimator):
        def __init__(self, burn=0.2):
            self.burn = burn

        def fit(self, X, y):
            inner = evaluate(make_pipeline(FunctionTransformer(_flatten), DummyClassifier()),
                             inner_data, "subject-kfold", folds=3)
            assert inner.cpu["fit_cpu_seconds"] < self.burn
            t0 = time.process_time()
            while time.process_time() - t0 < self.burn:
                pass
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    res = evaluate(make_pipeline(FunctionTransformer(_flatten), Busy()), ck, "subject-kfold",
                   folds=3)
    assert res.cpu["fit_cpu_seconds"] >= 3 * 0.2
    assert res.cpu["fit_cpu_seconds"] <= res.cpu["total_cpu_seconds"]
