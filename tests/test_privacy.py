"""Privacy defaults: no socket anywhere in the runtime, faces blurred on request,
nothing written unless asked, CSV without pixels.
"""

import csv
import io
import json
import os
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import classicfer
from classicfer.cli import cli
from classicfer.export._testing import make_linear_model
from classicfer.netguard import NetworkAccessError, network_blocked, no_network

ASTRONAUT = Path(classicfer.__file__).parent / "data" / "astronaut.jpg"


@pytest.fixture
def model_dir(tmp_path_factory):
    return make_linear_model(tmp_path_factory.mktemp("model") / "linear")


@pytest.fixture
def offline():
    """Fails the test if anything inside opened a socket (even if it swallowed the error)."""
    with no_network() as attempts:
        yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


# ------------------------------------------------------------------ the guard itself


@pytest.mark.parametrize("attempt", [
    lambda: socket.socket(),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.1),
    lambda: socket.getaddrinfo("localhost", 80),
    lambda: urllib.request.urlopen("http://127.0.0.1:9", timeout=0.1),
], ids=["socket", "udp", "create_connection", "getaddrinfo", "urlopen"])
def test_guard_blocks_every_way_to_the_network(attempt):
    with no_network() as attempts:
        assert network_blocked()
        with pytest.raises(NetworkAccessError, match="network access attempted"):
            attempt()
        assert attempts
    assert not network_blocked()


def test_guard_sees_sockets_created_from_a_saved_reference():
    import _socket

    saved = socket.socket  # taken before the guard: the audit hook still sees it
    with no_network():
        with pytest.raises(NetworkAccessError):
            saved()
        with pytest.raises(NetworkAccessError):
            _socket.socket()


def test_guard_restores_the_network_afterwards():
    with no_network():
        pass
    s = socket.socket()
    s.close()
    assert socket.socket.__name__ == "socket"


# ------------------------------------------------------------------ the runtime under the guard


def test_python_predict_opens_no_socket(model_dir, offline):
    faces = classicfer.predict(str(ASTRONAUT), model=str(model_dir))
    assert len(faces) == 1
    assert faces[0].probabilities is not None


def test_python_predict_default_pipeline_pieces_open_no_socket(model_dir, offline):
    from classicfer.runtime import Predictor

    # Load everything (model, Haar cascade, 5-point landmarks) inside the guard.
    p = Predictor(str(model_dir), detector="haar", landmarks="5")
    img = classicfer.imageio.read_image(ASTRONAUT)
    assert len(p.predict(img)) == 1


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--csv"]], ids=["table", "json", "csv"])
def test_cli_predict_opens_no_socket(model_dir, offline, fmt):
    r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(model_dir), *fmt])
    assert r.exit_code == 0, r.output


def test_bundled_default_model_opens_no_socket(offline):
    from classicfer.runtime import list_models

    assert list_models(), "no bundled model in classicfer/bundled_models/"
    r = CliRunner().invoke(cli, ["predict", "--demo", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["faces"]


# ------------------------------------------------------------------ nothing written unless asked


def _snapshot(*dirs):
    out = set()
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                p = Path(root) / f
                out.add((str(p), p.stat().st_mtime_ns))
    return out


def test_predict_writes_nothing_without_out(model_dir, tmp_path, monkeypatch):
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.chdir(work)
    before = _snapshot(home, work, model_dir, ASTRONAUT.parent)
    for fmt in ([], ["--json"], ["--csv"], ["--blur-faces"]):
        r = CliRunner().invoke(cli, ["predict", str(ASTRONAUT), "--model", str(model_dir), *fmt])
        assert r.exit_code == 0, r.output
    assert _snapshot(home, work, model_dir, ASTRONAUT.parent) == before


def test_csv_holds_labels_and_boxes_never_pixels(model_dir):
    r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(model_dir), "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.output)))
    header, data = rows[0], rows[1:]
    labels = json.loads((model_dir / "model.json").read_text())["labels"]
    assert header == ["path", "face", "x", "y", "w", "h", "label", "confidence", "status",
                      *[f"p_{lab}" for lab in labels], "error"]
    assert len(data) == 1
    for row in data:
        assert len(row) == len(header)
        for cell in row[1:]:
            assert len(cell) <= 32  # numbers, labels, status: no encoded image data


# ------------------------------------------------------------------ blurring


def _laplacian_var(gray):
    import cv2

    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def _inner(img, box, frac=0.2):
    x, y, w, h = box
    dx, dy = int(w * frac), int(h * frac)
    return img[y + dy:y + h - dy, x + dx:x + w - dx]


def test_blur_faces_blurs_the_saved_image(model_dir, tmp_path, offline):
    import cv2

    from classicfer.imageio import read_image

    r = CliRunner().invoke(cli, ["predict", str(ASTRONAUT), "--model", str(model_dir), "--json",
                                 "--out", str(tmp_path / "plain")])
    assert r.exit_code == 0, r.output
    box = json.loads(r.output)[0]["faces"][0]["box"]
    r = CliRunner().invoke(cli, ["predict", str(ASTRONAUT), "--model", str(model_dir),
                                 "--out", str(tmp_path / "blurred"), "--blur-faces"])
    assert r.exit_code == 0, r.output
    (plain,) = (tmp_path / "plain").iterdir()
    (blurred,) = (tmp_path / "blurred").iterdir()
    orig = cv2.cvtColor(read_image(ASTRONAUT), cv2.COLOR_RGB2GRAY)
    a = cv2.cvtColor(read_image(plain), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(read_image(blurred), cv2.COLOR_RGB2GRAY)
    face_orig, face_plain, face_blur = (_inner(im, box) for im in (orig, a, b))
    # Without --blur-faces the face is intact; with it, its detail is gone.
    assert _laplacian_var(face_plain) > 0.5 * _laplacian_var(face_orig)
    assert _laplacian_var(face_blur) < 0.05 * _laplacian_var(face_orig)
    assert face_blur.var() < 0.5 * face_orig.var()
    # Away from the face (bottom-left corner, no annotation there) nothing changed much.
    corner = (slice(400, 500), slice(10, 110))
    assert np.abs(b[corner].astype(int) - orig[corner].astype(int)).mean() < 4


def test_watch_blurs_faces_and_shows_notice_in_saved_video(model_dir, tmp_path, offline):
    import cv2

    from classicfer.imageio import read_image

    src = cv2.cvtColor(read_image(ASTRONAUT), cv2.COLOR_RGB2BGR)
    src[-60:] = 160  # a plain mid-grey strip at the bottom, where the notice banner goes
    video = tmp_path / "in.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (512, 512))
    if not w.isOpened():
        pytest.skip("OpenCV cannot write a test video here")
    for _ in range(4):
        w.write(src)
    w.release()
    out = tmp_path / "out.mp4"
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", str(model_dir),
                                 "--out", str(out), "--blur-faces", "--notice",
                                 "TEST NOTICE", "--quiet"])
    assert r.exit_code == 0, r.output  # --blur-faces and --notice must exist
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    cap.release()
    assert ok, "no frame in the saved video"
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    orig = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY)
    box = (170, 60, 108, 108)  # the Haar box of the astronaut's face (see predict --json)
    assert _laplacian_var(_inner(g, box)) < 0.1 * _laplacian_var(_inner(orig, box))
    # The notice: a dark banner across the bottom of the frame with light text on it.
    band = g[-12:]
    assert np.median(band) < 100  # darkened from 160
    assert (band > 220).sum() > 20  # white text (the strip itself is 160)


def test_guard_interleaved_across_threads_restores_the_network():
    """Thread A enters, thread B enters, A leaves, B leaves: the network comes back."""
    import threading

    original = socket.socket
    a_in, b_in, a_out = (threading.Event() for _ in range(3))
    seen = {}

    def thread_a():
        try:
            with no_network():
                a_in.set()
                seen["a_saw_b"] = b_in.wait(10)
        finally:
            a_out.set()

    def thread_b():
        seen["b_saw_a"] = a_in.wait(10)
        with no_network():
            b_in.set()
            seen["b_saw_a_leave"] = a_out.wait(10)
            # A has left, B has not: still guarded.
            seen["blocked_after_a_left"] = network_blocked()
            seen["patched_after_a_left"] = socket.socket is not original

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == dict.fromkeys(("a_saw_b", "b_saw_a", "b_saw_a_leave",
                                  "blocked_after_a_left", "patched_after_a_left"), True)
    assert not network_blocked()
    assert socket.socket is original
    s = socket.socket()
    s.close()
