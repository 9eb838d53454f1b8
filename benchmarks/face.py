"""Face-stage benchmark: latency, detection rate on face crops, landmark success.

1. Latency (single thread): each detector on one 640x480 frame (the astronaut
   photo resized to 480x480 on a grey canvas, as ``benchmarks/latency.py``),
   p50/p95 wall-clock and CPU (thread) time; then dlib landmarks (5 and 68
   points) and ``align_face`` on the detected face. CPU time is reported
   because the benchmark machine is shared: wall time includes waiting.
2. Detection rate on FER-2013 PrivateTest and CK+48: every 48x48 crop is
   upscaled 4x (bicubic, 192x192) and, in the "padded" variant, framed by a
   48 px border of its mean grey (a detector's window must fit inside the
   image). dlib-cnn is slow on this CPU, so it runs on a seeded random subset
   (``--cnn-limit``).
3. Landmark success on the crops, with the whole image as the box (what the
   face stage does for already-cropped datasets): the share of crops whose
   landmarks pass ``landmarks_plausible``; and, where dlib-hog finds the face in
   the padded crop, the normalised mean error (NME, by inter-ocular distance)
   between whole-crop landmarks and detector-box landmarks.
4. Box calibration: median (dx, dy, dw, dh) mapping each detector's box onto
   the dlib-hog box of the same face (paired), compared with ``BOX_ADJUST``.

5. ``--false-positives`` (on its own): false positives per image of each
   detector, per score threshold, on non-face images (scikit-image's photos of
   a cat, coffee, a rocket, coins, textures..., views and crops of them, blank,
   noise, gradient and stripe frames) against the detection rate on faces
   (scikit-image's astronaut and cameraman; scikit-image's LFW faces, FER-2013
   *train* crops and CK+48 crops upscaled to 80-200 px and pasted onto those
   backgrounds); BlazeFace with and without its O-Net verification. Plus a
   group photo: 7 faces of 21-104 px pasted on a 1280x720 background, per
   detector and ``min_size``. The FER-2013 / CK+48 parts are skipped when
   ``--data`` has no such folder.

Usage::

    nice -n 10 python benchmarks/face.py                 # 1-4
    nice -n 10 python benchmarks/face.py --limit 300     # seeded subsets (quick)
    nice -n 10 python benchmarks/face.py --skip-rates    # latency only
    nice -n 10 python benchmarks/face.py --false-positives

Writes ``results/face_latency.md``, ``results/face_detection.md`` and the CSV /
JSON data under ``results/face/``; ``--false-positives`` writes
``results/face/false_positives.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("CLASSICFER_ORT_THREADS", "1")

import numpy as np  # noqa: E402 (the thread settings above must come first)

from classicfer.provenance import git_commit, versions  # noqa: E402 (likewise)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
METHODS = ("haar", "blazeface", "dlib-hog", "dlib-cnn", "mtcnn")
TARGETS_MS = {"haar": 8.0, "dlib-hog": 25.0, "landmarks+align": 3.0}


def frame_640x480():
    import cv2
    from skimage.data import astronaut

    face = cv2.resize(astronaut(), (480, 480), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = face
    return canvas


def timeit(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return {"wall_p50_ms": float(np.percentile(wall, 50)),
            "wall_p95_ms": float(np.percentile(wall, 95)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p95_ms": float(np.percentile(cpu, 95)), "repeats": repeats}


def latency(repeats):
    import cv2

    from classicfer.face import align_face, detect_faces, face_landmarks

    cv2.setNumThreads(1)
    img = frame_640x480()
    rows = []
    configs = [("haar", None), ("haar", 80), ("haar", 100), ("blazeface", None),
               ("dlib-hog", None), ("dlib-hog", 120), ("dlib-cnn", None), ("dlib-cnn", 160),
               ("mtcnn", None), ("mtcnn", 80)]
    for method, min_size in configs:
        n = max(3, repeats // 10) if method == "dlib-cnn" else repeats
        faces = detect_faces(img, method, min_size=min_size)
        r = timeit(lambda m=method, s=min_size: detect_faces(img, m, min_size=s), n)
        r.update(step=f"detect {method}", min_size=min_size if min_size else "default",
                 faces=len(faces))
        rows.append(r)
        print(r, flush=True)
    face = detect_faces(img, "dlib-hog")[0]
    pts5 = face_landmarks(img, face, "5")
    pts68 = face_landmarks(img, face, "68")
    steps = [
        ("landmarks 5", lambda: face_landmarks(img, face, "5")),
        ("landmarks 68", lambda: face_landmarks(img, face, "68")),
        ("align 48 gray", lambda: align_face(img, pts5, 48)),
        ("align 224 rgb", lambda: align_face(img, pts5, 224, gray=False)),
        ("landmarks 5 + align 48", lambda: align_face(img, face_landmarks(img, face, "5"), 48)),
        ("landmarks 68 + align 48",
         lambda: align_face(img, face_landmarks(img, face, "68"), 48)),
    ]
    del pts68
    for name, fn in steps:
        r = timeit(fn, repeats * 3)
        r.update(step=name, min_size="", faces=1)
        rows.append(r)
        print(r, flush=True)
    return rows


def prep(a, pad):
    import cv2

    b = cv2.resize(a, (192, 192), interpolation=cv2.INTER_CUBIC)
    if not pad:
        return b, 0
    p = 48
    return cv2.copyMakeBorder(b, p, p, p, p, cv2.BORDER_CONSTANT, value=int(a.mean())), p


def list_crops(data: Path, which: str):
    if which == "fer2013-privatetest":
        return sorted((data / "fer2013" / "test").glob("*/PrivateTest_*.jpg"))
    return sorted((data / "ckplus48").glob("*/*.png"))


def rates(data: Path, limit, cnn_limit, seed, variants):
    from classicfer.imageio import read_image

    rng = np.random.default_rng(seed)
    det_rows, lm_rows, calib = [], [], {m: [] for m in METHODS if m != "dlib-hog"}
    crop_rel = []
    for ds in ("fer2013-privatetest", "ckplus48"):
        files = list_crops(data, ds)
        if not files:
            raise SystemExit(f"no images for {ds} under {data}")
        order = rng.permutation(len(files))
        if limit:
            order = order[:limit]
        cnn_set = set(order[:cnn_limit].tolist()) if cnn_limit else set(order.tolist())
        n_total = len(files)
        t0 = time.time()
        found = {(v, m): [] for v in variants for m in METHODS}
        lm_ok = {"5": [], "68": []}
        nme = {"5": [], "68": []}
        for k, i in enumerate(order):
            img48 = read_image(files[i], gray=True)
            boxes = detect_variants(img48, variants, i in cnn_set, found)
            check_landmarks(img48, boxes, lm_ok, nme)
            if "dlib-hog" in boxes:
                hx, hy, hw, hh = boxes["dlib-hog"]
                crop_rel.append(((hx - 48) / 192, (hy - 48) / 192, hw / 192 - 1, hh / 192 - 1))
                for m, (x, y, w, h) in boxes.items():
                    if m != "dlib-hog":
                        calib[m].append(((hx - x) / w, (hy - y) / h, hw / w - 1, hh / h - 1))
            if (k + 1) % 200 == 0:
                print(f"{ds}: {k + 1}/{len(order)} ({time.time() - t0:.0f} s)", flush=True)
        for (v, m), flags in found.items():
            det_rows.append({"dataset": ds, "variant": v, "method": m, "n": len(flags),
                             "n_dataset": n_total, "detected": int(sum(flags)),
                             "rate": float(np.mean(flags)) if flags else float("nan")})
        for model in ("5", "68"):
            e = np.asarray(nme[model])
            lm_rows.append({"dataset": ds, "model": model, "n": len(lm_ok[model]),
                            "plausible_rate": float(np.mean(lm_ok[model])),
                            "n_with_hog_ref": len(e),
                            "median_nme_vs_hog": float(np.median(e)) if len(e) else float("nan"),
                            "rate_nme_below_0.1": float(np.mean(e < 0.1)) if len(e)
                            else float("nan")})
    cal = {m: np.median(np.asarray(v), axis=0).round(3).tolist() if v else None
           for m, v in calib.items()}
    cal["crop"] = np.median(np.asarray(crop_rel), axis=0).round(3).tolist() if crop_rel else None
    cal_n = {m: len(v) for m, v in calib.items()} | {"crop": len(crop_rel)}
    photo, photo_n = photo_calibration()
    cal = {m: {"crops": cal[m], "photo": photo.get(m)} for m in cal}
    cal_n = {m: {"crops": cal_n[m], "photo": photo_n.get(m, 0)} for m in cal_n}
    return det_rows, lm_rows, cal, cal_n


def detect_variants(img48, variants, with_cnn, found):
    """Run every detector on each variant of one crop; ``found[(variant, method)]`` gets
    whether it found a face. Returns each method's first box on the padded variant.
    """
    from classicfer.face import detect_faces

    boxes = {}
    for v in variants:
        im, _ = prep(img48, v == "padded")
        for m in METHODS:
            if m == "dlib-cnn" and not with_cnn:
                continue
            faces = detect_faces(im, m)
            found[(v, m)].append(bool(faces))
            if faces and v == "padded":
                boxes[m] = faces[0].box
    return boxes


def check_landmarks(img48, boxes, lm_ok, nme):
    """Landmarks on the whole crop: plausible or not (``lm_ok``) and, when dlib-hog found the
    padded face, their error normalised by the eye distance against the points in that box.
    """
    from classicfer.face import eye_centers, face_landmarks
    from classicfer.face._landmarks import landmarks_plausible

    for model in ("5", "68"):
        pts = face_landmarks(img48, None, model)
        lm_ok[model].append(landmarks_plausible(pts, (0, 0, 48, 48)))
        if "dlib-hog" in boxes:
            im, p = prep(img48, True)
            ref = face_landmarks(im, boxes["dlib-hog"], model)
            ref = (ref - p) / 4.0
            le, re = eye_centers(ref)
            iod = float(np.hypot(*(re - le)))
            nme[model].append(float(np.mean(np.linalg.norm(pts - ref, axis=1)) / iod))


def photo_calibration():
    """Paired detector -> dlib-hog boxes on 24 views of the astronaut photo: a 640x480
    window around the face, face 84-150 px, rotated -10..10 deg, mirrored or not.
    """
    import cv2
    from skimage.data import astronaut

    from classicfer.face import augment_face, detect_faces

    rel = {m: [] for m in METHODS if m != "dlib-hog"}
    base = astronaut()
    for scale in (1.0, 1.25, 1.5, 1.8):
        for angle in (-10, 0, 10):
            for flip in (False, True):
                big = cv2.resize(base, None, fx=scale * 480 / 512, fy=scale * 480 / 512,
                                 interpolation=cv2.INTER_AREA)
                # a 640x480 window centred on the face (about (225, 115) in the photo)
                cx, cy = int(225 * scale * 480 / 512), int(115 * scale * 480 / 512)
                frame = np.full((480, 640, 3), 128, np.uint8)
                x0, y0 = cx - 320, cy - 200
                sx0, sy0 = max(0, x0), max(0, y0)
                sx1, sy1 = min(big.shape[1], x0 + 640), min(big.shape[0], y0 + 480)
                frame[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = big[sy0:sy1, sx0:sx1]
                frame, _ = augment_face(frame, angle=angle, flip=flip)
                hog = detect_faces(frame, "dlib-hog")
                if not hog:
                    continue
                hx, hy, hw, hh = hog[0].box
                for m, lst in rel.items():
                    if m == "dlib-cnn" and (angle or flip or scale > 1.0):
                        continue   # seconds of CPU per 640x480 frame: one view only
                    f = detect_faces(frame, m)
                    if f:
                        x, y, w_, h_ = f[0].box
                        lst.append(((hx - x) / w_, (hy - y) / h_, hw / w_ - 1, hh / h_ - 1))
    return ({m: np.median(np.asarray(v), axis=0).round(3).tolist() if v else None
             for m, v in rel.items()}, {m: len(v) for m, v in rel.items()})


#: packages the face-stage figures depend on (their versions go in the record)
PACKAGES = ("classicfer", "numpy", "opencv-contrib-python-headless", "dlib-bin", "onnxruntime",
            "face-recognition-models", "scikit-image")


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def header(run):
    return (f"Generated by `{run['command']}` (commit {str(run['git_commit'])[:10]}, "
            f"seed {run['seed']}) on {run['date']}.\n"
            f"Machine: {run['cpu_count']} CPU cores shared with other jobs; load average "
            f"{run['loadavg_start']} at start, {run['loadavg_end']} at end.\n"
            f"Versions: {', '.join(f'{k} {v}' for k, v in run['versions'].items())}.\n")


def md_latency(rows, run):
    out = ["# Face stage latency (640x480 frame, single thread)", "", header(run),
           ("Wall = elapsed time; CPU = this thread's CPU time (less sensitive to the other "
           "jobs sharing the machine). Targets: Haar <= 8 ms, dlib-hog <= 25 ms, "
           "landmarks + alignment <= 3 ms per face."), "",
           ("| step | min_size | faces | wall p50 (ms) | wall p95 (ms) | CPU p50 (ms) "
           "| CPU p95 (ms) | runs | target |"),
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["step"]
        tgt = ""
        for key, t in TARGETS_MS.items():
            if (name == f"detect {key}" and r["min_size"] == "default") or (
                    key == "landmarks+align" and name.startswith("landmarks 5 +")):
                ok = r["cpu_p50_ms"] <= t
                tgt = f"<= {t:g} ms: {'met' if ok else 'NOT met'} (CPU p50)"
        out.append(f"| {name} | {r['min_size']} | {r['faces']} | {r['wall_p50_ms']:.2f} | "
                   f"{r['wall_p95_ms']:.2f} | {r['cpu_p50_ms']:.2f} | {r['cpu_p95_ms']:.2f} | "
                   f"{r['repeats']} | {tgt} |")
    out += ["", ("Default min_size: haar 60 px, dlib-hog 80, dlib-cnn 80, mtcnn 40 (the image is "
            "resized so min_size matches the detector's window; larger is faster)."), ""]
    return "\n".join(out)


def md_detection(det_rows, lm_rows, cal, cal_n, run):
    from classicfer.face import BOX_ADJUST

    out = ["# Face detection and landmarks on face-crop datasets", "", header(run),
           ("Each 48x48 crop is upscaled 4x (bicubic, 192x192); *padded* adds a 48 px border "
           "of the crop's mean grey. n = images tried (dlib-cnn: a seeded random subset, "
           "it takes about a second per image on this machine)."), "",
           "## Detection rate", "",
           "| dataset | variant | method | detected | n | rate |", "|---|---|---|---|---|---|"]
    for r in det_rows:
        out.append(f"| {r['dataset']} | {r['variant']} | {r['method']} | {r['detected']} | "
                   f"{r['n']} (of {r['n_dataset']}) | {100 * r['rate']:.1f} % |")
    out += ["", "## Landmark success with the whole crop as the box", "",
            ("Success = the points pass `landmarks_plausible` (inside the crop +20 %, "
            "inter-ocular distance 20-70 % of the width, eye line tilted < 30 deg, nose and "
            "mouth below the eyes). NME = mean point distance / inter-ocular distance between "
            "whole-crop landmarks and landmarks from the dlib-hog box (padded crop), where "
            "dlib-hog found the face."), "",
            ("| dataset | model | n | success rate | n with hog reference | median NME | "
            "NME < 0.1 |"), "|---|---|---|---|---|---|---|"]
    for r in lm_rows:
        out.append(f"| {r['dataset']} | {r['model']}-point | {r['n']} | "
                   f"{100 * r['plausible_rate']:.1f} % | {r['n_with_hog_ref']} | "
                   f"{r['median_nme_vs_hog']:.3f} | {100 * r['rate_nme_below_0.1']:.1f} % |")
    out += ["", "## Box calibration (detector box -> dlib-hog box)", "",
            ("Median (dx, dy, dw, dh), fractions of the detector box, where both found the "
             "face: on the padded crops, and on 24 views (dlib-cnn: 1) of the astronaut photo in a "
             "640x480 frame (scale, rotation, mirror). `crop` = dlib-hog box inside the "
             "192x192 upscaled crop. `BOX_ADJUST` (used by `face_landmarks`) takes the crop "
             "value for `crop` and, for the detectors, the mean of a preliminary crop measurement "
             "(250 crops per dataset) and the unaugmented astronaut photo."), "",
            "| source | pairs (crops / photo) | crops | photo | BOX_ADJUST in use |",
            "|---|---|---|---|---|"]
    for m, v in cal.items():
        n = cal_n[m]
        out.append(f"| {m} | {n['crops']} / {n['photo']} | {v['crops']} | {v['photo']} | "
                   f"{list(BOX_ADJUST.get(m, ()))} |")
    out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------ false positives
#: scikit-image photos without a human face (those that need a download are skipped)
NONFACE_PHOTOS = ("chelsea", "coffee", "rocket", "coins", "moon", "horse", "hubble_deep_field",
                  "immunohistochemistry", "page", "text", "brick", "grass", "gravel", "clock",
                  "colorwheel", "retina", "shepp_logan_phantom", "checkerboard", "logo", "cell",
                  "binary_blobs", "microaneurysms", "stereo_motorcycle")
#: scikit-image photos with one face each: (x, y, w, h) of the face in the photo
FACE_PHOTOS = {"astronaut": (175, 60, 100, 115), "camera": (190, 110, 70, 90)}
#: each detector run once at its lowest threshold, then swept (a greedy NMS keeps the
#: same boxes above a threshold whatever lower one it ran at); Haar's minNeighbors is
#: not a score, so Haar runs once per value
FP_SWEEP = {"blazeface": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
            "haar": (3, 5, 8, 12),
            "mtcnn": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
            "dlib-hog": (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0)}
#: O-Net verification thresholds swept for BlazeFace (None = no verification)
FP_VERIFY = (None, 0.4, 0.5, 0.6, 0.7, 0.8)
#: face sides (px) of the group photo
GROUP_SIDES = (21, 30, 40, 52, 66, 84, 104)
GROUP_CONFIGS = (("haar", None), ("haar", 20), ("mtcnn", None), ("mtcnn", 20),
                 ("blazeface", None), ("blazeface", 40), ("blazeface", 20),
                 ("dlib-hog", None), ("dlib-hog", 40))


def _rgb(img):
    from classicfer.imageio import as_uint8_image

    return as_uint8_image(img)


def _cover(img, w=640, h=480):
    """``img`` resized to cover ``w x h`` and centre-cropped to it."""
    import cv2

    H, W = img.shape[:2]
    s = max(w / W, h / H)
    big = cv2.resize(img, (max(w, round(W * s)), max(h, round(H * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])


def _random_crop(img, rng):
    """A random 4:3 crop (a third of the photo to all of it), resized to 640x480, maybe
    mirrored.
    """
    H, W = img.shape[:2]
    cw = int(rng.uniform(1 / 3, 1) * min(W, H * 4 / 3))
    ch = max(1, int(cw * 3 / 4))
    x, y = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
    out = _cover(img[y:y + ch, x:x + cw])
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def nonface_photos():
    """(name, RGB uint8) of :data:`NONFACE_PHOTOS` that load without a download."""
    import skimage.data

    out = []
    for name in NONFACE_PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception as exc:  # noqa: BLE001 - a photo that needs pooch or a download
            print(f"{name}: skipped ({type(exc).__name__})", flush=True)
            continue
        out.append((name, _rgb(img[0] if isinstance(img, tuple) else img)))
    return out


def synthetic_frames(rng):
    """640x480 frames with nothing in them: blank, noise, blurred noise, gradients,
    stripes and a checkerboard.
    """
    import cv2

    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def u8(a):
        return np.clip(a, 0, 255).astype(np.uint8)

    out = [(f"blank {v}", np.full((h, w), v, np.uint8)) for v in (0, 128, 255)]
    for k in range(2):
        for sigma in (10, 30, 60):
            out.append((f"noise sd {sigma} #{k}", u8(rng.normal(128, sigma, (h, w)))))
        out.append((f"colour noise #{k}", u8(rng.normal(128, 40, (h, w, 3)))))
        for blur in (4, 16):
            a = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), blur)
            out.append((f"blurred noise {blur} #{k}", u8(128 + 60 * a / a.std())))
    r = np.hypot(xx - w / 2, yy - h / 2)
    out += [("gradient horizontal", u8(xx * 255 / w)), ("gradient vertical", u8(yy * 255 / h)),
            ("gradient diagonal", u8((xx + yy) * 255 / (w + h))),
            ("gradient radial", u8(255 - r * 255 / r.max())),
            ("stripes 16 px", u8(((xx // 8) % 2) * 255)),
            ("stripes 64 px", u8(((yy // 32) % 2) * 200 + 30)),
            ("checkerboard 40 px", u8((((xx // 40) + (yy // 40)) % 2) * 255))]
    return [(name, _rgb(a)) for name, a in out]


def nonface_frames(rng, n_crops):
    """Every non-face image: each photo whole, covering 640x480, mirrored, and
    ``n_crops`` random crops; then :func:`synthetic_frames`.
    """
    frames = []
    for name, img in nonface_photos():
        frames += [(name, img), (f"{name} 640x480", _cover(img)),
                   (f"{name} 640x480 mirrored", np.ascontiguousarray(_cover(img)[:, ::-1]))]
        frames += [(f"{name} crop {k}", _random_crop(img, rng)) for k in range(n_crops)]
    return frames + synthetic_frames(rng)


def face_photo_frames():
    """(name, RGB, [box]) views of scikit-image's astronaut and cameraman."""
    import cv2
    import skimage.data

    out = []
    for name, (x, y, w, h) in FACE_PHOTOS.items():
        img = _rgb(getattr(skimage.data, name)())
        W = img.shape[1]
        out += [(name, img, [(x, y, w, h)]),
                (f"{name} mirrored", np.ascontiguousarray(img[:, ::-1]), [(W - x - w, y, w, h)])]
        s = 480 / img.shape[0]
        canvas = np.full((480, 640, 3), 128, np.uint8)
        canvas[:, 80:560] = cv2.resize(img, (480, 480), interpolation=cv2.INTER_AREA)
        out.append((f"{name} 640x480", canvas,
                    [(round(80 + x * s), round(y * s), round(w * s), round(h * s))]))
    return out


def face_crops(data: Path, which: str, n: int, rng):
    """Up to ``n`` seeded gray face crops: scikit-image's LFW faces (``lfw``), FER-2013
    train (``fer2013-train``) or CK+48 (``ckplus48``); [] when absent.
    """
    import cv2

    if which == "lfw":
        import skimage.data

        faces = (skimage.data.lfw_subset()[:100] * 255).astype(np.uint8)  # 100 faces first
        return [faces[i] for i in rng.permutation(len(faces))[:n]]
    pattern = {"fer2013-train": "fer2013/train/*/*.jpg", "ckplus48": "ckplus48/*/*.png"}[which]
    files = sorted(data.glob(pattern))
    return [cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
            for i in rng.permutation(len(files))[:n]]


def paste(bg, crop, side, rng, taken=()):
    """``bg`` with the gray ``crop`` resized to ``side`` pasted at a random place that
    does not overlap the ``taken`` boxes; returns (image, box) or (bg, None).
    """
    import cv2

    H, W = bg.shape[:2]
    for _ in range(200):
        x, y = int(rng.integers(0, W - side + 1)), int(rng.integers(0, H - side + 1))
        if all(x + side <= a or a + c <= x or y + side <= b or b + d <= y
               for a, b, c, d in taken):
            break
    else:
        return bg, None
    inter = cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_CUBIC
    out = bg.copy()
    out[y:y + side, x:x + side] = cv2.resize(crop, (side, side), interpolation=inter)[:, :, None]
    return out, (x, y, side, side)


def pasted_frames(crops, backgrounds, rng, sides=(80, 200)):
    """One 640x480 frame per crop: a random background, the crop at a random size."""
    out = []
    for crop in crops:
        name, bg = backgrounds[int(rng.integers(len(backgrounds)))]
        img, box = paste(bg, crop, int(rng.integers(sides[0], sides[1] + 1)), rng)
        out.append((f"on {name}", img, [box]))
    return out


def run_detectors(img):
    """Every detector's boxes at its lowest threshold: ``{method: [(x, y, w, h, score)]}``
    (BlazeFace: ``(..., score, O-Net probability)``; Haar: one list per minNeighbors).
    """
    from classicfer.face import detect_faces
    from classicfer.face._blazeface import blazeface_detect, verify_faces

    boxes, _ = blazeface_detect(img, FP_SWEEP["blazeface"][0])
    v = verify_faces(img, boxes)
    out = {"blazeface": [(b[0], b[1], b[2] - b[0], b[3] - b[1], b[4], p)
                         for b, p in zip(boxes.tolist(), v.tolist(), strict=True)]}
    for m in ("mtcnn", "dlib-hog"):
        out[m] = [(*f.box, f.score) for f in detect_faces(img, m, threshold=FP_SWEEP[m][0])]
    out["haar"] = {n: [(*f.box, f.score) for f in detect_faces(img, "haar", threshold=n)]
                   for n in FP_SWEEP["haar"]}
    out["default"] = [(*f.box, f.score) for f in detect_faces(img, "blazeface")]
    return out


def match(dets, gt):
    """(faces found, false positives): a detection finds a face when its centre is
    inside the face's box and its size is 0.3-2.5 times the face's.
    """
    found, extra = 0, 0
    left = [g for g in gt if g is not None]
    for d in dets:
        cx, cy, side = d[0] + d[2] / 2, d[1] + d[3] / 2, np.sqrt(d[2] * d[3])
        hit = next((g for g in left if g[0] <= cx < g[0] + g[2] and g[1] <= cy < g[1] + g[3]
                    and 0.3 <= side / np.sqrt(g[2] * g[3]) <= 2.5), None)
        if hit is None:
            extra += 1
        else:
            left.remove(hit)
            found += 1
    return found, extra


def operating_points():
    """(method, threshold, verify threshold or None) of the sweep."""
    pts = [("blazeface", t, v) for t in FP_SWEEP["blazeface"] for v in FP_VERIFY]
    return pts + [(m, t, None) for m in ("haar", "mtcnn", "dlib-hog") for t in FP_SWEEP[m]]


def kept(rec, method, t, v):
    """The detections of one image kept at an operating point."""
    if method == "haar":
        return rec["haar"][t]
    if method == "default":
        return rec["default"]
    return [d for d in rec[method] if d[4] > t and (v is None or d[5] >= v)]


def sweep_row(records, method, t, v):
    """False positives and detection rates of one operating point over every image."""
    row = {"method": method, "threshold": t, "verify": v}
    fps, worst = [], []
    for r in (r for r in records if r["set"] == "non-face"):
        ds = kept(r["dets"], method, t, v)
        fps.append(len(ds))
        worst += [(round(float(d[4]), 3), r["name"]) for d in ds]
    row.update(nonface_images=len(fps), nonface_fp=int(sum(fps)),
               nonface_fp_per_image=float(np.mean(fps)) if fps else float("nan"),
               nonface_images_with_fp=int(np.count_nonzero(fps)),
               worst=[n for _, n in sorted(worst, reverse=True)[:3]])
    extra = []
    for s in sorted({r["set"] for r in records} - {"non-face"}):
        found, n = 0, 0
        for r in (r for r in records if r["set"] == s):
            f, e = match(kept(r["dets"], method, t, v), r["gt"])
            found, n = found + f, n + sum(g is not None for g in r["gt"])
            extra.append(e)
        row[f"found {s}"] = [found, n]
    row["face_extra_per_image"] = float(np.mean(extra)) if extra else float("nan")
    return row


def _face_sets(data: Path, rng, n_faces, backgrounds):
    """(name, frames) of every face set; FER-2013 crops also as a near face (``padded``:
    upscaled to 192 px in a 48 px border of their mean grey, as in the detection rates).
    """
    sets = [("photos", face_photo_frames())]
    for which in ("lfw", "fer2013-train", "ckplus48"):
        crops = face_crops(data, which, n_faces, rng)
        if not crops:
            print(f"{which}: no crops under {data}, skipped", flush=True)
            continue
        sets.append((which, pasted_frames(crops, backgrounds, rng)))
        if which == "fer2013-train":
            sets.append((f"{which} padded", [("padded", _rgb(prep(c, True)[0]),
                                              [(48, 48, 192, 192)]) for c in crops]))
    return sets


def false_positive_records(data: Path, rng, n_faces, n_crops):
    """Detections of every detector on every non-face and face image."""
    nonface = nonface_frames(rng, n_crops)
    backgrounds = [(n, im) for n, im in nonface if im.shape[:2] == (480, 640)]
    todo = [("non-face", n, im, []) for n, im in nonface]
    for s, frames in _face_sets(data, rng, n_faces, backgrounds):
        todo += [(s, n, im, gt) for n, im, gt in frames]
    records, t0 = [], time.time()
    for k, (s, name, img, gt) in enumerate(todo):
        records.append({"set": s, "name": name, "gt": gt, "dets": run_detectors(img)})
        if (k + 1) % 100 == 0:
            print(f"false positives: {k + 1}/{len(todo)} images ({time.time() - t0:.0f} s)",
                  flush=True)
    return records


def verify_cost(repeats=50):
    """Median ms of one O-Net verification (one face) and of one BlazeFace pass, on the
    640x480 benchmark frame.
    """
    from classicfer.face._blazeface import blazeface_detect, verify_faces

    img = frame_640x480()
    boxes, _ = blazeface_detect(img)
    det = timeit(lambda: blazeface_detect(img), repeats)
    ver = timeit(lambda: verify_faces(img, boxes[:1]), repeats)
    return {"blazeface_cpu_p50_ms": det["cpu_p50_ms"], "verify_cpu_p50_ms": ver["cpu_p50_ms"]}


def group_photos(data: Path, rng, n):
    """``n`` 1280x720 photos, each with one face of every :data:`GROUP_SIDES` size pasted
    on a non-face photo (FER-2013 train crops, else scikit-image's LFW faces).
    """
    crops = face_crops(data, "fer2013-train", 7 * n, rng) or face_crops(data, "lfw", 100, rng)
    photos = nonface_photos()
    out = []
    for k in range(n):
        img = _cover(photos[k % len(photos)][1], 1280, 720)
        boxes = []
        for j, side in enumerate(GROUP_SIDES):
            img, box = paste(img, crops[(7 * k + j) % len(crops)], side, rng, boxes)
            boxes.append(box)
        out.append((photos[k % len(photos)][0], img, boxes))
    return out


def group_rows(photos):
    """Faces found per size, extra boxes and time per photo for each GROUP_CONFIGS."""
    from classicfer.face import detect_faces

    rows = []
    for method, min_size in GROUP_CONFIGS:
        per_side, extra, ms = np.zeros(len(GROUP_SIDES), int), 0, []
        for _, img, gt in photos:
            t0 = time.thread_time()
            faces = detect_faces(img, method, min_size=min_size)
            ms.append((time.thread_time() - t0) * 1e3)
            for j, g in enumerate(gt):
                per_side[j] += match([f.box for f in faces], [g])[0]
            extra += match([f.box for f in faces], gt)[1]
        rows.append({"method": method, "min_size": min_size or "default",
                     "found_per_side": per_side.tolist(), "photos": len(photos),
                     "found": int(per_side.sum()), "faces": len(photos) * len(GROUP_SIDES),
                     "extra_per_photo": extra / len(photos),
                     "cpu_ms_per_photo": float(np.median(ms))})
        print(rows[-1], flush=True)
    return rows


def _pct(pair):
    found, n = pair
    return f"{found}/{n} ({100 * found / n:.1f} %)" if n else "-"


def _op_name(r):
    if r["method"] == "default":
        return "blazeface | default | default"
    v = "-" if r["method"] != "blazeface" else ("off" if r["verify"] is None else r["verify"])
    return f"{r['method']} | {r['threshold']} | {v}"


def _choice_text(rows, face_sets):
    """The lines that compare the default with the former one, a stricter verification
    and a threshold alone.
    """
    from classicfer.face._blazeface import VERIFY_THRESHOLD
    from classicfer.face._detect import BLAZEFACE_THRESHOLD

    sel = [s for s in face_sets if s != "ckplus48"]
    by = {(r["method"], r["threshold"], r["verify"]): r for r in rows}
    new = by[("blazeface", BLAZEFACE_THRESHOLD, VERIFY_THRESHOLD)]
    old = by[("blazeface", 0.5, None)]
    strict = by[("blazeface", BLAZEFACE_THRESHOLD, FP_VERIFY[-1])]
    exact = by[("default", None, None)]
    alone = next((r for r in rows if r["method"] == "blazeface" and r["verify"] is None
                  and r["nonface_fp"] == 0), None)

    def rates(r):
        return ", ".join(f"{s} {_pct(r[f'found {s}'])}" for s in face_sets)

    def fps(r):
        return f"{r['nonface_fp']} false positives on {r['nonface_images']} non-face images"

    out = [(f"Chosen default: BlazeFace score > {BLAZEFACE_THRESHOLD}, then O-Net "
            f"probability >= {VERIFY_THRESHOLD} (`detect_faces(..., verify=True)`), picked "
            f"on the non-face images and the {', '.join(sel)} faces (CK+48 is held out). "
            "O-Net thresholds of 0.4-0.7 drop nearly the same look-alikes; 0.6 is the middle "
            "of that range, and a stricter one loses near faces (below)."), "",
           (f"- Former default (score > 0.5, no verification): {fps(old)} (worst: "
            f"{', '.join(old['worst'])}); faces found: {rates(old)}."),
           (f"- Chosen: {fps(new)}; faces found: {rates(new)}; extra boxes per face "
            f"image {new['face_extra_per_image']:.3f} (was {old['face_extra_per_image']:.3f})."
            f" Run as shipped (`detect_faces`, last row): {fps(exact)}; faces found: "
            f"{rates(exact)}."),
           (f"- Stricter verification (O-Net >= {FP_VERIFY[-1]}): {fps(strict)}; faces found: "
            f"{rates(strict)}. The faces O-Net doubts are real ones lying sideways, in "
            "profile or of babies, which BlazeFace finds.")]
    if alone is None:
        out.append("- No BlazeFace threshold alone (up to "
                   f"{FP_SWEEP['blazeface'][-1]}) removes every false positive.")
    else:
        out.append(f"- A threshold alone needs score > {alone['threshold']} to reach "
                   f"{fps(alone)}, and then finds {rates(alone)}.")
    return out


def md_false_positives(rows, groups, cost, run):
    face_sets = [k[len("found "):] for k in rows[0] if k.startswith("found ")]
    n_nonface = rows[0]["nonface_images"]
    out = ["# Face detectors: false positives on images without a face", "", header(run),
           (f"Non-face images: {n_nonface} (scikit-image photos without a face, each whole, "
            "covering a 640x480 frame, mirrored and in random crops; blank, noise, blurred "
            "noise, gradient, stripe and checkerboard frames). Faces: `photos` = "
            "scikit-image's astronaut and cameraman (whole, mirrored, in a 640x480 frame); "
            "the other sets are gray face crops (scikit-image's LFW faces, FER-2013 *train*, "
            "CK+48) upscaled to 80-200 px and pasted at a random place on a random 640x480 "
            "non-face frame; `fer2013-train padded` = the same FER-2013 crops as near faces "
            "(192 px in a 48 px border of their mean grey, as in `results/face_detection.md`). "
            "A face is found when a box's centre is inside it and its size "
            "is 0.3-2.5 times the face's; every other box is a false positive (non-face "
            "images) or an extra box (face images). Pasted tight crops, without hair or "
            "neck, are harder than real photos: the rates compare settings, they are not "
            "the rates of a camera."), "",
           *_choice_text(rows, face_sets), "",
           (f"Cost: one BlazeFace pass {cost['blazeface_cpu_p50_ms']:.2f} ms, one O-Net "
            f"verification {cost['verify_cpu_p50_ms']:.2f} ms per face (CPU p50, 640x480 "
            "frame)."), "",
           "## Sweep", "",
           ("Threshold: BlazeFace score, Haar minNeighbors, MTCNN O-Net probability, dlib "
            "HOG adjust_threshold. Verify: O-Net probability BlazeFace's boxes must reach. "
            "Detectors at their default min_size (blazeface: one pass). Each detector ran "
            "once at its lowest threshold and the rows keep the boxes above theirs; the last "
            "row runs `detect_faces(img, 'blazeface')` itself, whose weighted NMS does not "
            "average in the boxes below 0.5, so it can differ from the 0.5 / 0.6 row by a "
            "box or two."), "",
           ("| detector | threshold | verify | non-face FP / image | non-face images with a "
            "FP | worst | " + " | ".join(f"found: {s}" for s in face_sets)
            + " | extra boxes / face image |"),
           "|---|---|---|---|---|---|" + "---|" * len(face_sets) + "---|"]
    for r in rows:
        out.append(f"| {_op_name(r)} | {r['nonface_fp_per_image']:.3f} | "
                   f"{r['nonface_images_with_fp']} | {', '.join(r['worst'])} | "
                   + " | ".join(_pct(r[f"found {s}"]) for s in face_sets)
                   + f" | {r['face_extra_per_image']:.3f} |")
    out += md_group(groups)
    return "\n".join(out) + "\n"


def md_group(groups):
    if not groups:
        return []
    n = groups[0]["photos"]
    out = ["", "## Group photo: 7 faces of 21-104 px in 1280x720", "",
           (f"{n} photos, each a non-face scikit-image photo covering 1280x720 with 7 pasted "
            "face crops, one of each size. Found per size (of "
            f"{n}), extra boxes per photo, CPU ms per photo (median, single thread)."), "",
           ("| detector | min_size | " + " | ".join(f"{s} px" for s in GROUP_SIDES)
            + " | found | extra / photo | CPU ms |"),
           "|---|---|" + "---|" * len(GROUP_SIDES) + "---|---|---|"]
    for g in groups:
        out.append(f"| {g['method']} | {g['min_size']} | "
                   + " | ".join(str(v) for v in g["found_per_side"])
                   + f" | {g['found']}/{g['faces']} | {g['extra_per_photo']:.1f} | "
                   f"{g['cpu_ms_per_photo']:.0f} |")
    return out


def false_positives(args, run):
    """``--false-positives``: sweep, group photos, and the report files."""
    import cv2

    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    records = false_positive_records(Path(args.data), rng, args.fp_faces, args.fp_crops)
    rows = [sweep_row(records, *op) for op in operating_points()]
    rows.append(sweep_row(records, "default", None, None))
    groups = group_rows(group_photos(Path(args.data), rng, args.group_photos))
    cost = verify_cost()
    run["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = RESULTS / "face"
    out.mkdir(parents=True, exist_ok=True)
    (out / "false_positives.md").write_text(md_false_positives(rows, groups, cost, run))
    sizes = {s: sum(r["set"] == s for r in records) for s in dict.fromkeys(
        r["set"] for r in records)}
    (out / "false_positives.json").write_text(json.dumps(
        {"run": run, "images": sizes, "cost": cost, "sweep": rows, "group": groups},
        indent=1, default=float))


def main():
    ap = argparse.ArgumentParser(description="Face-stage benchmark")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--limit", type=int, default=None,
                    help="images per dataset (seeded random subset); default all")
    ap.add_argument("--cnn-limit", type=int, default=300,
                    help="images per dataset for dlib-cnn (0 = same as the others)")
    ap.add_argument("--variants", default="padded,plain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-rates", action="store_true")
    ap.add_argument("--false-positives", action="store_true",
                    help="only the false-positive sweep and the group photo (5.)")
    ap.add_argument("--fp-faces", type=int, default=300,
                    help="pasted faces per face set (LFW has 100)")
    ap.add_argument("--fp-crops", type=int, default=6,
                    help="random crops per non-face photo")
    ap.add_argument("--group-photos", type=int, default=10)
    args = ap.parse_args()

    run = {"command": "python benchmarks/face.py " + " ".join(sys.argv[1:]),
           "seed": args.seed, "git_commit": git_commit()["commit"],
           "versions": versions(PACKAGES),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "cpu_count": os.cpu_count(),
           "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    (RESULTS / "face").mkdir(parents=True, exist_ok=True)
    if args.false_positives:
        false_positives(args, run)
        return
    lat = None if args.skip_latency else latency(args.repeats)
    if lat is not None:
        run["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        write_csv(RESULTS / "face" / "latency.csv", lat)
        (RESULTS / "face_latency.md").write_text(md_latency(lat, run))
        (RESULTS / "face" / "latency_run.json").write_text(json.dumps(run, indent=1))
    if not args.skip_rates:
        run["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
        det, lm, cal, cal_n = rates(Path(args.data), args.limit, args.cnn_limit, args.seed,
                                    args.variants.split(","))
        run["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        write_csv(RESULTS / "face" / "detection.csv", det)
        write_csv(RESULTS / "face" / "landmarks.csv", lm)
        (RESULTS / "face" / "calibration.json").write_text(
            json.dumps({"measured": cal, "pairs": cal_n}, indent=1))
        (RESULTS / "face_detection.md").write_text(md_detection(det, lm, cal, cal_n, run))
        (RESULTS / "face" / "detection_run.json").write_text(json.dumps(run, indent=1))


if __name__ == "__main__":
    main()
