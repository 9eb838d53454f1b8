"""Time HOG and LBP (the default parameters) on all FER-2013 images, without the cache.

Writes results/classical/features_speed.json with seconds per feature, images,
n_jobs, versions and the machine load (the 2-core box is shared).

Usage::

    nice -n 10 python benchmarks/features_speed.py --n-jobs 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import run_record, write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/datasets/fer2013")
    ap.add_argument("--out", default="results/classical/features_speed.json")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)

    from classicfer.datasets import load_dataset
    from classicfer.features import make_features
    from classicfer.features.cache import compute_features

    ds = load_dataset(args.data)
    times = {}
    load0 = os.getloadavg()
    for spec in ("hog", "lbp", "hog+lbp"):
        t = time.perf_counter()
        F = compute_features(make_features(spec), ds.images, cache=False, n_jobs=args.n_jobs)
        times[spec] = {"seconds": round(time.perf_counter() - t, 2), "n_features": F.shape[1]}
        print(spec, times[spec], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, run_record(n_images=len(ds), n_jobs=args.n_jobs, timings=times,
                                    load_average_at_start=load0))


if __name__ == "__main__":
    main()
