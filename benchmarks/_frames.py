"""The benchmark frame shared by latency.py and serve_load.py."""

from __future__ import annotations

import io
from pathlib import Path

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


def make_frame() -> bytes:
    """The benchmark frame, JPEG bytes (640x480, one face)."""
    import numpy as np
    from PIL import Image

    face = Image.open(ASTRONAUT).convert("RGB").resize((480, 480), Image.BILINEAR)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = np.asarray(face)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="JPEG", quality=90)
    return buf.getvalue()
