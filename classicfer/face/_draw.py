"""Draw detected faces and landmarks on an image (for ``classicfer detect --out``)."""

from __future__ import annotations

import numpy as np

from ..imageio import as_uint8_image


def draw_faces(image, faces, *, color=(0, 255, 0), point_color=(255, 0, 0),
               thickness: int | None = None) -> np.ndarray:
    """RGB copy of ``image`` with each face's box, score and landmarks drawn."""
    import cv2

    img = as_uint8_image(image).copy()
    H, W = img.shape[:2]
    t = thickness or max(1, round(max(H, W) / 400))
    r = max(1, t)
    for f in faces:
        x, y, w, h = (int(v) for v in f.box)
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), color, t)
        label = f"{f.method} {f.score:.2f}"
        cv2.putText(img, label, (x, max(10, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * t, color, max(1, t // 2), cv2.LINE_AA)
        if f.landmarks is not None:
            for px, py in np.asarray(f.landmarks):
                cv2.circle(img, (round(px), round(py)), r, point_color, -1,
                           cv2.LINE_AA)
    return img
