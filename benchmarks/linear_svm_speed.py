"""How fast can `linear-svm` fit FER-2013 Training without losing accuracy?

Fits the head of ``make_pipeline(features, "linear-svm")`` (StandardScaler ->
sigmoid-calibrated LinearSVC) on the cached features of FER-2013 Training
(28,709 images) in several solver settings, one after the other in one process,
and reports wall and CPU seconds of the fit and PublicTest / PrivateTest
accuracy. Settings differ only in the keyword arguments listed in the table.
Writes ``results/classical/linear_svm_speed.{json,md}``.

Usage::

    python benchmarks/linear_svm_speed.py [--features hog] [--C 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _classical_common import run_record, write_json

#: name -> (LinearSVC parameters, CalibratedClassifierCV parameters)
VARIANTS = {
    "liblinear primal, tol 1e-4, folds in series": ({"tol": 1e-4}, {"n_jobs": None}),
    "liblinear primal, tol 1e-2, folds in series": ({"tol": 1e-2}, {"n_jobs": None}),
    "liblinear primal, tol 1e-2, folds in parallel": ({"tol": 1e-2}, {"n_jobs": -1}),
    "liblinear primal, tol 1e-2, 2 folds in parallel": ({"tol": 1e-2}, {"n_jobs": -1, "cv": 2}),
    "liblinear primal, tol 1e-1, folds in parallel": ({"tol": 1e-1}, {"n_jobs": -1}),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/datasets/fer2013")
    ap.add_argument("--features", default="hog")
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--variants", default=None,
                    help="indices into VARIANTS to run, e.g. 0,2 (default: all)")
    ap.add_argument("--out", default="results/classical")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cli", action="store_true",
                    help="instead: time the whole `classicfer fit ... --n-jobs 2` command "
                         "(load, features, fit, ONNX export), with and without the cache")
    args = ap.parse_args(argv)
    if args.cli:
        return time_cli(args)

    from sklearn.metrics import accuracy_score, f1_score

    from classicfer.datasets import load_dataset
    from classicfer.features.cache import compute_features
    from classicfer.models import make_pipeline

    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    ds = load_dataset(args.data)
    tr, va, te = ds.split("train"), ds.split("val"), ds.split("test")
    base = make_pipeline(args.features, "linear-svm", random_state=args.seed)
    feat = base.named_steps["features"]
    Ftr, Fva, Fte = (compute_features(feat, s.images, n_jobs=2) for s in (tr, va, te))
    print(f"features {Ftr.shape}", flush=True)
    rows = []
    for name in names:
        svc_kw, cal_kw = VARIANTS[name]
        params = {"C": args.C, **{f"classifier__estimator__{k}": v for k, v in svc_kw.items()},
                  **{f"classifier__{k}": v for k, v in cal_kw.items()}}
        head = make_pipeline(args.features, "linear-svm", params, random_state=args.seed)[1:]
        w0, c0 = time.perf_counter(), time.process_time()
        head.fit(Ftr, tr.labels)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        pv, pt = head.predict(Fva), head.predict(Fte)
        row = {"variant": name, "params": {k: v for k, v in params.items()},
               "load_average_after": round(os.getloadavg()[0], 2),
               "fit_wall_s": round(wall, 1), "fit_cpu_s_main_process": round(cpu, 1),
               "val_accuracy": round(accuracy_score(va.labels, pv), 4),
               "test_accuracy": round(accuracy_score(te.labels, pt), 4),
               "test_f1_macro": round(f1_score(te.labels, pt, average="macro"), 4)}
        print(row, flush=True)
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    old = out / "linear_svm_speed.json"
    if args.variants and old.is_file():  # a partial run keeps the other variants' rows
        done = {r["variant"] for r in rows}
        prev = json.loads(old.read_text())
        rows = [dict(r, command=prev.get("command")) for r in prev.get("rows", [])
                if r["variant"] not in done] + rows
    rec = run_record(dataset=args.data, features=args.features, n_train=len(tr),
                     n_features=int(Ftr.shape[1]), seed=args.seed, rows=rows)
    write_json(out / "linear_svm_speed.json", rec)
    lines = ["# linear-svm fit time on FER-2013 Training", "",
             (f"`{rec['command']}`; features `{args.features}` {Ftr.shape[0]} x {Ftr.shape[1]} "
             f"(from the feature cache), C={args.C}, StandardScaler -> "
             "CalibratedClassifierCV(LinearSVC, sigmoid, cv=3 unless stated). Rows from an "
             "earlier run of the script carry its command in the JSON."), "",
             ("| Variant | Fit wall s | Load after | PublicTest acc. | PrivateTest acc. | "
             "PrivateTest macro-F1 |"),
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['fit_wall_s']} | {r.get('load_average_after', '')} | "
                     f"{r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} | "
                     f"{r['test_f1_macro']:.4f} |")
    (out / "linear_svm_speed.md").write_text("\n".join(lines) + "\n")


def time_cli(args):
    """Wall time of `classicfer fit` end to end, uncached then cached; written to
    ``linear_svm_speed_cli.json`` and appended to the markdown."""
    import subprocess
    import sys
    import tempfile

    rows = []
    for label, extra in (("features computed (--no-cache)", ["--no-cache"]),
                         ("features from the cache", [])):
        with tempfile.TemporaryDirectory() as tmp:
            exe = str(Path(sys.executable).with_name("classicfer"))
            cmd = [exe, "fit", "--data", args.data,
                   "--features", args.features, "--classifier", "linear-svm", "--n-jobs", "2",
                   "--out", f"{tmp}/model", *extra]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
        rows.append({"case": label, "command": " ".join(["classicfer"] + cmd[1:]).replace(
                         tmp, "TMPDIR"),
                     "returncode": r.returncode, "wall_s": round(wall, 1),
                     "load_average_after": round(os.getloadavg()[0], 2),
                     "output": (r.stdout + r.stderr).strip().splitlines()[-3:]})
        print(rows[-1], flush=True)
    out = Path(args.out)
    write_json(out / "linear_svm_speed_cli.json", run_record(rows=rows))
    md = out / "linear_svm_speed.md"
    text = md.read_text().split("\n## ")[0].rstrip() + "\n" if md.is_file() else ""
    text += ("\n## The whole `classicfer fit` command (2 cores)\n\n"
             "Load the dataset, HOG of Training, fit (calibration folds in parallel), ONNX "
             "export + parity check, write the model folder; "
             f"`{run_record()['command']}`.\n\n| case | wall s | return code | load after |\n"
             "|---|---:|---:|---:|\n")
    for r in rows:
        text += f"| {r['case']} | {r['wall_s']} | {r['returncode']} | {r['load_average_after']} |\n"
    md.write_text(text)


if __name__ == "__main__":
    main()
