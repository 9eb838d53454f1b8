"""The kiosk page in headless Chromium with a fake camera showing a real face.

Chromium (Debian's ``chromium`` package) plays a short .y4m clip made here from
``skimage.data.astronaut()`` as its camera (``--use-file-for-fake-video-capture``);
the page sends frames to a real ``classicfer serve`` app on a loopback port, and the
test waits until a predicted label is shown, then saves a screenshot.

Chromium is driven over the DevTools protocol with the ``websockets`` package. The
test skips when Chromium, ``websockets`` or the serve extra is missing, or when
Chromium cannot start here. Set ``CLASSICFER_KIOSK_SCREENSHOT=path.png`` to keep
the screenshot (``results/serve_kiosk.png`` is made that way).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
ws_sync = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("CLASSICFER_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def write_y4m(path, image: np.ndarray, *, size=(640, 480), frames=10, fps=10) -> Path:
    """A short I420 .y4m clip (what Chromium's fake camera reads) of ``image``, letterboxed."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = round(iw * s) // 2 * 2, round(ih * s) // 2 * 2
    canvas = np.full((h, w, 3), 40, np.uint8)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    i420 = cv2.cvtColor(canvas, cv2.COLOR_RGB2YUV_I420)  # (h * 3/2, w): Y, U, V planes
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.write(i420.tobytes())
    return Path(path)


class ServerThread:
    """uvicorn on 127.0.0.1 with a free port, in a background thread."""

    def __init__(self, app):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Chromium:
    """A headless Chromium with a fake camera, driven over the DevTools protocol."""

    def __init__(self, exe, clip, profile: Path, *, size=(1280, 720)):
        self.profile = profile
        self.log = profile.parent / "chromium.log"
        self.args = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--no-proxy-server", "--mute-audio", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}",
            "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            "about:blank",
        ]
        self.proc = None
        self.ws = None
        self._stack = contextlib.ExitStack()
        self._id = 0

    def start(self, timeout=45) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {self.log_tail()}")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        pages = []
        while not pages:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if not pages:
                if time.monotonic() > deadline:
                    raise RuntimeError("Chromium has no page target")
                time.sleep(0.1)
        self.ws = self._stack.enter_context(ws_sync.connect(
            pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10, proxy=None))

    def log_tail(self, n=800) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def call(self, method, timeout=30, **params):
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        if self.ws is not None:
            with contextlib.suppress(RuntimeError, OSError, TimeoutError, ValueError,
                                     ws_exceptions.WebSocketException):
                self.call("Browser.close", timeout=5)
            self._stack.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


STATE_JS = """document.getElementById('top-label') === null ? '{}' : JSON.stringify({
  label: document.getElementById('top-label').dataset.label || '',
  text: document.getElementById('top-label').textContent,
  fps: document.getElementById('fps').textContent,
  faces: document.getElementById('nfaces').textContent,
  camera: document.getElementById('camera-state').textContent,
  message: document.getElementById('message').textContent,
  notice: document.getElementById('notice').innerText,
  bars: document.querySelectorAll('#bars .bar').length,
  video: [document.getElementById('video').videoWidth,
          document.getElementById('video').videoHeight],
})"""


def _predictor_for_test():
    """The real runtime with the default (bundled) model; a tiny random model if none ships."""
    from classicfer.exceptions import ModelError
    from classicfer.runtime import Predictor

    try:
        return Predictor(), "default"
    except ModelError:
        import tempfile

        from classicfer.export._testing import make_linear_model

        d = make_linear_model(Path(tempfile.mkdtemp()) / "linear")
        return Predictor(model=d), "linear-test"


@pytest.mark.slow
def test_kiosk_shows_a_label_from_the_fake_camera(tmp_path):
    from skimage.data import astronaut

    from classicfer.serve import create_app

    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    predictor, _ = _predictor_for_test()
    app = create_app([predictor], workers=1, rate=8)
    labels = app.state.service.info["labels"]
    clip = write_y4m(tmp_path / "face.y4m", astronaut())
    browser = Chromium(exe, clip, tmp_path / "profile")
    try:
        browser.start()
    except (RuntimeError, OSError) as e:
        browser.close()
        pytest.skip(f"Chromium cannot start here: {e}")
    try:
        with ServerThread(app) as srv:
            url = f"http://127.0.0.1:{srv.port}/?rate=8"
            browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=720,
                         deviceScaleFactor=1, mobile=False)
            browser.call("Page.navigate", url=url)
            deadline = time.monotonic() + 120
            state = {}
            while time.monotonic() < deadline:
                state = json.loads(browser.evaluate(STATE_JS) or "{}")
                if state.get("label") and float(state.get("fps") or 0) > 0:
                    break
                time.sleep(0.25)
            assert state.get("label") in labels, f"no label on the page: {state}"
            assert "Emotion recognition is running" in state["notice"]
            assert state["faces"] == "1", state
            assert state["bars"] == len(labels), state
            assert state["video"] == [640, 480], state
            time.sleep(1.5)  # let the bars smooth and the rate settle for the picture
            state = json.loads(browser.evaluate(STATE_JS))
            assert state["label"] in labels and not state["message"], state
            shot = browser.screenshot(tmp_path / "kiosk.png")
    finally:
        browser.close()
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 720)
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 20  # the video frame, not a blank page
    keep = os.environ.get("CLASSICFER_KIOSK_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)
