"""Shared helpers of the classical benchmarks: versions, run records, markdown tables."""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def versions() -> dict:
    out = {}
    for pkg in ("classicfer", "numpy", "scikit-learn", "scikit-image", "xgboost", "dlib-bin",
                "skl2onnx", "onnxruntime", "joblib", "opencv-contrib-python-headless"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_record(**kw) -> dict:
    import os

    return {"command": " ".join([sys.executable.split("/")[-1]] + sys.argv), **kw,
            "versions": versions(), "git_commit": git_commit(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg()}


def write_csv(path, rows):
    if not rows:
        return
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def read_csv(path):
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")
