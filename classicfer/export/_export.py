"""``classicfer export``: a trained pipeline or CNN checkpoint -> model folder, checked.

Sources (the developer's own files; loading a pickle/torch checkpoint happens
here, at export time, never in the runtime, and only when asked for with
``allow_pickle=True`` / ``--allow-pickle``: unpickling runs code stored in the file):

- a scikit-learn/classicfer pipeline saved with ``joblib`` (``*.joblib``,
  ``*.pkl``), or a folder holding one: exported with
  :func:`classicfer.export.save_model` (features in Python, classifier in ONNX);
- a CNN checkpoint (``*.pt``, ``*.pth``; or a training folder with
  ``checkpoints/best.pt``): exported with :func:`classicfer.export.export_model`
  (needs torch).

The parity check (:func:`classicfer.export.parity`) then runs the *deployed*
folder through the runtime (:class:`~classicfer.runtime.DeployedModel`, i.e.
features rebuilt from the sidecar, ONNX through onnxruntime) and the original
model on the same crops, and refuses the export (deleting the folder) when the
predicted labels differ on more than ``1 - min_agreement`` of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..config import PICKLE_EXTS
from ..exceptions import ConfigError, DataError, ModelError
from ._parity import parity

CHECKPOINT_EXTS = (".pt", ".pth", ".ckpt")


def find_source(source) -> tuple[str, Path]:
    """("classical" | "cnn", file) for a file or a folder."""
    p = Path(source)
    if not p.exists():
        raise ConfigError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() in PICKLE_EXTS:
            return "classical", p
        if p.suffix.lower() in CHECKPOINT_EXTS:
            return "cnn", p
        if p.name == "model.json":
            raise ConfigError(f"{p.parent}: already a deployment folder")
        raise ConfigError(f"{p}: unknown model file type; expected a pipeline "
                          f"({', '.join(PICKLE_EXTS)}) or a CNN checkpoint "
                          f"({', '.join(CHECKPOINT_EXTS)})")
    if (p / "model.json").is_file():
        raise ConfigError(f"{p}: already a deployment folder (model.json + model.onnx); "
                          f"nothing to export")
    for pattern in ("pipeline.joblib", "model.joblib", *(f"*{e}" for e in PICKLE_EXTS)):
        hits = sorted(p.glob(pattern))
        if hits:
            return "classical", hits[0]
    for pattern in ("checkpoints/best.pt", "best.pt", "*.pt", "*.pth", "checkpoints/*.pt"):
        hits = sorted(p.glob(pattern))
        if hits:
            return "cnn", hits[0]
    pickles = ", ".join(f"*{e}" for e in PICKLE_EXTS)
    raise ConfigError(f"{p}: holds no pipeline ({pickles}) or CNN checkpoint (*.pt)")


def check_crops(size=(48, 48), *, data=None, n: int = 64, seed: int = 0) -> np.ndarray:
    """Gray uint8 crops for the parity check.

    From ``data`` (a dataset path, ``n`` images sampled with ``seed``), else the
    bundled astronaut face with shifts, scales, flips and brightness changes
    (half) plus uniform noise crops (half).
    """
    import cv2

    h, w = size
    rng = np.random.default_rng(seed)
    if data is not None:
        from ..datasets import load_dataset

        ds = load_dataset(data)
        idx = rng.permutation(len(ds.images))[:n]
        return np.stack([cv2.resize(np.asarray(ds.images[i]), (w, h),
                                    interpolation=cv2.INTER_AREA) for i in idx])
    from ..imageio import read_image

    img = read_image(Path(__file__).resolve().parent.parent / "data" / "astronaut.jpg",
                     gray=True)
    x, y, s = 170, 60, 108
    out = []
    for _ in range(n // 2):
        dx, dy = rng.integers(-10, 11, 2)
        k = rng.uniform(1.0, 1.3)
        side = int(s * k)
        cx, cy = x + s // 2 + dx, y + s // 2 + dy
        c = img[max(0, cy - side // 2): cy + side // 2, max(0, cx - side // 2): cx + side // 2]
        c = cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        c = np.clip(c * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
        out.append(c[:, ::-1] if rng.random() < 0.5 else c)
    out += list(rng.integers(0, 256, (n - len(out), h, w), dtype=np.uint8))
    return np.ascontiguousarray(np.stack(out))


def check_inputs(source, out_dir, *, data=None, force: bool = False,
                 allow_pickle: bool = False) -> tuple[str, Path]:
    """The cheap checks of :func:`export`, run before any file is unpickled.

    Returns ``(kind, file)`` as :func:`find_source`.

    Raises
    ------
    ConfigError
        Unknown source, a non-empty ``out_dir`` without ``force``, or a pickle
        (joblib pipeline or torch checkpoint) without ``allow_pickle``.
    DataError
        ``data`` does not exist.
    """
    kind, path = find_source(source)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; choose another --out")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: folder exists and is not empty; choose another --out or "
                          f"pass --force")
    if data is not None and not Path(data).exists():
        raise DataError(f"{data}: no such file or directory")
    if not allow_pickle:
        what = "pipeline" if kind == "classical" else "torch checkpoint"
        raise ConfigError(f"{path} is a pickled {what}, and loading a pickle runs any code "
                          f"stored in it: refused unless you pass --allow-pickle "
                          f"(allow_pickle=True), only for files you made")
    return kind, path


def export(source, out_dir, *, name=None, data=None, n_check: int = 64,
           min_agreement: float = 0.995, dataset_name=None, force: bool = False,
           allow_pickle: bool = False) -> dict:
    """Export ``source`` to ``out_dir``; returns a report dict (kind, paths, parity).

    ``allow_pickle`` must be True: both sources (a joblib pipeline, a torch
    checkpoint) are pickles, and loading one runs code stored in it. Every other
    input is checked first (:func:`check_inputs`).

    Returns
    -------
    dict
        ``kind``, ``source``, ``out``, ``name``, ``labels``, ``sha256`` and
        ``parity``: :func:`classicfer.export.parity` of the original's and the
        deployed folder's probabilities on the check crops (``n``, ``agreement``,
        ``max_abs_diff``).
    """
    from ..runtime._model import DeployedModel

    kind, path = check_inputs(source, out_dir, data=data, force=force,
                              allow_pickle=allow_pickle)
    out = Path(out_dir)
    if kind == "classical":
        import joblib

        try:
            pipe = joblib.load(path)
        except Exception as e:  # noqa: BLE001 (any unpickling failure)
            raise ModelError(f"{path}: cannot load the pipeline ({e.__class__.__name__}: "
                             f"{e})") from None
        if not hasattr(pipe, "predict_proba") or not hasattr(pipe, "named_steps"):
            raise ModelError(f"{path}: not a classicfer pipeline with predict_proba "
                             f"(got {type(pipe).__name__})")
        feat = pipe.named_steps.get("features")
        shape = tuple(getattr(feat, "image_shape_", None) or (48, 48))
        crops = check_crops(shape, data=data, n=n_check)
        from ._classical import save_model

        save_model(pipe, out, dataset_name=dataset_name or "unknown", name=name,
                   check_images=crops)
        p_ref, labels_ref = pipe.predict_proba(crops), [str(c) for c in pipe.classes_]
    else:
        from ..cnn_head import require_torch

        torch = require_torch()  # the optional extra; errors in classicfer's own modules raise
        from ..cnn_head.train import load_checkpoint
        from ._cnn import export_model

        model, ck = load_checkpoint(path)
        size = tuple(ck.get("size", (48, 48)))
        export_model(model, out, classes=ck["classes"], mean=ck["mean"], std=ck["std"],
                     size=size, name=name or "fer2013-cnn",
                     training={"checkpoint": path.name, "epoch": ck.get("epoch")},
                     metrics={"val_accuracy": ck.get("val_acc")} if ck.get("val_acc") else None)
        crops = check_crops(size, data=data, n=n_check)
        x = (crops.astype(np.float32)[:, None] / 255.0 - float(ck["mean"])) / float(ck["std"])
        with torch.no_grad():
            p_ref = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
        labels_ref = list(ck["classes"])
    deployed = DeployedModel(out)
    check = parity(np.asarray(p_ref, np.float64), deployed.predict_proba(crops),
                   labels=labels_ref, deployed_labels=deployed.labels)
    if check["agreement"] < min_agreement:
        shutil.rmtree(out, ignore_errors=True)
        raise ModelError(f"parity check failed: the deployed model agrees with the original "
                         f"on {check['agreement']:.1%} of {check['n']} crops "
                         f"(< {min_agreement:.1%}); nothing written")
    return {"kind": kind, "source": str(path), "out": str(out), "name": deployed.name,
            "labels": deployed.labels, "sha256": deployed.sidecar["onnx"]["sha256"],
            "parity": check}


__all__ = ["CHECKPOINT_EXTS", "check_crops", "check_inputs", "export", "find_source"]
