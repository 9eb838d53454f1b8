"""Write the report folder of one run: results/<dataset>/<protocol>/<model>/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..datasets.manifest import dataset_record
from ..provenance import run_record
from ._metrics import METRICS, top_confusions
from ._plots import plot_confusion, plot_misclassified

#: Files every report folder holds (calibration/groups files are added when available).
REPORT_FILES = ("metrics.json", "per_class.csv", "confusion.csv", "confusion.png",
                "misclassified.png", "confusions.md", "predictions.csv", "folds.csv",
                "run.json")

def _round(obj, nd=6):
    if isinstance(obj, float):
        return None if not np.isfinite(obj) else round(obj, nd)
    if isinstance(obj, (np.floating,)):
        return _round(float(obj), nd)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, nd) for v in obj]
    if isinstance(obj, np.ndarray):
        return _round(obj.tolist(), nd)
    return obj


def dump_json(obj, path) -> None:
    Path(path).write_text(json.dumps(_round(obj), indent=2, sort_keys=True) + "\n")


def safe_name(name: str) -> str:
    """A folder-safe model name (letters, digits, ``+-_.``)."""
    out = "".join(c if c.isalnum() or c in "+-_." else "-" for c in str(name)).strip("-.")
    return out or "model"


def report_dir(root, result) -> Path:
    return Path(root) / safe_name(result.dataset) / result.protocol / safe_name(result.model)


def _write_csv(path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def read_predictions(out_dir) -> dict:
    """The ``predictions.csv`` of a report folder written by :func:`write_report`.

    Returns a dict of arrays, one entry per test prediction: ``path``, ``true``, ``pred``
    (str), ``fold``, ``row`` (int; ``row`` indexes the dataset as loaded), and
    ``labels`` (the class order of the score columns) with ``proba`` (N, len(labels)),
    or None when the run had no scores. Scores were written with 6 decimals.
    """
    with open(Path(out_dir) / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0]) if rows else []
    labels = [k[len("score_"):] for k in fields if k.startswith("score_")]
    return {"path": np.array([r["path"] for r in rows]),
            "true": np.array([r["true"] for r in rows]),
            "pred": np.array([r["pred"] for r in rows]),
            "fold": np.array([int(r["fold"]) for r in rows], dtype=int),
            "row": np.array([int(r["row"]) for r in rows], dtype=int),
            "labels": labels,
            "proba": (np.array([[float(r[f"score_{c}"]) for c in labels] for r in rows])
                      if labels else None)}


def _pct(x) -> str:
    return f"{100 * x:.1f} %"


def confusions_markdown(m: dict, k: int = 5) -> str:
    """The top confused pairs and a few sentences generated from the numbers."""
    labels = m["labels"]
    cm = np.asarray(m["confusion"], dtype=float)
    pairs = top_confusions(cm, labels, k=k)
    pc = m["per_class"]
    lo, hi = m["accuracy_ci95"]
    unit = m["bootstrap"]["unit"]
    lines = [f"# {m['model']} on {m['dataset']} ({m['protocol']})", "",
             (f"Accuracy {_pct(m['accuracy'])} (95 % CI {_pct(lo)} to {_pct(hi)}, bootstrap "
              f"over {unit}s), balanced accuracy {_pct(m['balanced_accuracy'])}, macro-F1 "
              f"{_pct(m['macro_f1'])}, on {m['n_samples']} test images in {m['n_folds']} "
              f"fold{'s' if m['n_folds'] != 1 else ''}."), "",
             "## Most confused pairs", ""]
    if pairs:
        lines += ["| true -> predicted | share of the true class | images |", "|---|---:|---:|"]
        rows = cm.sum(axis=1)
        for p in pairs:
            n = int(rows[labels.index(p["true"])])
            lines.append(f"| {p['true']} -> {p['pred']} | {100 * p['rate']:.0f} % | "
                         f"{p['count']} / {n} |")
    else:
        lines.append("No confusions: every test image was classified correctly.")
    lines += ["", "## What the numbers say", ""]
    sent = []
    present = [c for c in labels if pc[c]["support"] > 0]
    if present:
        best = max(present, key=lambda c: (pc[c]["f1"], c))
        worst = min(present, key=lambda c: (pc[c]["f1"], c))
        sent.append(f"The model is best on {best} (F1 {_pct(pc[best]['f1'])}) and worst on "
                    f"{worst} (F1 {_pct(pc[worst]['f1'])}, recall "
                    f"{_pct(pc[worst]['recall'])} of {pc[worst]['support']} images).")
    if pairs:
        p = pairs[0]
        sent.append(f"The most common mistake is calling {p['true']} {p['pred']}: "
                    f"{100 * p['rate']:.0f} % of the {p['true']} images "
                    f"({p['count']} image{'s' if p['count'] != 1 else ''}).")
        back = next((q for q in top_confusions(cm, labels, k=len(labels) ** 2)
                     if q["true"] == p["pred"] and q["pred"] == p["true"]), None)
        if back and back["rate"] >= 0.05:
            sent.append(f"The confusion runs both ways: {back['true']} -> {back['pred']} is "
                        f"{100 * back['rate']:.0f} %.")
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    ratios = {c: predicted[i] / support[i] for i, c in enumerate(labels) if support[i] > 0}
    if ratios:
        over = max(ratios, key=lambda c: (ratios[c], c))
        under = min(ratios, key=lambda c: (ratios[c], c))
        if ratios[over] >= 1.2:
            sent.append(f"It over-predicts {over}: {int(predicted[labels.index(over)])} "
                        f"predictions for {int(support[labels.index(over)])} true images "
                        f"(precision {_pct(pc[over]['precision'])}).")
        if ratios[under] <= 0.8:
            sent.append(f"It under-predicts {under}: {int(predicted[labels.index(under)])} "
                        f"predictions for {int(support[labels.index(under)])} true images.")
    if support.sum() > 0:
        maj = labels[int(np.argmax(support))]
        sent.append(f"Always answering the majority class ({maj}) would score "
                    f"{_pct(support.max() / support.sum())}; uniform guessing over "
                    f"{len(labels)} classes scores {_pct(1 / len(labels))}.")
    if m["n_folds"] > 1 and m.get("mean_test_accuracy") is not None:
        accs = [f["test_accuracy"] for f in m["folds"]]
        sent.append(f"Across {m['n_folds']} folds accuracy is "
                    f"{_pct(m['mean_test_accuracy'])} ± {_pct(m['std_test_accuracy'])} "
                    f"(from {_pct(min(accs))} to {_pct(max(accs))}).")
    for n in m.get("notes") or []:
        sent.append(f"Note: {n}.")
    lines += [" ".join(sent), ""]
    return "\n".join(lines)


def write_report(result, dataset, out_dir, *, command=None, n_boot: int = 1000,
                 gallery: int = 24, groups: dict | None = None, extra_run: dict | None = None,
                 train_dataset=None) -> dict:
    """Write every report file of ``result`` into ``out_dir``; return the metrics dict.

    Parameters
    ----------
    result : EvaluationResult
    dataset : Dataset
        The dataset the predictions were made on (images for the gallery; rows
        of ``result.rows`` index it).
    groups : dict, optional
        ``{attribute: array aligned with dataset rows}`` from
        :func:`classicfer.evaluation.fairness.load_groups_csv`; writes
        ``groups.json``/``groups.png`` when the fairness module is installed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("calibration.json", "reliability.png", "groups.json", "groups.png"):
        (out / stale).unlink(missing_ok=True)
    m = result.metrics(n_boot=n_boot)
    labels = result.labels

    _write_csv(out / "per_class.csv", ["class", "precision", "recall", "f1", "support"],
               [[c, f"{v['precision']:.6f}", f"{v['recall']:.6f}", f"{v['f1']:.6f}",
                 v["support"]] for c, v in m["per_class"].items()])
    _write_csv(out / "confusion.csv", ["true\\predicted", *labels],
               [[c, *row] for c, row in zip(labels, m["confusion"], strict=True)])
    _write_csv(out / "confusion_normalized.csv", ["true\\predicted", *labels],
               [[c, *(f"{x:.6f}" for x in row)]
                for c, row in zip(labels, m["confusion_normalized"], strict=True)])
    _write_csv(out / "folds.csv", ["fold", "n_train", "n_test",
                                   *(f"test_{k}" for k in METRICS), "fit_time", "predict_time"],
               [[f["fold"], f["n_train"], f["n_test"], *(f"{f[f'test_{k}']:.6f}" for k in METRICS),
                 "" if f["fit_time"] is None else f"{f['fit_time']:.4f}",
                 f"{f['predict_time']:.4f}"] for f in m["folds"]])
    conf = result.confidence
    score_cols = [f"score_{c}" for c in labels] if result.proba is not None else []
    rows = []
    for i in range(len(result.y_true)):
        r = [result.paths[i], result.y_true[i], result.y_pred[i],
             "" if not np.isfinite(conf[i]) else f"{conf[i]:.6f}", int(result.fold[i]),
             int(result.rows[i])]
        if result.proba is not None:
            r += [f"{x:.6f}" for x in result.proba[i]]
        rows.append(r)
    _write_csv(out / "predictions.csv",
               ["path", "true", "pred", "confidence", "fold", "row", *score_cols], rows)

    title = (f"{result.model} on {result.dataset} ({result.protocol})\n"
             f"accuracy {_pct(m['accuracy'])}, macro-F1 {_pct(m['macro_f1'])}")
    plot_confusion(m["confusion"], labels, out / "confusion.png", title=title)
    wrong = np.flatnonzero(result.y_true != result.y_pred)
    c = np.where(np.isfinite(conf[wrong]), conf[wrong], -1.0)
    order = wrong[np.lexsort((result.paths[wrong], -c))]
    if result.subjects is not None:
        # One tile per (subject, true class): CK+ keeps 3 frames of a sequence, and three
        # near-identical tiles teach nothing.
        seen, keep = set(), []
        for i in order:
            key = (result.subjects[i], result.y_true[i])
            if key not in seen:
                seen.add(key)
                keep.append(i)
        order = np.asarray(keep, dtype=int)
    order = order[:gallery]
    imgs = [dataset.images[int(r)] for r in result.rows[order]]
    what = {"probability": "probability", "decision": "softmax of decision scores",
            None: "no scores"}.get(result.score_kind, result.score_kind)
    plot_misclassified(imgs, result.y_true[order], result.y_pred[order], conf[order],
                       out / "misclassified.png", n=gallery,
                       title=f"most confident mistakes of {result.model} on "
                             f"{result.dataset} ({what})")
    (out / "confusions.md").write_text(confusions_markdown(m))

    if result.proba is not None and result.score_kind == "probability":
        from .calibration import expected_calibration_error, reliability_diagram

        idx = {c_: i for i, c_ in enumerate(labels)}
        yt = np.array([idx[y] for y in result.y_true])
        ece = expected_calibration_error(yt, result.proba, n_bins=15)
        dump_json({"ece": ece, "n_bins": 15, "n_samples": len(yt),
                   "note": ("probabilities renormalised over the scored classes"
                            if any("restricted" in n for n in result.notes) else "")},
                  out / "calibration.json")
        reliability_diagram(yt, result.proba, labels, out / "reliability.png")
        m["ece"] = float(ece) if np.isscalar(ece) else ece
    if groups:
        from .fairness import group_metrics, plot_group_metrics

        g = {a: np.asarray(v)[result.rows] for a, v in groups.items()}
        gm = group_metrics(result.y_true, result.y_pred, g, labels, seed=result.seed)
        dump_json(gm, out / "groups.json")
        plot_group_metrics(gm, out / "groups.png")
    dump_json(m, out / "metrics.json")

    run = run_record(
        command, dataset=dataset_record(dataset),
        train_dataset=None if train_dataset is None else dataset_record(train_dataset),
        protocol=result.protocol, splitter=result.splitter, seed=result.seed,
        model={"name": result.model, "kind": result.model_kind, **result.model_description},
        selected_params=result.selected_params, label_map=result.label_map,
        timings={"total_fit_time": m["total_fit_time"],
                 "total_predict_time": m["total_predict_time"],
                 "predict_ms_per_image": m["predict_ms_per_image"],
                 "cpu": m.get("cpu"),
                 "folds": [{k: f[k] for k in ("fold", "fit_time", "predict_time")}
                           for f in m["folds"]]})
    if extra_run:
        run.update(extra_run)
    dump_json(run, out / "run.json")
    return m
