"""Live video: per-frame detection, an IoU tracker and temporal smoothing.

Each detected face is matched to a track by box overlap (greedy, highest IoU
first, ``iou >= min_iou``); a track not seen for ``max_missed`` frames ends.
Each track smooths its probabilities over time, either with an exponential
moving average (``"ema:ALPHA"``: ``p <- ALPHA * p_new + (1 - ALPHA) * p``) or a
sliding mean over the last N frames (``"window:N"``), or not at all
(``"none"``). Labels, confidences and the uncertain/too-small thresholds are
applied to the smoothed probabilities.

Outputs are written frame by frame and closed in a ``finally`` block, so a video
that ends, a camera that disconnects or Ctrl-C leaves a valid CSV and video.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError, ImageError
from ._predict import FaceResult


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + aw, bx + bw), min(ay + ah, by + bh)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def parse_smoothing(spec) -> tuple[str, float]:
    """``"ema:0.4"`` -> ("ema", 0.4); ``"window:5"`` -> ("window", 5); ``"none"``."""
    s = str(spec or "none").strip().lower()
    if s in ("none", "off", "0"):
        return ("none", 0)
    kind, _, val = s.partition(":")
    try:
        if kind == "ema":
            a = float(val or 0.3)
            if not 0 < a <= 1:
                raise ValueError
            return ("ema", a)
        if kind == "window":
            n = int(val or 5)
            if n < 1:
                raise ValueError
            return ("window", n)
    except ValueError:
        pass
    raise ConfigError(f"bad smoothing {spec!r}; use 'ema:ALPHA' (0 < ALPHA <= 1), "
                      f"'window:N' (N >= 1) or 'none'")


@dataclass
class Track:
    id: int
    box: tuple
    missed: int = 0
    hits: int = 0
    proba: np.ndarray | None = None
    history: deque = field(default_factory=deque)

    def update(self, p, smoothing):
        kind, val = smoothing
        if p is None:
            return
        p = np.asarray(p, dtype=np.float64)
        if kind == "ema":
            self.proba = p if self.proba is None else val * p + (1 - val) * self.proba
        elif kind == "window":
            self.history.append(p)
            while len(self.history) > val:
                self.history.popleft()
            self.proba = np.mean(self.history, axis=0)
        else:
            self.proba = p
        self.proba = self.proba / self.proba.sum()


class IoUTracker:
    """Greedy IoU matching of detections to tracks, with per-track smoothing."""

    def __init__(self, *, min_iou=0.3, max_missed=10, smoothing="ema:0.3"):
        self.min_iou = float(min_iou)
        self.max_missed = int(max_missed)
        self.smoothing = parse_smoothing(smoothing) if isinstance(smoothing, str) else smoothing
        self.tracks: list[Track] = []
        self._next = 1

    def update(self, boxes, probas) -> list[Track]:
        """Match this frame's boxes to tracks; return the track of each box, in order.

        ``probas`` holds each box's raw probabilities, or None.
        """
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks)
                        for bi, b in enumerate(boxes)), reverse=True)
        used_t, assigned = set(), {}
        for score, ti, bi in pairs:
            if score < self.min_iou:
                break
            if ti in used_t or bi in assigned:
                continue
            used_t.add(ti)
            assigned[bi] = self.tracks[ti]
        out = []
        for bi, b in enumerate(boxes):
            t = assigned.get(bi)
            if t is None:
                t = Track(self._next, tuple(b))
                self._next += 1
                self.tracks.append(t)
            t.box, t.missed = tuple(b), 0
            t.hits += 1
            t.update(probas[bi], self.smoothing)
            out.append(t)
        seen = {id(t) for t in out}
        for t in self.tracks:
            if id(t) not in seen:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out


def open_source(camera=None, video=None):
    """A ``cv2.VideoCapture`` on a camera index or a video file; one-line errors."""
    import os

    import cv2

    if (camera is None) == (video is None):
        raise ConfigError("give exactly one of --camera N and --video FILE")
    if video is not None:
        if not os.path.exists(video):
            raise ImageError(f"{video}: no such video file")
        if os.path.isdir(video):
            raise ImageError(f"{video}: is a directory, not a video")
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise ImageError(f"{video}: cannot open it as a video (unknown or corrupt format)")
        ok, frame = cap.read()
        if not ok or frame is None:
            cap.release()
            raise ImageError(f"{video}: video has no readable frame (empty or corrupt)")
        return cap, frame, str(video)
    name = f"camera {camera}"
    try:  # OpenCV's own warnings about a missing device would add noisy lines
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass
    cap = cv2.VideoCapture(int(camera))
    if not cap.isOpened():
        raise ImageError(f"{name}: cannot open it (no such device, or in use by another "
                         f"program); list cameras with `ls /dev/video*` or use --video FILE")
    ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise ImageError(f"{name}: opened but gave no frame (disconnected or busy)")
    return cap, frame, name


class _CsvOut:
    COLS = ("frame", "time_s", "track", "x", "y", "w", "h", "label", "confidence", "status")

    def __init__(self, path, labels):
        import csv

        self.fh = open(path, "w", newline="")  # noqa: SIM115 (closed in close())
        self.labels = list(labels)
        self.w = csv.writer(self.fh)
        self.w.writerow([*self.COLS] + [f"p_{lab}" for lab in self.labels])
        self.fh.flush()

    def write(self, frame_idx, t, tracks, faces):
        for tr, f in zip(tracks, faces, strict=True):
            probs = f.probabilities or {}
            self.w.writerow([frame_idx, f"{t:.3f}", tr.id, *f.box, f.label or "",
                             "" if f.confidence is None else f"{f.confidence:.4f}", f.status]
                            + [f"{probs[lab]:.4f}" if lab in probs else "" for lab in self.labels])
        self.fh.flush()

    def close(self):
        self.fh.close()


def watch(predictor, *, camera=None, video=None, out=None, csv=None, show=False,
          smoothing="ema:0.3", notice=None, blur=False, max_frames=None, min_iou=0.3,
          max_missed=10, full_scan_every=10, on_frame=None, log=None) -> dict:
    """Run ``predictor`` on every frame of a camera or video.

    Parameters
    ----------
    predictor : Predictor
    camera : int, optional / video : path, optional
        Exactly one source.
    out : path, optional
        Annotated video (mp4); written only when given.
    csv : path, optional
        One row per face per frame (frame, time, track id, box, label,
        confidence, status, probabilities); never pixels.
    show : bool
        Display a window when a display exists (else one warning line).
    smoothing : str
        ``"ema:ALPHA"``, ``"window:N"`` or ``"none"``.
    notice : str, optional
        On-screen notice (default :data:`~classicfer.runtime._draw.DEFAULT_NOTICE`).
    blur : bool
        Blur faces in the saved video and the window.
    max_frames : int, optional
        Stop after this many frames.
    full_scan_every : int
        Detect on the whole frame every this many frames (and whenever a tracked
        face is lost); in between, detect only around the tracked faces, which is
        several times faster. 1 = whole frame every frame.
    on_frame : callable, optional
        Called as ``on_frame(index, faces, tracks)`` after every frame.

    Returns
    -------
    dict
        ``frames``, ``faces``, ``tracks``, ``fps`` (processing rate), ``source``,
        ``ended`` ("end of stream", "max frames", "interrupted", "window closed").
    """
    import cv2

    from ._draw import DEFAULT_NOTICE

    notice = DEFAULT_NOTICE if notice is None else notice
    tracker = IoUTracker(min_iou=min_iou, max_missed=max_missed, smoothing=smoothing)
    cap, frame, name = open_source(camera, video)
    src_fps = _source_fps(cap)
    outputs = _WatchOutputs()
    stats = {"frames": 0, "faces": 0, "tracks": 0, "fps": 0.0, "source": name,
             "ended": "end of stream"}
    try:
        outputs.open(predictor, frame, csv=csv, out=out, show=show, src_fps=src_fps, log=log)
        fps = None
        t_start = time.perf_counter()
        idx = 0
        while frame is not None:
            t0 = time.perf_counter()
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            faces, tracks = _process(predictor, tracker, rgb, idx, full_scan_every)
            fps = _running_fps(fps, time.perf_counter() - t0, idx)
            t_video = idx / src_fps if video is not None else time.perf_counter() - t_start
            if outputs.emit(idx, t_video, rgb, faces, tracks, labels=predictor.labels,
                            blur=blur, notice=notice, fps=fps):
                stats["ended"] = "window closed"
                break
            stats["frames"] += 1
            stats["faces"] += len(faces)
            if on_frame is not None:
                on_frame(idx, faces, tracks)
            idx += 1
            if max_frames is not None and idx >= max_frames:
                stats["ended"] = "max frames"
                break
            frame = _next_frame(cap, camera, stats)
        stats["fps"] = float(fps or 0.0)
    except KeyboardInterrupt:
        stats["ended"] = "interrupted"
    finally:
        cap.release()
        outputs.close()
    stats["tracks"] = tracker._next - 1
    return stats


def _source_fps(cap) -> float:
    """The capture's frame rate, or 15 when it reports none or an implausible one."""
    import cv2

    src_fps = cap.get(cv2.CAP_PROP_FPS) or 0
    if not np.isfinite(src_fps) or src_fps <= 0 or src_fps > 240:
        src_fps = 15.0
    return src_fps


def _running_fps(fps, dt, idx):
    """Exponential mean of the processing rate; frame 0 (which loads the models) is left out."""
    inst = 1.0 / dt if dt > 0 else 0.0
    if idx > 0:
        fps = inst if fps is None else 0.9 * fps + 0.1 * inst
    return fps


def _next_frame(cap, camera, stats):
    """The next frame, or None at the end of the stream (noted in ``stats`` for a camera)."""
    ok, frame = cap.read()
    if ok:
        return frame
    if camera is not None:
        stats["ended"] = "camera disconnected"
    return None


class _WatchOutputs:
    """The CSV, the annotated video and the window of one :func:`watch` run."""

    def __init__(self):
        self.csv = None
        self.writer = None
        self.window = False

    def open(self, predictor, frame, *, csv, out, show, src_fps, log):
        import cv2

        if csv:
            self.csv = _CsvOut(csv, predictor.labels)
        if out:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), src_fps,
                                          (w, h))
            if not self.writer.isOpened():
                raise ImageError(f"{out}: cannot write a video there (check the folder and the "
                                 f"extension, e.g. .mp4)")
        if show:
            self.window = _try_window(log)

    def emit(self, idx, t_video, rgb, faces, tracks, *, labels, blur, notice, fps) -> bool:
        """Write one frame's rows, video frame and window image.

        True when the window was closed (Esc or q).
        """
        import cv2

        from ._draw import annotate

        if self.csv:
            self.csv.write(idx, t_video, tracks, faces)
        if self.writer is None and not self.window:
            return False
        ann = annotate(rgb, faces, labels, blur=blur, notice=notice, fps=fps,
                       ids=[t.id for t in tracks])
        bgr = cv2.cvtColor(ann, cv2.COLOR_RGB2BGR)
        if self.writer is not None:
            self.writer.write(bgr)
        if self.window:
            cv2.imshow("classicfer watch", bgr)
            key = cv2.waitKey(1) & 0xFF
            return key in (27, ord("q"))
        return False

    def close(self):
        import cv2

        if self.writer is not None:
            self.writer.release()
        if self.csv is not None:
            self.csv.close()
        if self.window:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass


def _try_window(log):
    import os

    import cv2

    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if log:
            log("warning: --show ignored: no display (DISPLAY is not set)")
        return False
    try:
        cv2.namedWindow("classicfer watch", cv2.WINDOW_NORMAL)
        return True
    except cv2.error:
        if log:
            log("warning: --show ignored: this OpenCV build has no GUI "
                "(opencv-python-headless); install opencv-python for a window")
        return False


def _roi_faces(predictor, tracker, rgb):
    """Detect only around the live tracks (each box grown by 60 % on every side).

    None when a track's face is not found there (the caller then scans the whole
    frame).
    """
    import cv2

    from ..face import detect_faces

    src = rgb
    if predictor.detector in ("haar", "dlib-hog"):
        src = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    H, W = src.shape[:2]
    found = []
    for t in tracker.tracks:
        if t.missed:
            continue
        x, y, w, h = t.box
        m = 0.6 * max(w, h)
        x0, y0 = int(max(0, x - m)), int(max(0, y - m))
        x1, y1 = int(min(W, x + w + m)), int(min(H, y + h + m))
        sub = np.ascontiguousarray(src[y0:y1, x0:x1])
        min_size = max(24.0, 0.6 * max(w, h))
        fs = detect_faces(sub, method=predictor.detector, min_size=min_size, max_faces=1)
        if not fs:
            return None
        f = fs[0]
        f.box = (f.box[0] + x0, f.box[1] + y0, f.box[2], f.box[3])
        if f.landmarks is not None:
            f.landmarks = np.asarray(f.landmarks, float) + [x0, y0]
        if all(iou(f.box, g.box) < 0.5 for g in found):
            found.append(f)
    return found


def _process(predictor, tracker, rgb, idx=0, full_scan_every=1):
    faces = None
    if full_scan_every > 1 and idx % full_scan_every and any(not t.missed
                                                            for t in tracker.tracks):
        faces = _roi_faces(predictor, tracker, rgb)
    if faces is None:
        faces = predictor.find_faces(rgb)
    ok = [f for f in faces if f.box[2] >= predictor.min_face and f.box[3] >= predictor.min_face]
    predictor.add_landmarks(rgb, ok)
    proba = predictor.model.predict_proba(predictor.crops(rgb, ok))
    raw, j = [], 0
    for f in faces:
        if f.box[2] >= predictor.min_face and f.box[3] >= predictor.min_face:
            raw.append(proba[j])
            j += 1
        else:
            raw.append(None)
    tracks = tracker.update([f.box for f in faces], raw)
    results = []
    labels = predictor.labels
    for f, t in zip(faces, tracks, strict=True):
        box = tuple(int(v) for v in f.box)
        if t.proba is None or f.box[2] < predictor.min_face or f.box[3] < predictor.min_face:
            results.append(FaceResult(box, None, None, None, "too_small", f.score))
            continue
        p = t.proba
        probs = {lab: float(v) for lab, v in zip(labels, p, strict=True)}
        k = int(np.argmax(p))
        if p[k] < predictor.min_confidence:
            results.append(FaceResult(box, None, float(p[k]), probs, "uncertain", f.score))
        else:
            results.append(FaceResult(box, labels[k], float(p[k]), probs, "ok", f.score))
    return results, tracks
