"""Benchmark: cold and warm (cached) loading of FER-2013 (and CK+48) into arrays.

Each trial runs in a fresh Python process and times ``load_dataset(path)`` only
(imports excluded; they are reported separately).

- cold: ``cache=False``: list, read and decode every file. With ``--drop-page-cache``
  (default) the dataset's files are first evicted from the OS page cache with
  ``posix_fadvise(DONTNEED)`` (only these files, nothing else on the machine), so the
  figure includes disk reads.
- first: empty classicfer cache: a cold load plus writing the ``.npz``.
- warm: the ``.npz`` exists: one ``stat`` per file for the key, then ``np.load``.

FER-2013's other distribution, the CSV, is rebuilt from the folder into a temporary
file (``--no-csv`` to skip) and timed the same way (its "cold" parses 300 MB of text).

The cache lives in a temporary folder (never the repository). Targets: cold <= 30 s,
warm <= 2 s for FER-2013.

Usage::

    nice -n 10 python benchmarks/load_datasets.py            # writes results/datasets/
    python benchmarks/load_datasets.py --repeats 1 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from classicfer.provenance import git_commit, versions

ROOT = Path(__file__).resolve().parents[1]
#: packages the loading figures depend on (their versions go in the record)
PACKAGES = ("classicfer", "numpy", "opencv-contrib-python-headless", "pillow")
SHARED = ROOT.parent / "shared" / "datasets"
TARGETS = {"cold": 30.0, "warm": 2.0}

TRIAL = r"""
import json, sys, time
t0 = time.perf_counter()
from classicfer.datasets import load_dataset
t1, c1 = time.perf_counter(), time.process_time()
ds = load_dataset(sys.argv[1], cache=sys.argv[2] == "1")
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "cpu_s": c2 - c1, "n": len(ds),
                  "shape": list(getattr(ds.images, "shape", [])), "format": ds.format}))
"""


def drop_page_cache(root: Path) -> int:
    """Evict the dataset's files (only them) from the OS page cache; return the count."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    n = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    return n


def write_fer_csv(folder: Path, out_dir: Path) -> Path:
    """Rebuild the original ``fer2013.csv`` (emotion,pixels,Usage) from the folder layout."""
    sys.path.insert(0, str(ROOT))
    from classicfer.datasets import load_dataset
    from classicfer.labels import FER2013_IDS

    ds = load_dataset(folder, cache=False)
    ids = {v: k for k, v in FER2013_IDS.items()}
    usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    out = out_dir / "fer2013.csv"
    with open(out, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        fh.writelines(f"{ids[lab]},{' '.join(map(str, img.ravel()))},{usage[sp]}\n"
                      for img, lab, sp in zip(ds.images, ds.labels, ds.splits, strict=True))
    return out


def trial(path: Path, cache: bool, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", TRIAL, str(path), "1" if cache else "0"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(name: str, path: Path, repeats: int, drop: bool, env: dict) -> dict:
    res = {"dataset": name, "path": str(path), "cold": [], "first": [], "warm": []}
    for _ in range(repeats):
        if drop:
            drop_page_cache(path)
        res["cold"].append(trial(path, False, env))
    cache = Path(env["CLASSICFER_CACHE"]) / "datasets"
    for f in cache.glob("*.np[yz]") if cache.exists() else []:
        f.unlink()
    if drop:
        drop_page_cache(path)
    res["first"].append(trial(path, True, env))
    for _ in range(max(repeats, 3)):
        res["warm"].append(trial(path, True, env))
    npz = sorted(cache.glob("*.np[yz]"))
    res["cache_file_bytes"] = sum(f.stat().st_size for f in npz)
    for k in ("cold", "first", "warm"):
        times = [t["load_s"] for t in res[k]]
        res[f"median_{k}_s"] = statistics.median(times)
        res[f"min_{k}_s"] = min(times)
        res[f"max_{k}_s"] = max(times)
        res[f"median_{k}_cpu_s"] = statistics.median(t["cpu_s"] for t in res[k])
    res["n_images"] = res["warm"][0]["n"]
    res["shape"] = res["warm"][0]["shape"]
    res["import_s"] = statistics.median(t["import_s"] for t in res["warm"])
    return res


def render(report: dict) -> str:
    lines = ["# Dataset loading benchmark", "",
             (f"Generated by `{report['command']}` on {report['date']} "
             f"(git {str(report['git_commit'])[:10]})."), "",
             (f"Machine: {report['machine']['cpus']} CPUs, load average at start "
             f"{report['machine']['loadavg_start']}, Python {report['versions']['python']}, "
             f"numpy {report['versions'].get('numpy')}, opencv "
             f"{report['versions'].get('opencv-contrib-python-headless')}."),
             (f"Cold trials evict the dataset files from the OS page cache first: "
             f"{report['drop_page_cache']}."), "",
             ("| dataset | images | cold load (s) | first load + cache write (s) | "
              "warm load (s) | cold CPU (s) | warm CPU (s) | cache files (MB) | target |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        tgt = (f"cold <= {TARGETS['cold']:.0f} s, warm <= {TARGETS['warm']:.0f} s"
               if r["dataset"] == "fer2013" else "warm <= 2 s" if r["dataset"] ==
               "fer2013-csv" else "")
        lines.append(
            f"| {r['dataset']} | {r['n_images']:,} | {r['median_cold_s']:.2f} "
            f"({r['min_cold_s']:.2f}-{r['max_cold_s']:.2f}) | {r['median_first_s']:.2f} | "
            f"{r['median_warm_s']:.2f} ({r['min_warm_s']:.2f}-{r['max_warm_s']:.2f}) | "
            f"{r['median_cold_cpu_s']:.2f} | {r['median_warm_cpu_s']:.2f} | "
            f"{r['cache_file_bytes'] / 1e6:.1f} | {tgt} |")
    lines += ["", ("Wall time: median of the trials (min-max in brackets); each trial is a "
                   "fresh process timing `load_dataset(path)` only (imports excluded: "
                   f"{report['results'][0]['import_s']:.2f} s). CPU: user+system time of "
                   "that process (all threads), less sensitive than wall time to other jobs "
                   "sharing the machine (load average at the end: "
                   f"{report['machine']['loadavg_end']})."), ""]
    for r in report["results"]:
        if r["dataset"] == "fer2013":
            ok_c = r["median_cold_s"] <= TARGETS["cold"]
            ok_w = r["median_warm_s"] <= TARGETS["warm"]
            lines.append(f"FER-2013 targets: cold {'met' if ok_c else 'NOT met'}, "
                         f"warm {'met' if ok_w else 'NOT met'}.")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = report["results"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    kinds = [("median_cold_s", "cold (no cache)"), ("median_first_s", "first (write cache)"),
             ("median_warm_s", "warm (cached)")]
    w = 0.25
    for j, (key, label) in enumerate(kinds):
        xs = [i + (j - 1) * w for i in range(len(rs))]
        vals = [r[key] for r in rs]
        ax.bar(xs, vals, w, label=label)
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(TARGETS["cold"], color="C0", ls="--", lw=0.8)
    ax.axhline(TARGETS["warm"], color="C2", ls="--", lw=0.8)
    ax.text(len(rs) - 0.5, TARGETS["cold"], "cold target 30 s", fontsize=7, ha="right",
            va="bottom")
    ax.text(len(rs) - 0.5, TARGETS["warm"], "warm target 2 s", fontsize=7, ha="right",
            va="bottom")
    ax.set_xticks(range(len(rs)), [f"{r['dataset']}\n({r['n_images']:,} images)" for r in rs])
    ax.set_ylabel("seconds (median)")
    ax.set_title("load_dataset() wall time", fontsize=10)
    ax.legend(fontsize=7, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-drop-page-cache", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results" / "datasets"))
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--no-csv", action="store_true",
                    help="Skip the FER-2013 CSV (rebuilt from the folder in a temp dir).")
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    sets = [(n, shared / n) for n in ("fer2013", "ckplus48") if (shared / n).is_dir()]
    if not sets:
        print(f"no datasets under {shared}", file=sys.stderr)
        return 1
    report = {
        "command": "python benchmarks/load_datasets.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit()["commit"],
        "seed": None,
        "repeats": args.repeats,
        "drop_page_cache": not args.no_drop_page_cache,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(PACKAGES),
        "targets_s": TARGETS,
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="classicfer-bench-cache-") as tmp, \
            tempfile.TemporaryDirectory(prefix="classicfer-bench-csv-") as csv_dir:
        env = dict(os.environ, CLASSICFER_CACHE=tmp)
        if not args.no_csv and sets[0][0] == "fer2013":
            sets.insert(1, ("fer2013-csv", write_fer_csv(sets[0][1], Path(csv_dir))))
        for name, path in sets:
            t = time.time()
            report["results"].append(bench(name, path, args.repeats,
                                           not args.no_drop_page_cache, env))
            print(f"{name}: done in {time.time() - t:.0f} s", file=sys.stderr)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load_benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "load_benchmark.md").write_text(render(report))
    plot(report, out / "load_benchmark.png")
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
