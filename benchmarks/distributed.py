"""Feature extraction on a 2-worker Dask LocalCluster vs local joblib; streaming memory.

Writes results/distributed.md and results/distributed.json:

1. wall time of sharded hog+lbp extraction (``extract_features_sharded``) of the
   FER-2013 manifest with local joblib (``n_jobs=2``) vs a LocalCluster of 2 worker
   processes (1 thread each); the two shard sets must be identical;
2. the same on Dask with one worker process SIGKILLed mid-run: the run must
   complete with identical features, each shard written once;
3. peak RSS of the streaming extractor (one process, chunks read one at a time)
   at 1x and 4x the manifest (the manifest repeated), each in a fresh process.

Default: all of FER-2013 (35,887 images). ``--limit N`` takes a seeded sample of N
rows (kept in manifest order) when the machine cannot afford the full run; the
report says which was used.

    nice -n 10 python benchmarks/distributed.py --limit 1000 --mem-limit 250
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this file is named like the ``distributed`` package: keep its folder off the import path
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from classicfer.distributed import (  # noqa: E402 (needs the sys.path fix above)
    extract_features_sharded,
    load_shards,
    stream_manifest,
)
from classicfer.provenance import versions  # noqa: E402 (likewise)


def manifest(args, limit):
    man = stream_manifest(args.data)
    if limit and limit < len(man):
        rng = np.random.default_rng(args.seed)
        man = man.subset(np.sort(rng.choice(len(man), limit, replace=False)))
    return man


def memory_child(args):
    """Run in a fresh process: stream-extract the manifest x repeat, print peak RSS."""
    man = manifest(args, args.mem_limit).repeat(args.repeat_child)
    out = tempfile.mkdtemp(prefix="cf-mem-")
    try:
        t0 = time.perf_counter()
        info = extract_features_sharded(man, args.features, {}, out,
                                        chunk_size=args.mem_chunk)
        secs = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child of a large
    # parent would report the parent's peak
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak_mb = int(line.split()[1]) / 1024
    print(json.dumps({"repeat": args.repeat_child, "n_images": info["n_images"],
                      "n_shards": info["n_shards"], "peak_rss_mb": round(peak_mb, 1),
                      "seconds": round(secs, 1)}))


#: packages the distributed figures depend on (their versions go in the record)
PACKAGES = ("classicfer", "numpy", "scikit-image", "scikit-learn", "joblib", "dask",
            "distributed")


def same(a, b):
    Xa, ya, pa = load_shards(a)
    Xb, yb, pb = load_shards(b)
    return bool(np.array_equal(Xa, Xb) and list(ya) == list(yb) and list(pa) == list(pb))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "fer2013"))
    ap.add_argument("--features", default="hog+lbp")
    ap.add_argument("--limit", type=int, default=0, help="sample N images (0: all)")
    ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--mem-limit", type=int, default=0, help="images at 1x for the RSS runs")
    ap.add_argument("--mem-chunk", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "results" / "distributed"))
    ap.add_argument("--memory-only", action="store_true",
                    help="rerun only the RSS runs, updating the existing results JSON")
    ap.add_argument("--repeat-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.repeat_child:
        return memory_child(args)

    if args.memory_only:
        res = json.loads(Path(args.out).with_suffix(".json").read_text())
        res["memory_command"] = " ".join([Path(sys.executable).name] + sys.argv)
        memory_runs(args, res)
        return write(res, Path(args.out))
    import distributed

    res = {"command": " ".join([Path(sys.executable).name] + sys.argv),
           "seed": args.seed, "versions": versions(PACKAGES), "python": platform.python_version(),
           "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    man = manifest(args, args.limit)
    res.update(n_images=len(man), features=args.features, chunk_size=args.chunk_size,
               full_dataset=not args.limit)
    work = Path(tempfile.mkdtemp(prefix="cf-dist-"))
    try:
        # 1a. local joblib
        t0 = time.perf_counter()
        a = extract_features_sharded(man, args.features, {}, work / "local",
                                     chunk_size=args.chunk_size, n_jobs=2)
        res["local_joblib_s"] = round(time.perf_counter() - t0, 1)
        res["n_shards"] = a["n_shards"]
        print("local", res["local_joblib_s"], flush=True)
        # 1b. Dask LocalCluster, 2 worker processes
        t0 = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=40)
        client = distributed.Client(cluster)
        res["cluster_start_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        extract_features_sharded(man, args.features, {}, work / "dask",
                                 chunk_size=args.chunk_size, client=client)
        res["dask_s"] = round(time.perf_counter() - t0, 1)
        res["dask_equals_local"] = same(work / "local", work / "dask")
        print("dask", res["dask_s"], res["dask_equals_local"], flush=True)
        # 2. kill one worker mid-run
        if not args.skip_kill:
            pids = client.run(os.getpid)  # {worker address: pid}
            victim_addr, victim = min(pids.items())
            box = {}

            def run():
                t = time.perf_counter()
                try:
                    box["info"] = extract_features_sharded(
                        man, args.features, {}, work / "killed", chunk_size=args.chunk_size,
                        client=client)
                except Exception as e:  # noqa: BLE001 (reported in the results, not hidden)
                    box["error"] = f"{type(e).__name__}: {e}"
                box["s"] = time.perf_counter() - t

            th = threading.Thread(target=run)
            th.start()
            kdir = work / "killed"
            while th.is_alive():  # kill once the first shard is committed
                if kdir.is_dir() and any(f.endswith(".json") and f.startswith("shard")
                                         for f in os.listdir(kdir)):
                    break
                time.sleep(0.2)
            done_before = len([f for f in os.listdir(kdir) if f.startswith("shard")
                               and f.endswith(".json")]) if kdir.is_dir() else 0
            os.kill(victim, signal.SIGKILL)
            print("killed", victim, "after", done_before, "shards", flush=True)
            th.join()
            shard_files = sorted(f for f in os.listdir(kdir) if f.startswith("shard"))
            res["kill"] = {
                "killed_pid": victim, "worker": victim_addr,
                "shards_done_before_kill": done_before, "seconds": round(box["s"], 1),
                "error": box.get("error"),
                "identical_to_local": (None if "error" in box
                                       else same(work / "local", kdir)),
                "shard_files": len(shard_files), "expected_shard_files": 2 * a["n_shards"],
                "rows": (None if "error" in box else len(load_shards(kdir)[2])),
                "unique_rows": (None if "error" in box
                                else len(set(load_shards(kdir)[2]))),
                "writer_pids": box.get("info", {}).get("pids"),
            }
            print("kill", res["kill"], flush=True)
        client.close()
        cluster.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    memory_runs(args, res)
    write(res, Path(args.out))


def memory_runs(args, res):
    """3. peak RSS, fresh process per size."""
    res["memory"] = []
    for k in (1, 4):
        cmd = [sys.executable, __file__, "--data", args.data, "--features", args.features,
               "--mem-limit", str(args.mem_limit), "--mem-chunk", str(args.mem_chunk),
               "--seed", str(args.seed), "--repeat-child", str(k)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        res["memory"].append(json.loads(out.strip().splitlines()[-1]))
        print("memory", res["memory"][-1], flush=True)
    res["load_after"] = os.getloadavg()
    res["uptime"] = subprocess.run(["uptime"], check=False, capture_output=True,
                                   text=True).stdout.strip()


def write(res, out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    n = res["n_images"]
    scope = "all of FER-2013" if res["full_dataset"] else \
        f"a seeded sample of {n} FER-2013 images (seed {res['seed']}, not the full 35,887)"
    lines = [
        "# Scaling out: sharded feature extraction on Dask",
        "",
        f"Generated by `benchmarks/distributed.py`. Command: `{res['command']}`",
        "",
        (f"Data: {scope}; features `{res['features']}`; {res['n_shards']} shards of "
        f"{res['chunk_size']} images. Machine: {res['cpus']} CPUs shared with other jobs; "
        f"load average before {res['load_before'][0]:.1f}, after "
        f"{res['load_after'][0]:.1f} (`{res['uptime']}`), so wall times are noisy and "
        "mostly measure contention."),
        "",
        *([f"Memory rows rerun with `{res['memory_command']}` (peak = VmHWM of the child)."]
          if res.get("memory_command") else []),
        "",
        "| Run | Wall s | Identical to local |",
        "|---|---|---|",
        f"| local joblib, n_jobs=2 | {res['local_joblib_s']} | (reference) |",
        (f"| Dask LocalCluster, 2 worker processes x 1 thread (+ {res['cluster_start_s']} s "
        f"start) | {res['dask_s']} | {res['dask_equals_local']} |"),
    ]
    k = res.get("kill")
    if k:
        lines.append(f"| Dask, one worker SIGKILLed after {k['shards_done_before_kill']} "
                     f"shard(s) | {k['seconds']} | {k['identical_to_local']} |")
        lines += ["", (f"Kill run: error={k['error']}; {k['rows']} rows, {k['unique_rows']} "
                  f"unique; {k['shard_files']} shard files (expected "
                  f"{k['expected_shard_files']}); shards written by worker pids "
                  f"{k['writer_pids']} (killed pid {k['killed_pid']}).")]
    lines += ["", "## Peak memory of the streaming extractor (one process, fresh per run)", "",
              "| Manifest | Images | Shards | Peak RSS MB | Seconds |", "|---|---|---|---|---|"]
    for m in res["memory"]:
        lines.append(f"| {m['repeat']}x | {m['n_images']} | {m['n_shards']} | "
                     f"{m['peak_rss_mb']} | {m['seconds']} |")
    if len(res["memory"]) == 2:
        a, b = res["memory"]
        lines += ["", (f"Peak RSS grows {b['peak_rss_mb'] - a['peak_rss_mb']:+.1f} MB from 1x to "
                  f"4x the images ({b['n_images'] - a['n_images']} more images; holding their "
                  f"pixels alone would take {(b['n_images'] - a['n_images']) * 48 * 48 / 2**20:.1f}"
                  " MB, their features more).")]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
              ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
