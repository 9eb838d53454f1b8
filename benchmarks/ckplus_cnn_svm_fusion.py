"""CK+48: the fine-tuned CNN and the aligned HOG+landmarks SVM combined, the weight chosen
by an inner cross-validation on each outer fold's training subjects only.

Usage (from the project root):
    python benchmarks/ckplus_cnn_svm_fusion.py \
        --cnn results/ckplus48/subject-kfold/cnn-transfer_e14_phase3_tta_m5 \
        --svm results/ckplus48/subject-kfold/aligned-hog+landmarks-svm \
        --init checkpoints/fer2013-cnn-grow/best.pt --threads 1

Why: on every fold partition a group of CK+48 sequences is wrong for the CNN and right for
the SVM (and the reverse), so a weighted product of the two models' probabilities,

    p(c) ~ p_CNN(c) ** (1 - w) * p_SVM(c) ** w,

may beat both. The weight must not be read off the test folds, so for each outer fold k
this script runs a subject-grouped ``--inner-folds`` cross-validation on fold k's
*training* rows: it fits a CNN (one network, the same recipe: fine-tuned from ``--init``,
``--epochs``, flip-averaged) and the SVM pipeline (same parameters, training crops plus
their mirror images) on each inner split, pools their out-of-fold probabilities, and keeps
the ``w`` of ``--weights`` with the best pooled accuracy (ties: the higher mean
log-probability of the true class). That ``w`` then combines fold k's *test* scores.

The outer test scores are the ``predictions.csv`` of the two given harness report folders
(their ``run.json`` hold the commands that made them), which must share the dataset
manifest, the splitter seed and the folds; nothing else is refitted on the outer folds.
Scores there are rounded to 6 decimals, so every probability is clipped at 1e-6 (inner ones
are rounded the same way) before taking logs.

``run.json`` also holds ``test_fold_weight_scan``: the accuracy of each candidate w applied
to every test fold. It is there for scale only (choosing w from it would be selection on
the test folds) and is not the result.

Inner out-of-fold probabilities are cached per fold under ``--cache`` (gitignored), so an
interrupted run continues where it stopped. The report folder
``results/ckplus48/subject-kfold/<name>`` is written by the harness's ``write_report``
(metrics, confusion matrix, mistakes gallery, run.json with the chosen weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-6  # the resolution of the scores in predictions.csv
SVM_PARAMS = {"pca": 100, "C": 10, "align": "eyes", "align_margin": -0.1}


def fuse(p_cnn, p_svm, w):
    """Normalised ``p_cnn ** (1 - w) * p_svm ** w`` row by row."""
    s = ((1 - w) * np.log(np.clip(p_cnn, EPS, 1.0)) + w * np.log(np.clip(p_svm, EPS, 1.0)))
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(axis=1, keepdims=True)


def choose_weight(p_cnn, p_svm, y, weights):
    """(best w, table of (w, accuracy, mean log-probability of the true class))."""
    table = []
    for w in weights:
        p = fuse(p_cnn, p_svm, w)
        acc = float(np.mean(p.argmax(1) == y))
        ll = float(np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))
        table.append((float(w), acc, ll))
    best = max(table, key=lambda t: (t[1], t[2]))
    return best[0], table


def read_folder(folder, labels, n_rows):
    """(scores (n_rows, L) in ``labels`` order, fold per row, run.json, metrics.json)."""
    from classicfer.evaluation import read_predictions

    folder = Path(folder)
    for f in ("predictions.csv", "run.json", "metrics.json"):
        if not (folder / f).is_file():
            sys.exit(f"{folder}: no {f} (not a harness report folder)")
    run = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    pr = read_predictions(folder)
    if pr["proba"] is None or not set(labels) <= set(pr["labels"]):
        sys.exit(f"{folder}: predictions.csv does not score every class")
    scores = np.full((n_rows, len(labels)), np.nan)
    fold = np.full(n_rows, -1)
    scores[pr["row"]] = pr["proba"][:, [pr["labels"].index(c) for c in labels]]
    fold[pr["row"]] = pr["fold"]
    if np.isnan(scores).any():
        sys.exit(f"{folder}: predictions.csv does not score every row")
    return scores, fold, run, metrics


def inner_oof(k, tr, images, feats, feats_m, y, subjects, labels, args, seed):
    """Out-of-fold CNN and SVM probabilities on outer fold k's training rows."""
    from sklearn.model_selection import StratifiedGroupKFold

    from classicfer.cnn_head.estimator import CNNClassifier
    from classicfer.evaluation._harness import _scores
    from classicfer.models import make_pipeline

    cache = Path(args.cache) / f"{args.name}_fold{k}.npz"
    if cache.is_file():
        z = np.load(cache)
        if np.array_equal(z["rows"], tr):
            return z["cnn"], z["svm"], float(z["seconds"])
    t0 = time.perf_counter()
    cv = StratifiedGroupKFold(n_splits=args.inner_folds, shuffle=True, random_state=seed)
    p_cnn = np.zeros((len(tr), len(labels)))
    p_svm = np.zeros((len(tr), len(labels)))
    for itr, ite in cv.split(np.zeros(len(tr)), y[tr], subjects[tr]):
        a, b = tr[itr], tr[ite]
        cnn = CNNClassifier(init=args.init, epochs=args.epochs, members=1, tta_flip=True,
                            seed=0, threads=args.threads).fit(images[a], y[a])
        p_cnn[ite] = np.round(_scores(cnn, images[b], labels)[0], 6)  # as in the CSVs
        head = make_pipeline("hog+landmarks", "svm", SVM_PARAMS)[1:]
        head.fit(np.concatenate([feats[a], feats_m[a]]), np.concatenate([y[a], y[a]]))
        p_svm[ite] = np.round(_scores(head, feats[b], labels)[0], 6)
    seconds = time.perf_counter() - t0
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, rows=tr, cnn=p_cnn, svm=p_svm, seconds=seconds)
    return p_cnn, p_svm, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/ckplus48"))
    ap.add_argument("--cnn", required=True, help="the CNN's harness report folder")
    ap.add_argument("--svm", required=True, help="the aligned SVM's report folder (same folds)")
    ap.add_argument("--init", default=str(ROOT / "checkpoints/fer2013-cnn-grow/best.pt"),
                    help="the FER-2013 checkpoint the inner CNNs are fine-tuned from (the one "
                         "the --cnn folder's networks started from)")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--inner-folds", type=int, default=3)
    ap.add_argument("--weights", default="0:0.5:0.05",
                    help="candidate SVM weights w as START:STOP:STEP (inclusive)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default=None,
                    help="report folder name (default fusion-cnn_m5+aligned-svm, plus _fs<seed> "
                         "on other fold seeds)")
    ap.add_argument("--cache", default=str(ROOT / "checkpoints/fusion"))
    ap.add_argument("--results", default=str(ROOT / "results"))
    args = ap.parse_args(argv)
    try:
        start, stop, step = (float(v) for v in args.weights.split(":"))
    except ValueError:
        ap.error("--weights takes START:STOP:STEP, e.g. 0:0.5:0.05")
    if step <= 0 or stop < start:
        ap.error("--weights needs STEP > 0 and STOP >= START, e.g. 0:0.5:0.05")
    weights = np.round(np.arange(start, stop + step / 2, step), 6)
    if not len(weights) or weights.min() < 0 or weights.max() > 1:
        ap.error("--weights must lie in [0, 1]")
    if not Path(args.init).is_file():
        sys.exit(f"--init {args.init}: no such checkpoint (benchmarks/ship_cnn.sh rebuilds it)")

    from tqdm.auto import tqdm

    from classicfer.datasets import load_dataset
    from classicfer.evaluation import (
        EvaluationResult,
        classification_metrics,
        report_dir,
        subject_kfold,
        write_report,
    )
    from classicfer.evaluation._harness import _mirror
    from classicfer.evaluation._report import manifest_hash
    from classicfer.labels import label_order
    from classicfer.models import make_pipeline

    ds = load_dataset(args.data)
    y_all = np.asarray(ds.labels).astype(str)
    subjects = np.asarray(ds.subjects)
    labels = label_order(y_all)
    s_cnn, f_cnn, run_cnn, m_cnn = read_folder(args.cnn, labels, len(ds))
    s_svm, f_svm, run_svm, m_svm = read_folder(args.svm, labels, len(ds))
    manifest = manifest_hash(ds)
    for run, folder in ((run_cnn, args.cnn), (run_svm, args.svm)):
        if run["dataset"]["manifest_sha256"] != manifest:
            sys.exit(f"{folder}: made on other data (manifest differs from {args.data})")
    seed = int(run_cnn["seed"])
    if int(run_svm["seed"]) != seed:
        sys.exit(f"the two folders use different fold seeds ({seed} and {run_svm['seed']})")
    folds, splitter = subject_kfold(y_all, subjects, n_splits=10, seed=seed)
    fold_of = np.full(len(ds), -1)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    if not (np.array_equal(fold_of, f_cnn) and np.array_equal(fold_of, f_svm)):
        sys.exit("the folders' folds are not the harness's subject-kfold folds for their seed")
    name = args.name = args.name or ("fusion-cnn_m5+aligned-svm" + (f"_fs{seed}" if seed else ""))

    # The SVM's features are stateless (as in the harness): computed once per image.
    feat = make_pipeline("hog+landmarks", "svm", SVM_PARAMS).steps[0][1]
    images = np.asarray(ds.images)
    feats = feat.transform(images)
    feats_m = feat.transform(_mirror(images))
    y_idx = np.array([labels.index(c) for c in y_all])

    proba = np.zeros((len(ds), len(labels)))
    fold_rows, chosen, selection = [], [], []
    inner_total = 0.0
    fold_times_cnn = {f["fold"]: f for f in m_cnn["folds"]}
    fold_times_svm = {f["fold"]: f for f in m_svm["folds"]}
    for k, (tr, te) in enumerate(tqdm(folds, desc="outer folds", unit="fold")):
        p_c, p_s, secs = inner_oof(k, tr, images, feats, feats_m, y_all, subjects, labels,
                                   args, seed)
        inner_total += secs
        w, table = choose_weight(p_c, p_s, y_idx[tr], weights)
        chosen.append(w)
        selection += [{"fold": k, "params": {"w": t[0]}, "val_accuracy": t[1],
                       "val_mean_log_prob": t[2]} for t in table]
        proba[te] = fuse(s_cnn[te], s_svm[te], w)
        pred = np.asarray(labels)[proba[te].argmax(1)]
        fm = classification_metrics(y_all[te], pred, labels)
        fc, fs = fold_times_cnn[k], fold_times_svm[k]
        fold_rows.append({"fold": k, "n_train": int(fc["n_train"]), "n_test": len(te),
                          "test_accuracy": fm["accuracy"],
                          "test_balanced_accuracy": fm["balanced_accuracy"],
                          "test_macro_f1": fm["macro_f1"],
                          "fit_time": float(fc["fit_time"] + fs["fit_time"] + secs),
                          "predict_time": float(fc["predict_time"] + fs["predict_time"])})
        print(f"fold {k}: w = {w:.2f} (inner accuracy {max(t[1] for t in table):.4f}; "
              f"w = 0: {table[0][1]:.4f}); test {fm['accuracy']:.4f}", flush=True)

    pred_all = np.asarray(labels)[proba.argmax(1)]
    rows = np.arange(len(ds))
    cpu = {key: m_cnn["cpu"].get(key, 0.0) + m_svm["cpu"].get(key, 0.0)
           for key in ("total_cpu_seconds", "fit_cpu_seconds", "predict_cpu_seconds")}
    cpu["inner_cv_wall_seconds"] = inner_total
    desc = {"fusion": {"rule": "p ~ p_cnn**(1-w) * p_svm**w, w per outer fold by inner CV",
                       "cnn_report": str(Path(args.cnn)), "svm_report": str(Path(args.svm)),
                       "cnn_command": run_cnn["command"], "svm_command": run_svm["command"],
                       "inner_folds": args.inner_folds, "weights": weights.tolist(),
                       "chosen_w": chosen, "inner_cnn": {"init": args.init, "members": 1,
                                                        "epochs": args.epochs,
                                                        "tta_flip": True},
                       "svm_params": SVM_PARAMS}}
    note = (f"log-linear fusion of {Path(args.cnn).name} and {Path(args.svm).name} (their "
            f"committed test scores, same folds): p ~ p_CNN^(1-w) p_SVM^w, w per fold from "
            f"{weights[0]:g}..{weights[-1]:g} by a {args.inner_folds}-fold subject-grouped "
            f"inner CV on the fold's training subjects (inner CNN: one network, same recipe); "
            f"chosen w: {', '.join(f'{w:g}' for w in chosen)}"
            + (f"; fold seed {seed}" if seed else ""))
    res = EvaluationResult(
        dataset=ds.name, protocol="subject-kfold", model=name, model_kind="fusion",
        labels=list(labels), rows=rows, y_true=y_all, y_pred=pred_all, proba=proba,
        score_kind="probability", fold=fold_of, folds=fold_rows, paths=np.asarray(ds.paths),
        subjects=subjects, seed=seed, splitter=splitter, model_description=desc, cpu=cpu,
        selection=selection, selected_params={"w_per_fold": chosen}, notes=[note])
    out = report_dir(Path(args.results), res)
    # For scale only: each candidate w applied to every test fold. Choosing w from this
    # would be selection on the test folds, so it is recorded apart from the result.
    scan = {f"{w:g}": float(np.mean(fuse(s_cnn, s_svm, w).argmax(1) == y_idx))
            for w in weights}
    m = write_report(res, ds, out, command=["python", "benchmarks/ckplus_cnn_svm_fusion.py",
                                            *(argv if argv is not None else sys.argv[1:])],
                     extra_run={"test_fold_weight_scan": {
                         "note": "accuracy with one w for every test fold; for scale only "
                                 "(picking w here would be selection on the test folds)",
                         "accuracy": scan}})
    print(f"{name}: accuracy {m['accuracy']:.4f} {m['accuracy_ci95']}, macro-F1 "
          f"{m['macro_f1']:.4f} (CNN alone {m_cnn['accuracy']:.4f}, SVM alone "
          f"{m_svm['accuracy']:.4f}); report: {out}")


if __name__ == "__main__":
    main()
