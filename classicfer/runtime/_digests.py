"""Model folder digests: pinning a model, and the digests recorded for the bundled ones.

A folder digest (:func:`classicfer.runtime._format.folder_digest`) covers every
file the loader reads, ``model.json`` included, so it also protects what the ONNX
checksum does not: the labels, their order, the normalisation, the temperature.

- A kiosk pins its model with ``--model-digest HEX`` (``predict``, ``watch``,
  ``serve``) or ``$CLASSICFER_MODEL_DIGEST``; ``classicfer model-digest MODEL``
  prints the value to pin.
- Every folder shipped in ``classicfer/bundled_models/`` is checked against
  ``classicfer/bundled_models/DIGESTS.json`` whenever it is loaded. After replacing or
  recalibrating a bundled model on purpose, record its new digest with::

      classicfer model-digest --record-bundled

  (the same as ``python -c "from classicfer.runtime._digests import
  record_bundled_digests; record_bundled_digests()"``).
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

from ..exceptions import ModelError
from ._format import ModelFiles, is_model_dir, normalise_digest, read_model_files

#: Environment variable pinning the model's folder digest.
DIGEST_ENV = "CLASSICFER_MODEL_DIGEST"
#: File in ``classicfer/bundled_models/`` recording the bundled models' digests.
DIGESTS_FILE = "DIGESTS.json"
#: The command that regenerates :data:`DIGESTS_FILE`.
RECORD_COMMAND = "classicfer model-digest --record-bundled"


def bundled_models_dir() -> Path:
    """``classicfer/bundled_models/``: the folder of the bundled models and :data:`DIGESTS_FILE`."""
    return Path(__file__).resolve().parent.parent / "bundled_models"


def _bundled_root() -> Path:
    return bundled_models_dir()


def pinned_digest(digest=None) -> str | None:
    """The digest to enforce: ``digest`` if given, else ``$CLASSICFER_MODEL_DIGEST``, else None.

    Raises
    ------
    ConfigError
        The value is not 64 hex digits.
    """
    if digest is not None and str(digest).strip():
        return normalise_digest(digest, "the model digest")
    env = os.environ.get(DIGEST_ENV, "").strip()
    return normalise_digest(env, f"${DIGEST_ENV}") if env else None


def recorded_digests(root=None) -> dict:
    """``{folder name: digest}`` from ``DIGESTS.json`` in ``root`` (default: the bundled models).

    Raises
    ------
    ModelError
        The file is unreadable or malformed.
    """
    path = Path(root if root is not None else _bundled_root()) / DIGESTS_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{path}: unreadable ({e.__class__.__name__}); regenerate it with "
                         f"`{RECORD_COMMAND}`") from None
    digests = doc.get("digests") if isinstance(doc, dict) else None
    if not isinstance(digests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
        raise ModelError(f"{path}: expected {{\"digests\": {{name: hex}}}}; regenerate it with "
                         f"`{RECORD_COMMAND}`")
    return {k: v.strip().lower() for k, v in digests.items()}


def bundled_name(folder, root=None) -> str | None:
    """The name of ``folder`` if it is a folder of ``root`` (default: the bundled models)."""
    root = Path(root if root is not None else _bundled_root())
    real = Path(os.path.realpath(folder))
    return real.name if real.parent == Path(os.path.realpath(root)) else None


def check_pinned(digest: str, pinned: str | None, folder) -> None:
    """Refuse ``folder`` (one line) when ``pinned`` is given and differs from ``digest``."""
    if pinned is not None and not hmac.compare_digest(digest, pinned):
        raise ModelError(f"{folder}: model digest {digest[:16]}... is not the pinned "
                         f"{pinned[:16]}... (--model-digest / ${DIGEST_ENV}); refusing to load")


def check_digests(files: ModelFiles, pinned: str | None = None, root=None) -> str:
    """Refuse ``files`` unless its digest is the expected one; return the digest.

    Expected: ``pinned`` (when given) and, for a bundled model, the digest recorded in
    ``DIGESTS.json``.

    Raises
    ------
    ModelError
        A mismatch, or a bundled model with no recorded digest.
    """
    digest = files.digest
    check_pinned(digest, pinned, files.folder)
    root = Path(root if root is not None else _bundled_root())
    name = bundled_name(files.folder, root)
    if name is None:
        return digest
    want = recorded_digests(root).get(name)
    if want is None:
        raise ModelError(f"{files.folder}: bundled model {name!r} has no digest in "
                         f"{root / DIGESTS_FILE}; record it with `{RECORD_COMMAND}`")
    if not hmac.compare_digest(digest, want):
        raise ModelError(f"{files.folder}: bundled model {name!r} does not match its recorded "
                         f"digest ({want[:16]}..., files give {digest[:16]}...): modified, "
                         f"refusing to load (if replaced on purpose: `{RECORD_COMMAND}`)")
    return digest


def model_digest(model_dir) -> str:
    """The folder digest of a valid model folder (sidecar validated, ONNX checksum verified).

    Parameters
    ----------
    model_dir : str or Path
        A model folder or its ``model.json``.

    Returns
    -------
    str
        64 lowercase hex digits, the value ``--model-digest`` expects.
    """
    return read_model_files(model_dir).digest


def bundled_digests(root=None) -> dict:
    """``{name: digest}`` computed from the files of every model folder in ``root``."""
    root = Path(root if root is not None else _bundled_root())
    if not root.is_dir():
        return {}
    return {p.name: model_digest(p) for p in sorted(root.iterdir())
            if p.is_dir() and is_model_dir(p)}


def record_bundled_digests(root=None) -> dict:
    """Compute the digests of the bundled model folders and write ``DIGESTS.json``.

    Parameters
    ----------
    root : str or Path, optional
        Folder of model folders (default: ``classicfer/bundled_models/``).

    Returns
    -------
    dict
        ``{name: digest}`` as written.
    """
    root = Path(root if root is not None else _bundled_root())
    digests = bundled_digests(root)
    doc = {"comment": "Folder digests of the bundled models (model.json + model.onnx), "
                      f"checked on every load. Regenerate: {RECORD_COMMAND}",
           "digests": digests}
    (root / DIGESTS_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    return digests


__all__ = [
    "DIGESTS_FILE",
    "DIGEST_ENV",
    "bundled_digests",
    "bundled_models_dir",
    "bundled_name",
    "check_digests",
    "check_pinned",
    "model_digest",
    "pinned_digest",
    "record_bundled_digests",
    "recorded_digests",
]
