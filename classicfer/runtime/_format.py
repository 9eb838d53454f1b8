"""The deployment format: a folder with ``model.onnx`` and ``model.json`` (reading it).

``model.json`` (the sidecar) holds everything needed to run the model without
torch or pickles: labels, input size and normalisation, the feature parameters
of a classical pipeline, the sha256 of the ONNX file, and a training/metrics
summary. Loading validates every key it uses against a schema
(:mod:`classicfer.runtime._schema`: types, canonical and unique labels, a finite
temperature > 0, ``onnx.file`` a plain file name inside the folder), verifies
the checksum and refuses a mismatch, each with a one-line :class:`ModelError`.
Folders are written by :func:`classicfer.export.write_model_dir`, which fills in
the checksum and validates against the same schema before writing.

Sidecar keys
------------
format : "classicfer-model"          format_version : 1
kind : "cnn" | "classical"           name : str
labels : list[str]                   (canonical names, unique, output order; as many
                                      as the graph outputs per face)
input : {"size": [H, W], "color": "gray"|"rgb", "crop": "whole"|"box"|"level"|"aligned",
         "scale": float > 0, "mean": float | [float per channel],
         "std": float > 0 | [float > 0 per channel]}
         (CNN input = (pixels * scale - mean) / std, NCHW float32)
features : {"spec": "hog+lbp", "params": {...},   (classical only)
            "align": {"method": "eyes", "margin": float, "parts": ["hog", "lbp"]}}
         ("align", when present, is the eye-alignment step: it runs once on the crops
          before the descriptors named in "parts"; the others see the crops as given)
onnx : {"file": "model.onnx", "sha256": str, "input": str, "output": str,
        "output_kind": "logits"|"probabilities"}
         ("file" is a plain name in the model folder; "sha256" is required)
         (CNN graphs output logits; classical graphs output probabilities)
temperature : float > 0, finite      (probabilities = softmax(logits / T), or for a
                                      probabilities output softmax(log(p) / T); 1.0 = none)
training : dict                      metrics : dict
quantization : {"method": str, "calibration": {"split", "n", "seed"}, "check": {"split", "n"},
                "accuracy_fp32", "accuracy_int8", "drop", "max_drop": numbers, ...}
         (an int8 model written by ``classicfer quantize``: how it was made and what it
          scored against its float32 source on the check split)

Folder digest
-------------
The sha256 above covers the ONNX file only. :func:`folder_digest` covers every
file the loader reads (``model.json`` and the ONNX file): sha256 over, for each
file in sorted name order, its name (UTF-8), a NUL byte, its length (8 bytes,
big-endian) and its bytes. ``classicfer model-digest MODEL`` prints it; a kiosk
pins a model with ``--model-digest HEX`` or ``$CLASSICFER_MODEL_DIGEST``, and the
bundled models are checked against ``classicfer/bundled_models/DIGESTS.json``
(:mod:`classicfer.runtime._digests`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import ConfigError, ModelError
from ._schema import SchemaError, check_sidecar

FORMAT = "classicfer-model"
FORMAT_VERSION = 1
SIDECAR = "model.json"
ONNX_FILE = "model.onnx"
#: Largest ``model.json`` read (the bundled one is ~25 kB).
MAX_SIDECAR_BYTES = 16 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(files) -> str:
    """The digest of a model folder from ``{file name: bytes}`` (see the module docstring).

    Parameters
    ----------
    files : mapping of str to bytes
        Every file the loader reads, by its name in the folder.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def normalise_digest(value, source: str = "digest") -> str:
    """``value`` as 64 lowercase hex digits; else a :class:`ConfigError` naming ``source``."""
    text = str(value).strip().lower()
    if not _HEX64.fullmatch(text):
        raise ConfigError(f"{source} must be 64 hex digits (as printed by `classicfer "
                          f"model-digest MODEL`), got {text[:70]!r}")
    return text


@dataclass(frozen=True)
class ModelFiles:
    """The bytes of a model folder as read once by the loader (validated, checksum verified)."""

    folder: Path
    sidecar: dict
    sidecar_bytes: bytes
    onnx_path: Path
    onnx_bytes: bytes

    @property
    def digest(self) -> str:
        """:func:`folder_digest` of ``model.json`` and the ONNX file."""
        return folder_digest({SIDECAR: self.sidecar_bytes, self.onnx_path.name: self.onnx_bytes})


def model_folder(model_dir) -> Path:
    """The folder of ``model_dir`` (a folder or its ``model.json``); ModelError if absent."""
    d = Path(model_dir)
    if d.name == SIDECAR and d.is_file():
        d = d.parent
    if not d.exists():
        raise ModelError(f"{d}: no such model folder")
    if not d.is_dir():
        raise ModelError(f"{d}: not a model folder (expected a folder with {SIDECAR} and "
                         f"{ONNX_FILE})")
    return d


def _read_regular(path: Path, missing: str, limit: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (never blocks on a FIFO or device)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(missing) from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read it ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{path}: not a regular file")
        if limit is not None and st.st_size > limit:
            raise ModelError(f"{path}: {st.st_size} bytes, more than the {limit} allowed")
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ModelError(f"{path}: more than the {limit} bytes allowed")
    return data


def parse_sidecar(raw: bytes, where) -> dict:
    """Parse and validate the bytes of a ``model.json``; ``where`` names it in errors."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelError(f"{where}: invalid JSON (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{where}: invalid JSON ({str(e).splitlines()[0][:200]})") from None
    try:
        check_sidecar(meta, format_name=FORMAT, format_version=FORMAT_VERSION)
    except SchemaError as e:
        raise ModelError(f"{where}: {e}") from None
    return meta


def _confined(path: Path, folder: Path) -> Path:
    """``path`` if it resolves inside ``folder`` (a symlink may not lead out of it)."""
    real = Path(os.path.realpath(path))
    if real.parent != Path(os.path.realpath(folder)):
        raise ModelError(f"{path}: leads outside the model folder (to {real}); refusing it")
    return path


def read_model_files(model_dir) -> ModelFiles:
    """Read a model folder once: validate ``model.json``, read and checksum the ONNX file.

    ``onnx.file`` is checked to be a plain file name inside the folder before any
    file but ``model.json`` is opened.

    Raises
    ------
    ModelError
        Missing folder or file, invalid sidecar (one line naming the key), a file
        leading outside the folder, or a checksum mismatch.
    """
    d = model_folder(model_dir)
    side = d / SIDECAR
    raw = _read_regular(side, f"{d}: not a classicfer model folder (no {SIDECAR})",
                        MAX_SIDECAR_BYTES)
    meta = parse_sidecar(raw, side)
    onnx_meta = meta["onnx"]
    name = onnx_meta.get("file", ONNX_FILE)
    onnx_path = _confined(d / name, d)
    data = _read_regular(onnx_path, f"{d}: missing {name}")
    want = onnx_meta["sha256"].lower()
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise ModelError(f"{onnx_path}: checksum mismatch (sidecar says {want[:12]}..., file is "
                         f"{got[:12]}...); the model was modified or corrupted, refusing to load")
    return ModelFiles(d, meta, raw, onnx_path, data)


def read_sidecar(model_dir) -> tuple[dict, Path]:
    """Read and check ``model.json``; verify the ONNX file's sha256.

    Returns the sidecar dict and the path of the ONNX file.

    Raises
    ------
    ModelError
        See :func:`read_model_files`.
    """
    files = read_model_files(model_dir)
    return files.sidecar, files.onnx_path


def is_model_dir(path) -> bool:
    """Whether ``path`` is a folder holding a ``model.json`` (not validated)."""
    return (Path(path) / SIDECAR).is_file()


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ONNX_FILE",
    "SIDECAR",
    "ModelFiles",
    "folder_digest",
    "is_model_dir",
    "model_folder",
    "normalise_digest",
    "parse_sidecar",
    "read_model_files",
    "read_sidecar",
    "sha256_file",
]
