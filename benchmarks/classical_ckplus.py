"""CK+48, 7 classes, subject-grouped 10-fold CV of classical pipelines.

Runs ``classicfer.models.run_grid`` (the engine of ``classicfer grid``) with
StratifiedGroupKFold(10, shuffle=True, random_state=seed) over subjects, so no
subject is on both sides of a split; features come from the feature cache.
Writes results/classical/ckplus48/{summary.csv, folds.csv, summary.md, run.json}.

Usage::

    nice -n 10 python benchmarks/classical_ckplus.py [--flip] [--n-jobs 2]
    python benchmarks/classical_ckplus.py --features hog+landmarks --classifiers svm \
        --C 10 --param align=eyes --param align_margin=0,-0.1 --flip
"""

from __future__ import annotations

import argparse
import sys
import time

from classicfer.commands.grid import write_grid_results

FEATURES = ["hog", "lbp", "landmarks", "embedding", "hog+lbp", "hog+landmarks",
            "hog+lbp+landmarks"]
CLASSIFIERS = ["linear-svm", "svm"]
PARAMS = {"C": [0.1, 10], "pca": [100]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/datasets/ckplus48")
    ap.add_argument("--out", default="results/classical/ckplus48")
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--classifiers", default=",".join(CLASSIFIERS))
    ap.add_argument("--C", default="0.1,10", help="candidate C values (comma-separated)")
    ap.add_argument("--pca", default="100", help="candidate PCA sizes ('none' for no PCA)")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2",
                    help="more candidate values, e.g. align=eyes or align_margin=0,-0.1")
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from classicfer.commands._common import _parse_value
    from classicfer.datasets import load_dataset
    from classicfer.models import run_grid

    params = {"C": [_parse_value(v) for v in args.C.split(",")],
              "pca": [_parse_value(v) for v in args.pca.split(",")]}
    for item in args.param:
        key, _, values = item.partition("=")
        params[key.strip()] = [_parse_value(v) for v in values.split(",")]
    ds = load_dataset(args.data)
    t0 = time.perf_counter()
    summary, folds, info = run_grid(
        ds.images, ds.labels, features=args.features.split(","),
        classifiers=args.classifiers.split(","), params=params, cv="group:10",
        groups=ds.subjects, splits=ds.splits, flip=args.flip, n_jobs=args.n_jobs,
        seed=args.seed)
    best = max(summary, key=lambda r: r["mean_test_accuracy"])
    print(f"best: {best['features']} + {best['classifier']} {best['params']}: "
          f"{best['mean_test_accuracy']:.4f} +- {best['std_test_accuracy']:.4f}")
    write_grid_results(args.out, summary, folds, {
        **info, "command": " ".join(["python"] + sys.argv), "seed": args.seed,
        "data": args.data, "dataset": "ckplus48", "n_images": len(ds),
        "grid": {"features": args.features, "classifiers": args.classifiers,
                 "params": params}, "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
