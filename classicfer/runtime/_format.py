"""The deployment format: a folder with ``model.onnx`` and ``model.json``.

``model.json`` (the sidecar) holds everything needed to run the model without
torch or pickles: labels, input size and normalisation, the feature parameters
of a classical pipeline, the sha256 of the ONNX file, and a training/metrics
summary. Loading verifies the checksum and refuses a mismatch.

Sidecar keys
------------
format : "classicfer-model"          format_version : 1
kind : "cnn" | "classical"           name : str
labels : list[str]                   (canonical names, output order)
input : {"size": [H, W], "color": "gray"|"rgb", "crop": "whole"|"aligned",
         "scale": float, "mean": float, "std": float}
         (CNN input = (pixels * scale - mean) / std, NCHW float32)
features : {"spec": "hog+lbp", "params": {...}}   (classical only)
onnx : {"file": "model.onnx", "sha256": str, "input": str, "output": str,
        "output_kind": "logits"|"probabilities"}
         (CNN graphs output logits; classical graphs output probabilities)
temperature : float                  (probabilities = softmax(logits / T), or for a
                                      probabilities output softmax(log(p) / T); 1.0 = none)
training : dict                      metrics : dict
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..exceptions import ModelError

FORMAT = "classicfer-model"
FORMAT_VERSION = 1
SIDECAR = "model.json"
ONNX_FILE = "model.onnx"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_model_dir(out_dir, onnx_bytes: bytes, sidecar: dict, *, card: bool = True) -> Path:
    """Write ``model.onnx`` and ``model.json`` (checksum filled in) to ``out_dir``,
    and ``model_card.md`` unless ``card=False`` (see :mod:`classicfer.cards`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).write_bytes(onnx_bytes)
    meta = dict(sidecar)
    meta.setdefault("format", FORMAT)
    meta.setdefault("format_version", FORMAT_VERSION)
    meta.setdefault("temperature", 1.0)
    onnx_meta = dict(meta.get("onnx", {}))
    onnx_meta["file"] = ONNX_FILE
    onnx_meta["sha256"] = sha256_file(out / ONNX_FILE)
    meta["onnx"] = onnx_meta
    missing = {"kind", "labels", "input"} - set(meta)
    if missing:
        raise ModelError(f"sidecar lacks {', '.join(sorted(missing))}")
    (out / SIDECAR).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if card:  # every exported model gets a card; `classicfer card` refreshes it later
        from ..cards import write_model_card

        write_model_card(out)
    return out


def read_sidecar(model_dir) -> tuple[dict, Path]:
    """Read and check ``model.json``; verify the ONNX file's sha256.

    Returns the sidecar dict and the path of the ONNX file.
    """
    d = Path(model_dir)
    if d.is_file() and d.name == SIDECAR:
        d = d.parent
    if not d.exists():
        raise ModelError(f"{d}: no such model folder")
    side = d / SIDECAR
    if not side.is_file():
        raise ModelError(f"{d}: not a classicfer model folder (no {SIDECAR})")
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{side}: invalid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{side}: not a classicfer model sidecar (format={meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{side}: format_version {meta['format_version']} is newer than this "
                         f"classicfer understands ({FORMAT_VERSION}); upgrade classicfer")
    onnx_meta = meta.get("onnx") or {}
    onnx_path = d / onnx_meta.get("file", ONNX_FILE)
    if not onnx_path.is_file():
        raise ModelError(f"{d}: missing {onnx_path.name}")
    want = onnx_meta.get("sha256")
    if not want:
        raise ModelError(f"{side}: no sha256 for {onnx_path.name}; refusing an unverified model")
    got = sha256_file(onnx_path)
    if got != want:
        raise ModelError(f"{onnx_path}: checksum mismatch (sidecar says {want[:12]}..., file is "
                         f"{got[:12]}...); the model was modified or corrupted, refusing to load")
    return meta, onnx_path


def is_model_dir(path) -> bool:
    return (Path(path) / SIDECAR).is_file()


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ONNX_FILE",
    "SIDECAR",
    "is_model_dir",
    "read_sidecar",
    "sha256_file",
    "write_model_dir",
]
