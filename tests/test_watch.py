"""``classicfer watch``: tracking, smoothing, headless video in/out, clean endings."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.exceptions import ConfigError
from classicfer.export._testing import make_linear_model
from classicfer.runtime import Predictor
from classicfer.runtime._watch import IoUTracker, iou, parse_smoothing

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"
N_FRAMES = 10


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(make_linear_model(tmp_path_factory.mktemp("m") / "linear"))


def _frames(n=N_FRAMES, size=(240, 320)):
    """The astronaut photo sliding right by 4 px a frame (BGR frames)."""
    import cv2

    from classicfer.imageio import read_image

    img = cv2.cvtColor(cv2.resize(read_image(ASTRONAUT), (256, 256)), cv2.COLOR_RGB2BGR)
    h, w = size
    out = []
    for i in range(n):
        fr = np.full((h, w, 3), 90, np.uint8)
        dx = 8 + 4 * i
        fr[:, dx:dx + 256] = img[:h, : min(256, w - dx)]
        out.append(fr)
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("v") / "astronaut.mp4"
    frames = _frames()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                        frames[0].shape[1::-1])
    for f in frames:
        w.write(f)
    w.release()
    return path


def _count_frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_parse_smoothing():
    assert parse_smoothing("ema:0.5") == ("ema", 0.5)
    assert parse_smoothing("window:4") == ("window", 4)
    assert parse_smoothing("none") == ("none", 0)
    for bad in ("ema:2", "window:0", "median:3", "ema:x"):
        with pytest.raises(ConfigError, match="bad smoothing"):
            parse_smoothing(bad)


def test_tracker_keeps_ids_and_smooths():
    tr = IoUTracker(smoothing="ema:0.5", max_missed=1)
    p1, p2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    (a,) = tr.update([(0, 0, 50, 50)], [p1])
    (b,) = tr.update([(4, 0, 50, 50)], [p2])  # same face moved a little
    assert a.id == b.id == 1
    assert np.allclose(b.proba, [0.5, 0.5])
    (c,) = tr.update([(200, 200, 50, 50)], [p1])  # a different face
    assert c.id == 2
    tr.update([], [])
    tr.update([], [])
    assert tr.tracks == []  # both ended after max_missed frames unseen


def test_window_smoothing():
    tr = IoUTracker(smoothing="window:2")
    for p in ([1.0, 0.0], [0.0, 1.0], [0.0, 1.0]):
        (t,) = tr.update([(0, 0, 50, 50)], [np.array(p)])
    assert np.allclose(t.proba, [0.0, 1.0])  # only the last two frames


def test_watch_video_headless(model, video, tmp_path):
    out, csv_path = tmp_path / "annotated.mp4", tmp_path / "per-frame.csv"
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", model,
                                 "--out", str(out), "--csv", str(csv_path),
                                 "--min-size", "40", "--smooth", "window:3"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert f"{N_FRAMES} frames" in r.output and "fps" in r.output
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) >= N_FRAMES - 1  # one face per frame (haar may miss one)
    assert {row["track"] for row in rows} == {"1"}  # one tracked face
    assert sorted({int(row["frame"]) for row in rows}) == sorted(int(r["frame"]) for r in rows)
    xs = [int(row["x"]) for row in rows]
    assert xs[-1] > xs[0]  # the face moves right
    for row in rows:
        probs = [float(v) for k, v in row.items() if k.startswith("p_") and v]
        assert sum(probs) == pytest.approx(1, abs=1e-3)
    assert not any(k in row for k in ("pixels", "image") for row in rows)
    assert _count_frames(out) == N_FRAMES


def test_watch_draws_the_notice(model, video, tmp_path):
    """The output video carries the notice banner (custom text) on every frame."""
    import cv2

    from classicfer.runtime._draw import draw_notice

    out = tmp_path / "n.mp4"
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", model, "--out",
                                 str(out), "--notice", "Cameras analyse expressions here",
                                 "--max-frames", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    cap.release()
    assert ok
    # the banner: bottom rows are darkened and contain bright text pixels
    bottom = frame[-20:].astype(int)
    src = _frames(1)[0][-20:].astype(int)
    assert bottom.mean() < 0.6 * src.mean()
    assert (bottom > 200).any()
    # and drawing it changes the frame only in that strip
    f = np.full((240, 320, 3), 100, np.uint8)
    draw_notice(f, "x")
    assert (f[:200] == 100).all() and (f[-10:] != 100).any()


def test_watch_blur_faces_in_video(model, video, tmp_path):
    import cv2

    out = tmp_path / "b.mp4"
    csv_path = tmp_path / "b.csv"
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", model, "--out",
                                 str(out), "--csv", str(csv_path), "--blur-faces",
                                 "--min-size", "40", "--max-frames", "1"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    row = next(csv.DictReader(csv_path.open()))
    x, y, w, h = (int(row[k]) for k in "xywh")
    cap = cv2.VideoCapture(str(out))
    frame = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2GRAY).astype(float)
    cap.release()
    src = cv2.cvtColor(_frames(1)[0], cv2.COLOR_BGR2GRAY).astype(float)
    cx, cy = x + w // 2, y + h // 2
    a = frame[cy - h // 4: cy + h // 4, cx - w // 4: cx + w // 4]
    b = src[cy - h // 4: cy + h // 4, cx - w // 4: cx + w // 4]
    assert np.abs(np.diff(a, axis=1)).mean() < 0.4 * np.abs(np.diff(b, axis=1)).mean()


def test_nothing_written_unless_asked(model, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", model,
                                 "--max-frames", "2"])
    assert r.exit_code == 0, r.output
    assert list(tmp_path.iterdir()) == []


def test_missing_camera_is_a_one_line_error(model):
    r = CliRunner().invoke(cli, ["watch", "--camera", "57", "--model", model])
    assert r.exit_code == 1
    assert r.output.startswith("Error: camera 57: cannot open it")
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("content, match", [
    (None, "no such video file"),
    (b"", "cannot open it as a video|no readable frame"),
    (b"\x00garbage" * 100, "cannot open it as a video|no readable frame"),
])
def test_bad_video_files(model, tmp_path, content, match):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    r = CliRunner().invoke(cli, ["watch", "--video", str(path), "--model", model])
    assert r.exit_code == 1
    assert r.output.startswith("Error: ")
    import re

    assert re.search(match, r.output)


def test_camera_disconnect_closes_outputs_cleanly(model, tmp_path, monkeypatch):
    """A camera that stops giving frames mid-stream: CSV and video so far are valid."""
    from classicfer.runtime import _watch

    frames = _frames(6)

    class FakeCamera:
        def __init__(self):
            self.i = 1

        def read(self):
            if self.i >= 4:  # unplugged after 4 frames
                return False, None
            self.i += 1
            return True, frames[self.i - 1]

        def get(self, prop):
            return 0.0  # cameras often report no FPS

        def release(self):
            self.released = True

    cam = FakeCamera()
    monkeypatch.setattr(_watch, "open_source", lambda camera, video: (cam, frames[0], "camera 0"))
    out, csv_path = tmp_path / "cam.mp4", tmp_path / "cam.csv"
    stats = _watch.watch(Predictor(model, min_size=40), camera=0, out=out, csv=csv_path)
    assert stats["ended"] == "camera disconnected"
    assert stats["frames"] == 4
    assert cam.released
    assert _count_frames(out) == 4
    rows = list(csv.DictReader(csv_path.open()))
    assert {int(r["frame"]) for r in rows} <= {0, 1, 2, 3} and rows


def test_interrupt_closes_outputs_cleanly(model, video, tmp_path):
    out, csv_path = tmp_path / "i.mp4", tmp_path / "i.csv"
    from classicfer.runtime import _watch

    def stop(idx, faces, tracks):
        if idx == 2:
            raise KeyboardInterrupt

    stats = _watch.watch(Predictor(model, min_size=40), video=video, out=out, csv=csv_path,
                         on_frame=stop)
    assert stats["ended"] == "interrupted"
    assert _count_frames(out) == 3
    rows = list(csv.DictReader(csv_path.open()))
    assert max(int(r["frame"]) for r in rows) == 2


def test_show_without_display_warns_and_continues(model, video, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = CliRunner().invoke(cli, ["watch", "--video", str(video), "--model", model, "--show",
                                 "--max-frames", "2"])
    assert r.exit_code == 0, r.output
    assert "--show ignored" in r.output


def test_roi_detection_follows_the_face(model, video, tmp_path):
    """Between full scans, detection around the track finds the same (moving) face."""
    from classicfer.runtime import _watch

    calls = {"full": 0}
    pred = Predictor(model, min_size=40)
    real = pred.find_faces

    def counting(img):
        calls["full"] += 1
        return real(img)

    pred.find_faces = counting
    csv_path = tmp_path / "roi.csv"
    stats = _watch.watch(pred, video=video, csv=csv_path, full_scan_every=5)
    assert stats["frames"] == N_FRAMES
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) >= N_FRAMES - 1 and {r["track"] for r in rows} == {"1"}
    xs = [int(r["x"]) for r in rows]
    assert xs[-1] > xs[0]
    assert calls["full"] < N_FRAMES  # the other frames used the tracked region
