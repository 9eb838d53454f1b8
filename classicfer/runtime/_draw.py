"""Annotated images: boxes, labels, probability bars, face blurring, notices."""

from __future__ import annotations

import numpy as np

#: Default on-screen notice drawn by ``classicfer watch`` (``--notice`` changes it).
DEFAULT_NOTICE = "Emotion recognition is active on this camera"

_COLORS = {  # RGB
    "angry": (230, 57, 70), "disgust": (106, 153, 78), "fear": (155, 93, 229),
    "happy": (255, 190, 11), "neutral": (173, 181, 189), "sad": (58, 134, 255),
    "surprise": (255, 0, 110), "contempt": (141, 96, 67),
}
_OTHER = (200, 200, 200)


def label_color(label) -> tuple:
    return _COLORS.get(label, _OTHER)


def blur_box(image, box, *, strength: float = 0.25) -> None:
    """Blur the face box in place (pixelate then smooth; unrecognisable at any size)."""
    import cv2

    H, W = image.shape[:2]
    x, y, w, h = (int(v) for v in box)
    pad = int(0.15 * max(w, h))
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(W, x + w + pad), min(H, y + h + pad)
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    small = cv2.resize(roi, (max(1, int((x1 - x0) * 0.06)), max(1, int((y1 - y0) * 0.06))),
                       interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    k = max(3, int(max(w, h) * strength) | 1)
    image[y0:y1, x0:x1] = cv2.GaussianBlur(big, (k, k), 0)


def _text(img, text, org, scale, color, thick=1, bg=None):
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = int(org[0]), int(org[1])
    if bg is not None:
        cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base + 1), bg, -1)
    cv2.putText(img, text, (x, y), font, scale, color, thick, cv2.LINE_AA)
    return tw, th + base


def draw_notice(img, text=DEFAULT_NOTICE, *, fps=None) -> None:
    """A banner across the bottom of the frame (and the FPS readout top-left)."""
    import cv2

    H, W = img.shape[:2]
    scale = max(0.4, min(1.0, W / 1000))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bh = th + base + 10
    overlay = img[H - bh:H].copy()
    overlay[:] = (overlay * 0.25).astype(np.uint8)
    img[H - bh:H] = overlay
    if text:
        _text(img, text, ((W - tw) // 2, H - base - 5), scale, (255, 255, 255))
    if fps is not None:
        _text(img, f"{fps:5.1f} fps", (6, 6 + th), scale, (255, 255, 255), bg=(0, 0, 0))


def annotate(image, faces, labels=None, *, blur=False, notice=None, fps=None, bars=True,
             ids=None) -> np.ndarray:
    """Return a copy of ``image`` (RGB) with boxes, labels and probability bars.

    Parameters
    ----------
    faces : list of FaceResult (or anything with ``box``, ``label``, ``status``,
        ``confidence``, ``probabilities``)
    blur : bool
        Blur every face box before drawing (privacy).
    notice : str, optional
        Draw this text in a banner (``watch`` always does).
    ids : list, optional
        Track ids shown next to the labels.
    """
    import cv2

    img = np.ascontiguousarray(image).copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    W = img.shape[1]
    if blur:
        for f in faces:
            blur_box(img, f.box)
    scale = max(0.4, min(0.9, W / 1100))
    for i, f in enumerate(faces):
        x, y, w, h = (int(v) for v in f.box)
        status = getattr(f, "status", "ok")
        if status == "ok":
            color = label_color(f.label)
            text = f"{f.label} {f.confidence:.2f}"
        elif status == "uncertain":
            color = _OTHER
            text = f"uncertain ({f.best_guess} {f.confidence:.2f})"
        else:
            color = _OTHER
            text = "too small"
        if ids is not None and ids[i] is not None:
            text = f"#{ids[i]} {text}"
        thick = max(1, round(max(w, h) / 80))
        cv2.rectangle(img, (x, y), (x + w, y + h), color, thick)
        ty = y - 6 if y > 24 else y + h + 18
        _text(img, text, (x, ty), scale, (0, 0, 0), bg=color)
        probs = getattr(f, "probabilities", None)
        if bars and probs:
            _bars(img, probs, x, y, w, h, scale)
    if notice is not None or fps is not None:
        draw_notice(img, notice or "", fps=fps)
    return img


def _bars(img, probs, x, y, w, h, scale):
    import cv2

    H, W = img.shape[:2]
    n = len(probs)
    row = max(10, int(h / max(n, 1)))
    row = min(row, 18)
    bw = max(40, int(w * 0.6))
    fs = max(0.3, row / 40)
    bx = x + w + 6
    if bx + bw + 70 > W:  # no room on the right: draw on the left
        bx = max(0, x - bw - 76)
    for i, (lab, p) in enumerate(probs.items()):
        yy = y + i * row
        if yy + row > H:
            break
        cv2.rectangle(img, (bx, yy + 2), (bx + bw, yy + row - 2), (40, 40, 40), -1)
        cv2.rectangle(img, (bx, yy + 2), (bx + int(bw * float(p)), yy + row - 2),
                      label_color(lab), -1)
        _text(img, f"{lab[:8]} {float(p):.2f}", (bx + bw + 4, yy + row - 4), fs,
              (255, 255, 255), bg=(0, 0, 0))
