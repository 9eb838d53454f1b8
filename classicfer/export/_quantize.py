"""Int8 post-training static quantisation of a CNN model folder, kept only if it holds up.

:func:`quantize_model` (``classicfer quantize``) turns a ``kind == "cnn"`` model folder
into an int8 one with onnxruntime's static quantisation: the graph is pre-processed
(``quant_pre_process``: shape inference, graph optimisation), then
``quantize_static`` writes QuantizeLinear/DequantizeLinear pairs (QDQ format) with
int8 weights, one scale per output channel, and uint8 activations whose ranges are
the minimum and maximum seen on calibration crops (drawn, seeded, from a training
split).

Both models are then scored on a validation split through the runtime
(:class:`~classicfer.runtime.DeployedModel` on the source folder and on the written
int8 folder, so the int8 figure is that of the files that ship), and the int8 folder
is kept only when its accuracy is at most ``max_drop`` below the float32 one. It is
written to a hidden folder beside ``out_dir`` and renamed at the end: a refused or
failed run leaves nothing behind.

The int8 sidecar is the source's with its own ``name`` (``<source>-int8`` by
default), checksum, ``metrics`` (its accuracy on the check split; the source's move to
``quantization.source``) and a ``quantization`` record (method, calibration and check
splits and sizes, seed, both accuracies, the drop and the limit, onnxruntime's
version).
"""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..exceptions import ClassicferError, ConfigError, DataError, ModelError
from ._folder import write_model_dir

METHOD = ("onnxruntime static post-training quantization: QDQ format, int8 weights per "
          "output channel, uint8 activations, min-max calibration")
#: Crops per calibration run of onnxruntime's calibrator.
CALIBRATION_BATCH = 32
#: Crops per run when scoring.
SCORE_BATCH = 64


def _identity(iterable, **_):
    return iterable


def source_model(model, threads=None):
    """The float32 source: a loaded :class:`~classicfer.runtime.DeployedModel` of kind cnn.

    Parameters
    ----------
    model : str, Path or DeployedModel
        A model folder, the name of a bundled model, or a loaded model.
    threads : int, optional
        onnxruntime intra-op threads (default ``$CLASSICFER_THREADS`` or 1).

    Raises
    ------
    ModelError
        Not a valid model folder, or a classical model (its features run in Python:
        there is no image graph to quantise).
    """
    from ..runtime._model import DeployedModel, resolve_model_dir

    if not isinstance(model, DeployedModel):
        model = DeployedModel(resolve_model_dir(model), threads=threads)
    if model.kind != "cnn":
        raise ModelError(f"{model.path}: a {model.kind} model (features in Python, only the "
                         f"classifier in ONNX); quantize takes a CNN model folder")
    return model


def check_out_dir(out_dir, source_dir, *, force: bool = False) -> Path:
    """``out_dir`` as a Path after the checks made before any work.

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, the source folder, a folder of the bundled models, or a
        non-empty folder without ``force``.
    """
    from ..runtime._digests import bundled_models_dir

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; choose another --out")
    real = Path(os.path.realpath(out))
    if real == Path(os.path.realpath(source_dir)):
        raise ConfigError(f"{out}: is the source model's folder; choose another --out")
    if real.parent == Path(os.path.realpath(bundled_models_dir())):
        raise ConfigError(f"{out}: inside the bundled models' folder, which is not changed; "
                          f"choose an --out elsewhere")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: folder exists and is not empty; choose another --out or "
                          f"pass --force")
    return out


def _check_max_drop(max_drop) -> float:
    try:
        value = float(max_drop)
    except (TypeError, ValueError):
        raise ConfigError(f"max_drop must be a number, got {max_drop!r}") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"max_drop must be between 0 and 1 (a fraction of accuracy: 0.005 = "
                          f"half a point), got {max_drop!r}")
    return value


def _calibration_sample(calibration, n: int, seed: int) -> list:
    """``n`` crops of ``calibration`` drawn without replacement (all when fewer), seeded."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n_calibration must be an integer >= 1, got {n!r}")
    total = len(calibration)
    if total == 0:
        raise DataError("no calibration crops (the training split is empty)")
    idx = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    return [calibration[i] for i in idx]


def _check_rows(check, labels) -> tuple[list, np.ndarray]:
    """The ``(crops, labels)`` rows of ``check`` whose label the model predicts."""
    try:
        crops, truth = check
    except (TypeError, ValueError):
        raise ConfigError("check must be a pair (crops, labels)") from None
    truth = np.asarray(truth).astype(str)
    if len(crops) != len(truth):
        raise DataError(f"check: {len(crops)} crops but {len(truth)} labels")
    keep = np.flatnonzero(np.isin(truth, list(labels)))
    if len(keep) == 0:
        raise DataError(f"no check crop has a label the model predicts ({', '.join(labels)})")
    return [crops[i] for i in keep], truth[keep]


def accuracy(model, crops, labels, *, progress=None, desc: str = "score") -> float:
    """Share of ``crops`` whose predicted label (argmax of ``predict_proba``) is ``labels``.

    Parameters
    ----------
    model : DeployedModel
        The model scored.
    crops : sequence of arrays
        Face crops (resized to the model's input by the runtime).
    labels : array of str
        Canonical labels, one per crop.
    progress : callable, optional
        ``progress(iterable, desc=..., total=...)`` wrapping the loop over batches
        (e.g. a tqdm bar).
    desc : str
        Name of the loop for ``progress``.

    Returns
    -------
    float
    """
    wrap = progress or _identity
    names = np.asarray(model.labels)
    starts = range(0, len(crops), SCORE_BATCH)
    correct = 0
    for i in wrap(starts, desc=desc, total=len(starts)):
        p = model.predict_proba(crops[i:i + SCORE_BATCH])
        correct += int((names[p.argmax(axis=1)] == labels[i:i + SCORE_BATCH]).sum())
    return correct / len(crops)


def _reader(model, crops, progress):
    """An onnxruntime calibration reader feeding ``crops`` as the runtime does, in batches."""
    from onnxruntime.quantization import CalibrationDataReader

    starts = range(0, len(crops), CALIBRATION_BATCH)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter((progress or _identity)(starts, desc="calibrate", total=len(starts)))

        def get_next(self):
            i = next(self.it, None)
            if i is None:
                return None
            return {model.input_name: model.cnn_input(crops[i:i + CALIBRATION_BATCH])}

    return Reader()


def quantized_bytes(model, onnx_bytes: bytes, crops, *, progress=None) -> bytes:
    """The int8 QDQ graph of ``onnx_bytes``, calibrated on ``crops`` fed as ``model`` does.

    Raises
    ------
    ModelError
        onnxruntime cannot pre-process or quantise the graph (one line).
    """
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="classicfer-quantize-") as tmp:
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(onnx_bytes)
        try:
            quant_pre_process(str(src), str(pre))
            quantize_static(str(pre), str(out), _reader(model, crops, progress),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        except ClassicferError:
            raise
        except Exception as e:  # noqa: BLE001 (onnxruntime raises its own types)
            raise ModelError(f"{model.path}: onnxruntime cannot quantise the graph "
                             f"({e.__class__.__name__}: {str(e).splitlines()[0][:200]})"
                             ) from None
        return out.read_bytes()


def _sidecar(model, name: str, record: dict, acc_int8: float) -> dict:
    """The int8 sidecar: the source's with ``name``, ``metrics`` and ``quantization``."""
    meta = copy.deepcopy(model.sidecar)
    meta["name"] = name
    meta["onnx"] = {k: v for k, v in meta["onnx"].items() if k != "sha256"}
    source = {"name": model.name, "onnx_sha256": model.sidecar["onnx"]["sha256"]}
    if meta.get("metrics"):
        source["metrics"] = meta["metrics"]
    meta["metrics"] = {"accuracy": acc_int8, "split": record["check"]["split"],
                       "n_samples": record["check"]["n"]}
    if record.get("dataset"):
        meta["metrics"]["dataset"] = record["dataset"]
    meta["quantization"] = {**record, "source": source}
    return meta


def _record(*, n_calibration, n_check, seed, splits, dataset, max_drop) -> dict:
    import onnxruntime

    rec = {"method": METHOD,
           "calibration": {"split": splits[0], "n": n_calibration, "seed": int(seed)},
           "check": {"split": splits[1], "n": n_check},
           "max_drop": max_drop, "onnxruntime": onnxruntime.__version__}
    if dataset:
        rec["dataset"] = str(dataset)
    return rec


def _stage_dir(out: Path) -> tuple[Path, list]:
    """A hidden folder beside ``out`` and the missing parent folders it needed."""
    made = []
    parent = out.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    try:
        for d in reversed(made):
            d.mkdir()
        while True:  # a plain mkdir: the usual permissions (mkdtemp's are 0700)
            stage = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
            try:
                stage.mkdir()
                return stage, made
            except FileExistsError:
                continue
    except OSError as e:
        _remove_empty(made)
        raise ConfigError(f"{out}: cannot write there ({e.strerror or e}); choose another "
                          f"--out") from None


def _publish(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` folder to ``out`` (replacing it: checked before)."""
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(stage, out)


def _write_scored(model, stage: Path, data: bytes, meta: dict, check, progress) -> float:
    """Write the int8 folder to ``stage`` and score it through the runtime."""
    from ..runtime._model import DeployedModel

    write_model_dir(stage, data, meta, card=False)
    int8 = DeployedModel(stage, threads=model.threads)
    return accuracy(int8, *check, progress=progress, desc="score int8")


def _refusal(acc32: float, acc8: float, max_drop: float, split: str) -> ModelError:
    return ModelError(f"int8 model refused: accuracy on {split} {acc8:.2%} against {acc32:.2%} "
                      f"in float32, a drop of {100 * (acc32 - acc8):.2f} points over the "
                      f"{100 * max_drop:.2f} allowed; nothing written")


def quantize_model(model, out_dir, *, calibration, check, max_drop: float = 0.005,
                   seed: int = 0, n_calibration: int = 512, name=None, dataset=None,
                   splits=("train", "val"), force: bool = False, threads=None,
                   progress=None) -> dict:
    """Quantise a CNN model folder to int8 and keep it only if its accuracy holds.

    Parameters
    ----------
    model : str, Path or DeployedModel
        The float32 source: a model folder, a bundled model's name or a loaded model.
    out_dir : str or Path
        Folder to write (``model.onnx``, ``model.json``, ``model_card.md``).
    calibration : sequence of arrays
        Face crops of a training split; ``n_calibration`` of them, drawn with ``seed``,
        calibrate the activation ranges.
    check : (crops, labels)
        A validation split: both models are scored on its rows whose label the model
        predicts. Never a test split: the decision is made on it.
    max_drop : float
        Largest accuracy drop accepted, as a fraction (0.005 = half a point).
    seed : int
        Seed of the calibration draw.
    n_calibration : int
        Number of calibration crops.
    name : str, optional
        Name of the int8 model (default: the source's name + ``-int8``).
    dataset : str, optional
        Dataset name recorded with the splits.
    splits : (str, str)
        Names of the calibration and check splits, recorded in the sidecar.
    force : bool
        Replace a non-empty ``out_dir``.
    threads : int, optional
        onnxruntime intra-op threads for scoring.
    progress : callable, optional
        ``progress(iterable, desc=..., total=...)`` wrapping the calibration and scoring
        loops (e.g. a tqdm bar).

    Returns
    -------
    dict
        ``out``, ``name``, ``accuracy_fp32``, ``accuracy_int8``, ``drop``, ``max_drop``,
        ``n_calibration``, ``n_check``, ``bytes_fp32``, ``bytes_int8``.

    Raises
    ------
    ModelError
        A classical source, a graph onnxruntime cannot quantise, or an accuracy drop
        above ``max_drop`` (nothing is written then).
    ConfigError
        A bad ``max_drop``, ``n_calibration`` or ``out_dir``.
    DataError
        No calibration crops, or no check crop with a label the model predicts.
    """
    from ..runtime._format import read_model_files
    from ..runtime._model import DeployedModel

    max_drop = _check_max_drop(max_drop)
    fp32 = source_model(model, threads)
    out = check_out_dir(out_dir, fp32.path, force=force)
    calib = _calibration_sample(calibration, n_calibration, seed)
    rows = _check_rows(check, fp32.labels)
    name = name or f"{fp32.name}-int8"
    source_bytes = read_model_files(fp32.path).onnx_bytes
    record = _record(n_calibration=len(calib), n_check=len(rows[1]), seed=seed, splits=splits,
                     dataset=dataset, max_drop=max_drop)
    stage, made = _stage_dir(out)
    try:
        acc32 = accuracy(fp32, *rows, progress=progress, desc="score fp32")
        data = quantized_bytes(fp32, source_bytes, calib, progress=progress)
        acc8 = _write_scored(fp32, stage, data, _sidecar(fp32, name, record, 0.0), rows,
                             progress)
        if acc32 - acc8 > max_drop + 1e-12:
            raise _refusal(acc32, acc8, max_drop, splits[1])
        record.update(accuracy_fp32=acc32, accuracy_int8=acc8, drop=acc32 - acc8)
        write_model_dir(stage, data, _sidecar(fp32, name, record, acc8))
        DeployedModel(stage)  # the final folder loads as it will be shipped
        _publish(stage, out)
    finally:
        _cleanup(stage, made)
    return {"out": str(out), "name": name, "accuracy_fp32": acc32, "accuracy_int8": acc8,
            "drop": acc32 - acc8, "max_drop": max_drop, "n_calibration": len(calib),
            "n_check": len(rows[1]), "bytes_fp32": len(source_bytes), "bytes_int8": len(data)}


def _cleanup(stage: Path, made: list) -> None:
    """Remove ``stage`` if still there, and the parent folders made for it if empty."""
    if stage.exists():
        shutil.rmtree(stage, ignore_errors=True)
    _remove_empty(made)


def _remove_empty(folders: list) -> None:
    """Remove ``folders`` (innermost first) while they are empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            break


def quantization_splits(dataset, where=None) -> tuple[list, tuple]:
    """``(calibration crops, (check crops, labels))``: a dataset's train and val splits.

    Parameters
    ----------
    dataset : classicfer.datasets.Dataset
        A dataset with train and val splits.
    where : str, optional
        How the dataset is named in errors (default: its path).

    Raises
    ------
    DataError
        No val split (the int8 model is judged on a validation split, never on the test
        split) or no train split.
    """
    where = where or dataset.root or dataset.name
    val = dataset.split("val")
    if len(val) == 0:
        raise DataError(f"{where}: no val split; quantize judges the int8 model on a "
                        f"validation split, never on the test split (use a dataset with "
                        f"train/val/test splits, e.g. FER-2013 or FER+)")
    train = dataset.split("train")
    if len(train) == 0:
        raise DataError(f"{where}: no train split to draw the calibration crops from")
    return train.images, (val.images, val.labels)


__all__ = ["METHOD", "accuracy", "check_out_dir", "quantization_splits", "quantize_model",
           "quantized_bytes", "source_model"]
