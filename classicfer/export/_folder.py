"""Writing a model folder: ``model.onnx`` + ``model.json`` (+ ``model_card.md``).

The format and the sidecar schema are the runtime's
(:mod:`classicfer.runtime._format`, :mod:`classicfer.runtime._schema`); this
module only writes, validating the sidecar exactly as the runtime will read it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..exceptions import ModelError
from ..runtime._format import FORMAT, FORMAT_VERSION, ONNX_FILE, SIDECAR
from ..runtime._schema import SchemaError, check_sidecar
from .cards import write_model_card


def sidecar_text(onnx_bytes: bytes, sidecar: dict, where="model.json") -> str:
    """The ``model.json`` text for ``sidecar`` and the ONNX graph ``onnx_bytes``.

    Fills in ``format``, ``format_version``, ``temperature`` (1.0) when absent,
    and ``onnx.file`` / ``onnx.sha256``; validates the result against the
    runtime's schema.

    Raises
    ------
    ModelError
        ``kind``, ``labels`` or ``input`` missing, or a key the schema refuses
        (one line naming ``where`` and the key).
    """
    meta = dict(sidecar)
    meta.setdefault("format", FORMAT)
    meta.setdefault("format_version", FORMAT_VERSION)
    meta.setdefault("temperature", 1.0)
    onnx_meta = dict(meta.get("onnx", {}))
    onnx_meta["file"] = ONNX_FILE
    onnx_meta["sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    meta["onnx"] = onnx_meta
    missing = {"kind", "labels", "input"} - set(meta)
    if missing:
        raise ModelError(f"sidecar lacks {', '.join(sorted(missing))}")
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    try:
        check_sidecar(json.loads(text), format_name=FORMAT, format_version=FORMAT_VERSION)
    except SchemaError as e:
        raise ModelError(f"{where}: not written: {e}") from None
    return text


def write_model_dir(out_dir, onnx_bytes: bytes, sidecar: dict, *, card: bool = True) -> Path:
    """Write ``model.onnx``, ``model.json`` and ``model_card.md`` to ``out_dir``.

    The sidecar gets its checksum filled in; no card is written with ``card=False``.

    The sidecar is validated as :func:`classicfer.runtime.read_sidecar` would
    before anything is written (:func:`sidecar_text`). The card lists no
    evaluation report: :func:`classicfer.export.write_model_card` (``classicfer
    card``) adds them.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    text = sidecar_text(onnx_bytes, sidecar, out / SIDECAR)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).write_bytes(onnx_bytes)
    (out / SIDECAR).write_text(text)
    if card:  # every exported model gets a card; `classicfer card` refreshes it later
        write_model_card(out)
    return out


__all__ = ["sidecar_text", "write_model_dir"]
