"""classicfer leaves no trace in the user's home: onnxruntime's telemetry stays off.

onnxruntime writes a device id and an event database under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` (and, for ``serve``, looks up
Microsoft's event host) unless ``ORT_DISABLE_TELEMETRY`` is set before it loads.
These tests run real ``classicfer`` processes with ``HOME`` and ``XDG_CACHE_HOME``
pointed at an empty folder and check that the folder stays empty.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import classicfer

ASTRONAUT = Path(classicfer.__file__).parent / "data" / "astronaut.jpg"


@pytest.fixture
def clean_env(tmp_path):
    """(home, env) for a child process whose home and cache folder are empty."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home), CLASSICFER_CACHE="off",
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    return home, env


def _classicfer(*args):
    return [sys.executable, "-m", "classicfer.cli", *args]


def _files(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_importing_classicfer_disables_onnxruntime_telemetry():
    code = ("import os; os.environ['ORT_DISABLE_TELEMETRY'] = '0'; import classicfer; "
            "print(os.environ['ORT_DISABLE_TELEMETRY'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=True)
    assert r.stdout.strip() == "1"


def test_predict_leaves_home_empty(clean_env):
    home, env = clean_env
    r = subprocess.run(_classicfer("predict", "--demo"), env=env, capture_output=True, check=False,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _files(home) == []


def test_watch_leaves_home_empty(clean_env, tmp_path):
    import cv2

    home, env = clean_env
    frame = cv2.imread(str(ASTRONAUT))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5,
                             (frame.shape[1], frame.shape[0]))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write a test video here")
    for _ in range(3):
        writer.write(frame)
    writer.release()
    r = subprocess.run(_classicfer("watch", "--video", str(video), "--quiet"), env=env, check=False,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _files(home) == []


def _wait_for_line(proc, text, timeout):
    """True once ``proc`` prints a line holding ``text`` (read on a thread: never blocks)."""
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if line is None:
            return False
        if text in line:
            return True
    return False


def test_serve_leaves_home_empty(clean_env):
    pytest.importorskip("uvicorn")
    home, env = clean_env
    proc = subprocess.Popen(_classicfer("serve", "--port", "0"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for_line(proc, "classicfer serve:", 60), "classicfer serve did not start"
        time.sleep(2)
        assert proc.poll() is None, "classicfer serve exited early"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert _files(home) == []
