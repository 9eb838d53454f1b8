"""Helpers shared by the benchmarks: the benchmark frame and the run record."""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from pathlib import Path

from classicfer.provenance import git_commit, versions

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


def make_frame() -> bytes:
    """The benchmark frame of ``latency.py`` and ``serve_load.py``.

    Returns
    -------
    bytes
        A 640x480 JPEG (quality 90) with one face: the bundled astronaut photo resized
        to 480x480 on a grey canvas.
    """
    import numpy as np
    from PIL import Image

    face = Image.open(ASTRONAUT).convert("RGB").resize((480, 480), Image.BILINEAR)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = np.asarray(face)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


#: Packages whose versions a benchmark's record lists (those installed).
PACKAGES = ("classicfer", "numpy", "scikit-learn", "scikit-image", "xgboost", "dlib-bin",
            "skl2onnx", "onnxruntime", "joblib", "opencv-contrib-python-headless")


def run_record(**kw) -> dict:
    """The record written beside a benchmark's figures.

    Parameters
    ----------
    **kw
        Figures and settings of the run, stored as given.

    Returns
    -------
    dict
        ``kw`` plus the command, package versions, git commit, Python version, CPU count
        and the load average at the end.
    """
    return {"command": " ".join([sys.executable.split("/")[-1]] + sys.argv), **kw,
            "versions": versions(PACKAGES), "git_commit": git_commit()["commit"],
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg()}


def write_json(path, obj):
    """Write ``obj`` as indented JSON (non-JSON values as strings)."""
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")
