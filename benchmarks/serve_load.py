"""Load test of ``classicfer serve`` on loopback: a bounded client, stops by itself.

Starts ``classicfer serve`` on 127.0.0.1 (a free port) in a subprocess, waits for
``GET /health``, sends ``--warmup`` requests (not counted), then ``--requests``
``POST /predict`` requests (default 2,000) from ``--concurrency`` client threads
(default 8), each with one keep-alive connection, every request one 640x480 JPEG
with one face (``classicfer/data/astronaut.jpg`` resized to 480x480 on a grey
640x480 canvas, quality 90; the same frame as ``benchmarks/latency.py``).

A request counts as OK when it answers 200 with exactly one face. The run stops
after ``--requests`` requests or ``--max-seconds``, whichever comes first; each
request has a 30 s timeout. The server's resident memory (VmRSS) is sampled every
0.2 s, and its CPU time is read before and after, so the report shows whether
memory stays flat and how much CPU one request costs.

Only loopback is contacted. Results go to ``results/serve/<tag>.json``; then
``results/serve.md`` is regenerated from every JSON file in ``results/serve/``.

Usage::

    python benchmarks/serve_load.py                          # default model and detector
    python benchmarks/serve_load.py --tag min-size-80 -- --min-size 80
    python benchmarks/serve_load.py --test-model --tag linear-test   # no bundled model

Arguments after ``--`` go to ``classicfer serve``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from classicfer.provenance import git_commit, versions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_frame  # noqa: E402 (the same frame in both benchmarks; needs sys.path)

RESULTS = ROOT / "results"
TARGET_RPS = 50.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def busiest_processes(n=4) -> list[str]:
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True,
                             text=True, timeout=10, check=False).stdout.splitlines()[1:n + 1]
        return [" ".join(line.split()) for line in out]
    except (OSError, subprocess.SubprocessError):
        return []


def get_json(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def wait_healthy(port, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"classicfer serve exited with code {proc.returncode}")
        try:
            status, body = get_json(port, "/health", timeout=2)
            if status == 200 and body.get("status") == "ok":
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise RuntimeError("classicfer serve did not become healthy in time")


class Load:
    """``n`` POSTs from ``concurrency`` threads with keep-alive connections."""

    def __init__(self, port, body, n, concurrency, max_seconds):
        self.port, self.body, self.n = port, body, n
        self.concurrency, self.max_seconds = concurrency, max_seconds
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _take(self, deadline):
        with self.lock:
            if self.next >= self.n or time.monotonic() > deadline:
                return None
            self.next += 1
            return self.next

    def _worker(self, deadline):
        conn = None
        while self._take(deadline) is not None:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/predict", body=self.body,
                             headers={"Content-Type": "image/jpeg"})
                r = conn.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                err = None
                if r.status != 200:
                    err = f"HTTP {r.status}: {data[:120]!r}"
                elif len(json.loads(data)["faces"]) != 1:
                    err = "200 but not exactly one face"
            except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
                dt = time.perf_counter() - t0
                err = f"{type(e).__name__}: {e}"
                conn.close()
                conn = None
            with self.lock:
                self.done += 1
                if err is None:
                    self.latencies.append(dt)
                else:
                    self.errors.append(err)
        if conn is not None:
            conn.close()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        threads = [threading.Thread(target=self._worker, args=(deadline,), daemon=True)
                   for _ in range(self.concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.max_seconds + 60)
        return time.perf_counter() - t0


def percentile(xs, q):
    import numpy as np

    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


#: packages the serve figures depend on (their versions go in the record)
PACKAGES = ("classicfer", "numpy", "onnxruntime", "opencv-contrib-python-headless", "pillow",
            "starlette", "uvicorn", "python-multipart")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(args, serve_args) -> dict:
    body = make_frame()
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="serve_load_"))
    if args.test_model:
        from classicfer.export._testing import make_linear_model

        serve_args = ["--model", str(make_linear_model(tmp / "linear-test")), *serve_args]
    cmd = [sys.executable, "-m", "classicfer.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), *serve_args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    samples = []
    try:
        wait_healthy(port, proc)
        _, model = get_json(port, "/model")
        warm = Load(port, body, args.warmup, min(args.concurrency, 2), 120)
        warm.run()
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {warm.errors[:3]}")
        load = Load(port, body, args.requests, args.concurrency, args.max_seconds)
        stop = threading.Event()

        def sample():
            t0 = time.perf_counter()
            while not stop.is_set():
                samples.append((time.perf_counter() - t0, load.done, rss_mb(proc.pid)))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        load_before = os.getloadavg()
        busy_before = busiest_processes()
        cpu0, client0 = cpu_seconds(proc.pid), time.process_time()
        sampler.start()
        wall = load.run()
        stop.set()
        sampler.join(5)
        cpu1, client1 = cpu_seconds(proc.pid), time.process_time()
        load_after = os.getloadavg()
        _, health = get_json(port, "/health")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    lat = load.latencies
    rss = [(t, d, r) for t, d, r in samples if r is not None]

    def rss_at(frac):
        want = frac * load.done
        return next((r for _, d, r in rss if d >= want), rss[-1][2] if rss else None)

    n_ok = len(lat)
    cpu_ms = ((cpu1 - cpu0) * 1000 / max(load.done, 1)) if cpu0 is not None and cpu1 else None
    return {
        "tag": args.tag,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "serve_command": " ".join(["classicfer", *cmd[3:]]),
        "model": (model.get("model") or {}).get("name"),
        "model_kind": (model.get("model") or {}).get("kind"),
        "detector": model.get("detector"),
        "workers": (model.get("limits") or {}).get("workers"),
        "frame": {"width": 640, "height": 480, "jpeg_bytes": len(body)},
        "requests": load.done, "requested": args.requests, "concurrency": args.concurrency,
        "warmup": args.warmup, "ok": n_ok, "errors": len(load.errors),
        "error_examples": sorted(set(load.errors))[:5],
        "wall_s": round(wall, 3), "requests_per_s": round(load.done / wall, 2),
        "latency_ms": {k: round(percentile(lat, q) * 1000, 1)
                       for k, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))},
        "server_cpu_ms_per_request": None if cpu_ms is None else round(cpu_ms, 1),
        "client_cpu_ms_per_request": round((client1 - client0) * 1000 / max(load.done, 1), 2),
        "rss_mb": {"start": rss_at(0.0), "p25": rss_at(0.25), "p50": rss_at(0.5),
                   "p75": rss_at(0.75), "end": rss[-1][2] if rss else None,
                   "max": max((r for _, _, r in rss), default=None),
                   "samples": len(rss)},
        "rss_trace": [[round(t, 1), d, round(r, 1)] for t, d, r in rss[:: max(1, len(rss) // 60)]],
        "server_served": health.get("served"),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "busiest_processes_before": busy_before,
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(),
                    "platform": platform.platform()},
        "versions": versions(PACKAGES), "git_commit": git_commit()["commit"],
    }


def ceiling(r) -> str:
    cpu = (r.get("server_cpu_ms_per_request") or 0) + (r.get("client_cpu_ms_per_request") or 0)
    cores = (r.get("machine") or {}).get("cpus") or 1
    return f"{cores * 1000 / cpu:.0f}" if cpu > 0 else "n/a"


def render(results: list[dict]) -> str:
    lines = [
        "# `classicfer serve` load test (loopback)",
        "",
        ("Generated by `benchmarks/serve_load.py` from `results/serve/*.json`; do not edit by "
         "hand. Each run: one `classicfer serve` process on 127.0.0.1, a client on the same "
         "machine (threads with keep-alive connections), every request one 640x480 JPEG with "
         "one face; OK = HTTP 200 with exactly one face. The client shares the 2 CPU cores "
         "with the server (and with whatever else runs, see the load average)."),
        "",
        f"Target: >= {TARGET_RPS:g} requests/s with the default model, no errors, memory flat.",
        "",
        ("*CPU ceiling* is an estimate, not a measurement: 2 cores x 1000 ms / (server + "
         "client CPU ms per request), i.e. the rate this work would reach if it had both cores "
         "to itself. The measured req/s depend on the other processes running (load average)."),
        "",
        ("| run | model | detector | requests done/asked | conc. | errors | req/s | p50 ms | "
         "p95 ms | p99 ms | server CPU ms/req | CPU ceiling req/s (est.) | "
         "RSS start -> end (max) MB | "
         f"load avg before -> after | target {TARGET_RPS:g} req/s |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["rss_mb"]
        lat = r["latency_ms"]
        met = "met" if r["requests_per_s"] >= TARGET_RPS and r["errors"] == 0 else "NOT met"
        lines.append(
            f"| {r['tag']} | {r['model']} ({r['model_kind']}) | {r['detector']} | "
            f"{r['requests']}/{r['requested']} | {r['concurrency']} | {r['errors']} | "
            f"{r['requests_per_s']:.1f} | "
            f"{lat['p50']:.0f} | {lat['p95']:.0f} | {lat['p99']:.0f} | "
            f"{r['server_cpu_ms_per_request']} | {ceiling(r)} | {m['start']:.0f} -> {m['end']:.0f} "
            f"({m['max']:.0f}) | {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f} | "
            f"{met} |")
    lines += ["", "## Runs", ""]
    for r in results:
        m = r["rss_mb"]
        lines += [
            f"### {r['tag']}",
            "",
            f"- date (UTC): {r['date_utc']}; git commit {r['git_commit']}",
            f"- command: `{r['command']}`",
            f"- server: `{r['serve_command']}` (workers: {r['workers']})",
            (f"- frame: {r['frame']['width']}x{r['frame']['height']} JPEG, "
             f"{r['frame']['jpeg_bytes']:,} bytes; warm-up {r['warmup']} requests not counted"),
            (f"- {r['requests']} of {r['requested']} requests in {r['wall_s']:.1f} s, "
             f"{r['ok']} OK, {r['errors']} errors"
             + (f" (e.g. {r['error_examples']})" if r["errors"] else "")),
            (f"- latency ms: p50 {r['latency_ms']['p50']}, p95 {r['latency_ms']['p95']}, "
             f"p99 {r['latency_ms']['p99']}, max {r['latency_ms']['max']}"),
            (f"- CPU per request: server {r['server_cpu_ms_per_request']} ms, client "
             f"{r['client_cpu_ms_per_request']} ms"),
            (f"- server RSS MB at 0/25/50/75/100 % of the run: {m['start']:.1f} / {m['p25']:.1f} "
             f"/ {m['p50']:.1f} / {m['p75']:.1f} / {m['end']:.1f} (max {m['max']:.1f}, "
             f"{m['samples']} samples)"),
            (f"- load average (1/5/15 min) before: {r['loadavg_before']}, after: "
             f"{r['loadavg_after']}; busiest processes before (ps %CPU): "
             f"{'; '.join(r['busiest_processes_before'])}"),
            (f"- machine: {r['machine']['cpus']} CPUs, {r['machine']['cpu']}, "
             f"{r['machine']['platform']}"),
            "- versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
            "",
        ]
    return "\n".join(lines)


def write_report(results_dir: Path) -> None:
    runs = [json.loads(p.read_text()) for p in sorted((results_dir / "serve").glob("*.json"))]
    runs.sort(key=lambda r: r["date_utc"])
    (results_dir / "serve.md").write_text(render(runs) + "\n")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    serve_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, serve_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="Stop sending after this long even if requests remain.")
    ap.add_argument("--tag", default="default", help="Name of this run (results/serve/<tag>.json)")
    ap.add_argument("--test-model", action="store_true",
                    help="Serve a tiny random linear model (when no model is bundled).")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--render-only", action="store_true",
                    help="Only regenerate serve.md from results/serve/*.json.")
    args = ap.parse_args(argv)
    out_dir = args.results / "serve"
    if args.render_only:
        write_report(args.results)
        return 0
    if not (1 <= args.concurrency <= 64 and 1 <= args.requests <= 100_000):
        ap.error("--concurrency must be in 1..64 and --requests in 1..100000")
    res = run(args, serve_args)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    write_report(args.results)
    print(json.dumps({k: res[k] for k in ("tag", "requests", "errors", "requests_per_s",
                                          "latency_ms", "server_cpu_ms_per_request", "rss_mb")},
                     indent=1))
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
