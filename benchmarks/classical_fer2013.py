"""FER-2013 with classical pipelines: fit on Training, select on PublicTest, report PrivateTest.

Each run = feature spec + classifier + candidate parameters. For every
candidate the pipeline (``classicfer.models.make_pipeline``) is fitted on
Training (optionally + horizontal flips), scored on PublicTest; the candidate
with the best PublicTest accuracy is reported on PrivateTest (touched once per
run). Features come from the classicfer feature cache, so reruns skip
extraction. Results: ``results/classical/fer2013/summary.csv`` (a row per run,
appended/replaced as runs finish), ``candidates.csv``, ``summary.md`` (generated
from the CSV) and ``run.json`` (command, seed, versions, machine load).

Usage::

    nice -n 10 python benchmarks/classical_fer2013.py                 # default runs
    nice -n 10 python benchmarks/classical_fer2013.py --run "hog+lbp|svm|pca=150;C=10|flip"
    python benchmarks/classical_fer2013.py --merge /tmp/part_b /tmp/part_c   # parallel parts

A run string is ``features|classifier|k=v1,v2;k2=v|flip-or-noflip``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from _classical_common import read_csv, run_record, write_csv, write_json

DEFAULT_RUNS = [
    "hog|linear-svm|C=0.01,0.1|noflip",
    "lbp|linear-svm|C=0.01,0.1|noflip",
    "hog+lbp|linear-svm|C=0.01|noflip",
    "landmarks|linear-svm|C=0.1,1|noflip",
    "hog+landmarks|linear-svm|C=0.01|noflip",
    "hog+lbp|svm|pca=150;C=10;cv=2|flip",
    "hog|xgboost|pca=100;n_estimators=300|noflip",
    "lbp|xgboost|pca=100;n_estimators=300|noflip",
    "landmarks|xgboost|n_estimators=300|noflip",
    "hog+lbp|xgboost|pca=100;n_estimators=300|noflip",
    "hog+landmarks|xgboost|pca=100;n_estimators=300|noflip",
    "embedding|linear-svm|C=0.1|noflip",
    "embedding|xgboost|n_estimators=300|noflip",
]


def parse_run(s: str):
    from classicfer.commands._common import _parse_value

    feats, clf, params, flip = (s.split("|") + ["", "noflip"])[:4]
    grid = {}
    for item in filter(None, params.split(";")):
        k, v = item.split("=", 1)
        grid[k] = [_parse_value(x) for x in v.split(",")]
    return feats, clf, grid, flip.strip() == "flip"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/datasets/fer2013")
    ap.add_argument("--out", default="results/classical/fer2013")
    ap.add_argument("--run", action="append", help="run string (repeatable); default: all")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merge", nargs="+", metavar="DIR",
                    help="merge the tables of other --out folders (runs done in parallel "
                         "processes) into --out, then exit")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(Path(args.out), [Path(d) for d in args.merge])

    from sklearn.metrics import accuracy_score, f1_score

    from classicfer.datasets import load_dataset
    from classicfer.features import feature_params
    from classicfer.features.cache import compute_features, is_cached
    from classicfer.models import make_pipeline

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    tr, va, te = ds.split("train"), ds.split("val"), ds.split("test")
    print(f"loaded {len(ds)} images in {time.perf_counter() - t0:.1f} s "
          f"(train {len(tr)}, val {len(va)}, test {len(te)})", flush=True)
    for run in args.run or DEFAULT_RUNS:
        feats, clf, grid, flip = parse_run(run)
        keys = list(grid)
        combos = [dict(zip(keys, c)) for c in itertools.product(*grid.values())]
        feature_sets = {}  # feature parameters (JSON) -> (Ftr, ytr, Fva, Fte, seconds, cached)

        best = None
        for params in combos:
            pipe = make_pipeline(feats, clf, params, random_state=args.seed)
            head = pipe[1:]
            feat = pipe.named_steps["features"]
            fkey = json.dumps(feature_params(feat), sort_keys=True)
            if fkey not in feature_sets:
                tf = time.perf_counter()
                cached = is_cached(feat, tr.images)
                Ftr = compute_features(feat, tr.images, n_jobs=args.n_jobs)
                ytr = tr.labels
                if flip:
                    Ftr = np.concatenate([Ftr, compute_features(
                        feat, np.ascontiguousarray(tr.images[:, :, ::-1]), n_jobs=args.n_jobs)])
                    ytr = np.concatenate([ytr, ytr])
                Fva = compute_features(feat, va.images, n_jobs=args.n_jobs)
                Fte = compute_features(feat, te.images, n_jobs=args.n_jobs)
                feat_s = time.perf_counter() - tf
                print(f"[{run}] features {Ftr.shape} in {feat_s:.1f} s (cached before: "
                      f"{cached})", flush=True)
                feature_sets[fkey] = (Ftr, ytr, Fva, Fte, feat_s, cached)
            Ftr, ytr, Fva, Fte, feat_s, cached = feature_sets[fkey]
            t1 = time.perf_counter()
            head.fit(Ftr, ytr)
            fit_s = time.perf_counter() - t1
            pv = head.predict(Fva)
            row = {"run": run, "features": feats, "classifier": clf, "flip": flip,
                   "params": str(params), "val_accuracy": accuracy_score(va.labels, pv),
                   "val_f1_macro": f1_score(va.labels, pv, average="macro"),
                   "fit_seconds": round(fit_s, 1), "n_train": len(ytr),
                   "n_features": Ftr.shape[1]}
            print(f"  {params}: PublicTest acc {row['val_accuracy']:.4f}, fit {fit_s:.0f} s",
                  flush=True)
            # re-read before writing: another process may be filling the same table
            cands = [c for c in read_csv(out / "candidates.csv")
                     if not (c["run"] == run and c["params"] == str(params))]
            cands.append(row)
            write_csv(out / "candidates.csv", cands)
            if best is None or row["val_accuracy"] > best[0]["val_accuracy"]:
                best = (row, head, Fte, feat_s, cached)
        row, head, Fte, feat_s, cached = best
        pt = head.predict(Fte)
        res = {**row, "test_accuracy": accuracy_score(te.labels, pt),
               "test_f1_macro": f1_score(te.labels, pt, average="macro"),
               "feature_seconds": round(feat_s, 1), "features_were_cached": cached,
               "seed": args.seed}
        print(f"  selected {row['params']}: PrivateTest acc {res['test_accuracy']:.4f}, "
              f"macro-F1 {res['test_f1_macro']:.4f}", flush=True)
        summary = [s for s in read_csv(out / "summary.csv") if s["run"] != run] + [res]
        write_csv(out / "summary.csv", summary)
        write_markdown(out, summary)
        write_json(out / "run.json", run_record(
            dataset=str(args.data), protocol="fit Training (+flips where marked), select on "
            "PublicTest, report PrivateTest", seed=args.seed, n_jobs=args.n_jobs,
            runs=args.run or DEFAULT_RUNS))


def merge(out: Path, others: list[Path]) -> None:
    """Rows of ``others`` replace same-run rows of ``out`` (same for candidates)."""
    summary, cands = read_csv(out / "summary.csv"), read_csv(out / "candidates.csv")
    for d in others:
        new = read_csv(d / "summary.csv")
        runs = {r["run"] for r in new}
        summary = [r for r in summary if r["run"] not in runs] + new
        newc = read_csv(d / "candidates.csv")
        keys = {(c["run"], c["params"]) for c in newc}
        cands = [c for c in cands if (c["run"], c["params"]) not in keys] + newc
        print(f"merged {len(new)} runs from {d}")
    write_csv(out / "summary.csv", summary)
    write_csv(out / "candidates.csv", cands)
    write_markdown(out, summary)
    # keep each part's command, versions and machine load next to the main run's
    rec = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    parts = rec.setdefault("merged_parts", [])
    for d in others:
        if (d / "run.json").is_file():
            part = json.loads((d / "run.json").read_text())
            parts[:] = [q for q in parts if q.get("command") != part.get("command")] + [part]
    write_json(out / "run.json", rec)


def write_markdown(out, summary):
    lines = ["# FER-2013, classical pipelines", "",
             ("Fit on Training, hyper-parameters selected on PublicTest, reported once on "
              "PrivateTest. Generated from summary.csv by benchmarks/classical_fer2013.py."), "",
             ("| Features | Classifier | Flip | Selected params | PublicTest acc. | "
              "PrivateTest acc. | PrivateTest macro-F1 | Fit s |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(summary, key=lambda r: -float(r["test_accuracy"])):
        lines.append(f"| {r['features']} | {r['classifier']} | {r['flip']} | `{r['params']}` | "
                     f"{float(r['val_accuracy']):.4f} | {float(r['test_accuracy']):.4f} | "
                     f"{float(r['test_f1_macro']):.4f} | {r['fit_seconds']} |")
    (Path(out) / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
