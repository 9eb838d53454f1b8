"""``classicfer train-cnn``: train the small CNN head, export it to ONNX."""

from __future__ import annotations

from pathlib import Path

import click

from ..cnn_head import ARCHITECTURES
from ._common import data_options, handle_errors


@click.command("train-cnn")
@data_options
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1),
              help="Epochs of the one-cycle schedule.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: checkpoints/, model/ (ONNX + model.json), metrics.json, "
                   "run.json.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=3e-3, show_default=True, type=float, help="Peak learning rate.")
@click.option("--arch", type=click.Choice(ARCHITECTURES), default=None,
              help="Network family: vgg (double-conv stages), resnet (basic blocks) or "
                   "mobilenet (inverted residuals)  [vgg; with --init-from, the checkpoint's].")
@click.option("--widths", default=None,
              help="Stem width, then one width per stage  [vgg 16,32,64,128; "
                   "resnet 16,16,32,64,128; mobilenet 16,24,40,80,128].")
@click.option("--attention/--no-attention", default=True, show_default=True,
              help="Squeeze-excitation blocks (after each vgg stage, in each resnet or "
                   "mobilenet block).")
@click.option("--size", type=click.Choice(["48", "64"]), default="48", show_default=True,
              help="Input side: the crops are resized to SIZE x SIZE for training and export.")
@click.option("--targets", type=click.Choice(["majority", "votes"]), default="majority",
              show_default=True,
              help="Train on the labels, or on the annotators' vote distributions (FER+).")
@click.option("--label-smoothing", default=None, type=float,
              help="Label smoothing  [0.1; 0 with --targets votes].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=0, show_default=True, type=int,
              help="Torch threads (0 = all cores).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.option("--stop-after", type=click.IntRange(1), default=None,
              help="Run at most N epochs now (continue later with --resume).")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (transfer learning; a new head if classes differ).")
@click.option("--swa", is_flag=True,
              help="Stochastic weight averaging: one cosine cycle per epoch, the epoch-end "
                   "weights averaged and the average kept (best with --init-from).")
@click.option("--teacher", "teachers", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Distil from this checkpoint (same classes; repeat for an ensemble, whose "
                   "mean flip-averaged logits are the target).")
@click.option("--distill", default=None, type=click.FloatRange(0, 1),
              help="With --teacher: weight of the distillation term in the loss [0.5].")
@click.option("--distill-t", default=None, type=click.FloatRange(0, min_open=True),
              help="With --teacher: softening temperature of teacher and student [2].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def train_cnn(data_path, data_format, epochs, out_dir, batch_size, lr, arch, widths, attention,
              size, targets, label_smoothing, seed, threads, resume, stop_after, init_from,
              swa, teachers, distill, distill_t, quiet):
    """Train a compact CNN on 48x48 (or 64x64) grayscale crops and export it (needs torch).

    Uses the dataset's train split to fit, its val split (FER-2013 PublicTest) to pick the
    best epoch, and reports its test split (PrivateTest) once.

    \b
    Example:
      classicfer train-cnn --data ../shared/datasets/fer2013 --epochs 14 --out runs/cnn
      classicfer train-cnn --data ../shared/datasets/fer2013 --arch resnet --size 64 \\
          --epochs 14 --out runs/cnn-resnet64
      classicfer train-cnn --data ../shared/datasets/ferplus --format ferplus \\
          --targets votes --arch mobilenet --epochs 14 --out runs/ferplus-mobilenet
      classicfer train-cnn --data ../shared/datasets/fer2013 --epochs 6 --swa --lr 5e-4 \\
          --init-from runs/cnn/checkpoints/best.pt --out runs/cnn-swa
      classicfer train-cnn --data ../shared/datasets/fer2013 --epochs 8 --swa --lr 5e-4 \\
          --init-from runs/cnn/checkpoints/best.pt --teacher runs/cnn/checkpoints/best.pt \\
          --teacher runs/cnn-swa/checkpoints/best.pt --out runs/cnn-kd
    """
    from ..cnn_head import require_torch

    require_torch()
    from ..cnn_head.train import train_on_dataset
    from ..datasets import load_dataset
    from ..datasets.manifest import dataset_record
    from ..evaluation import split_metrics
    from ..exceptions import ConfigError
    from ..provenance import run_record

    model_config = _model_config(arch, widths, attention)
    if not teachers and (distill is not None or distill_t is not None):
        raise ConfigError("--distill and --distill-t need --teacher")
    if init_from and arch is not None:
        _check_init_arch(init_from, arch)
    side, ck_dir = int(size), Path(out_dir) / "checkpoints"
    if resume:
        _check_resume_size(ck_dir / "last.pt", side)
    ds = load_dataset(data_path, data_format)
    if targets == "votes" and ds.votes is None:
        raise ConfigError(f"--targets votes needs a dataset with annotators' votes (FER+, "
                          f"--format ferplus); this {ds.name} dataset has none")
    run = run_record(dataset=dataset_record(ds), seed=seed, epochs=epochs, size=side)
    ds = _resized(ds, side)
    if label_smoothing is None:
        label_smoothing = 0.0 if targets == "votes" else 0.1
    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    res = train_on_dataset(ds, out_dir, epochs=epochs, init_from=init_from, log=log,
                           progress=not quiet, batch_size=batch_size, lr=lr,
                           label_smoothing=label_smoothing, seed=seed,
                           threads=threads or None, resume=resume, stop_after=stop_after,
                           swa=swa, teachers=teachers, targets=targets,
                           score=lambda y_true, y_pred: split_metrics(y_true, y_pred,
                                                                      split="test"),
                           **({"distill": 0.5 if distill is None else distill,
                               "distill_temperature": 2.0 if distill_t is None else distill_t}
                              if teachers else {}),
                           **({} if init_from else {"model_config": model_config}))
    m = _export_run(res, Path(out_dir), run)
    _record_size(ck_dir, side)
    click.echo(f"best epoch {m['best_epoch']}"
               + (f", val accuracy {m['val_accuracy']:.4f}" if m["val_accuracy"] is not None
                  else "")
               + (f", test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
                  if m.get("split") == "test" else ""))
    click.echo(f"model: {out_dir}/model (ONNX parity max abs diff "
               f"{m['onnx_parity_max_abs_diff']:.2e})")


def _export_run(res: dict, out: Path, run: dict) -> dict:
    """Export a trained run and write its records; returns the metrics.

    Writes ``out/model/`` (ONNX + sidecar; the sidecar's ``metrics`` are those of
    ``metrics.json`` but ``cpu_s``), ``out/metrics.json`` (with the ONNX parity on
    ``res["check_images"]``) and ``out/run.json`` (the run record ``run``). ``res`` is the
    result of :func:`classicfer.cnn_head.train.train_on_dataset`.
    """
    import json

    from ..export import cnn_parity, export_model

    metrics = dict(res["metrics"])
    model_dir = export_model(res["model"], out / "model", classes=res["classes"],
                             mean=res["mean"], std=res["std"], size=res["size"],
                             name=res["name"], training=res["training"],
                             metrics={k: v for k, v in metrics.items() if k != "cpu_s"})
    metrics["onnx_parity_max_abs_diff"] = cnn_parity(res["model"], model_dir,
                                                     res["check_images"])["max_abs_diff"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return metrics


def _model_config(arch, widths, attention) -> dict:
    """The model configuration of ``--arch``/``--widths``/``--attention`` (see ``arch_config``)."""
    from ..cnn_head.model import arch_config
    from ..exceptions import ConfigError

    w = None
    if widths is not None:
        try:
            w = tuple(int(v) for v in widths.split(","))
        except ValueError:
            raise ConfigError(f"--widths expects comma-separated integers, got {widths!r}"
                              ) from None
        if len(w) < 2 or min(w) < 1:
            raise ConfigError(f"--widths needs a stem and at least one stage, got {widths!r}")
    return arch_config(arch or "vgg", widths=w, attention=attention)


def _check_init_arch(path, arch) -> None:
    """A ConfigError when ``--arch`` names another family than the ``--init-from`` checkpoint."""
    from ..cnn_head.train import read_checkpoint
    from ..exceptions import ConfigError

    try:
        have = read_checkpoint(path)["config"].get("arch", "vgg")
    except Exception:  # noqa: BLE001 (any unreadable file)
        raise ConfigError(f"--init-from {path}: not a CNN checkpoint (best.pt / last.pt)"
                          ) from None
    if have != arch:
        raise ConfigError(f"--arch {arch}: the --init-from checkpoint is a {have} network "
                          "(fine-tuning keeps the checkpoint's network; leave out --arch)")


def _check_resume_size(path: Path, side: int) -> None:
    """A ConfigError when ``--resume`` would continue a run made at another ``--size``."""
    if not path.is_file():
        return  # the trainer explains that there is nothing to resume
    from ..cnn_head.train import read_checkpoint
    from ..exceptions import ConfigError

    have = read_checkpoint(path).get("size")
    if have is not None and list(have) != [side, side]:
        raise ConfigError(f"--resume: the checkpoint was trained at {have[0]}x{have[1]}; "
                          f"use --size {have[0]} or start afresh")


def _resized(ds, side: int):
    """``ds`` with its (N, H, W) crops resized to ``side`` x ``side`` (unchanged if they are)."""
    import dataclasses

    import numpy as np

    from ..cnn_head.train import resize_crops

    images = ds.images
    if not isinstance(images, np.ndarray) or images.ndim != 3 \
            or images.shape[1:] == (side, side):
        return ds  # the trainer rejects crops that are not (N, H, W)
    return dataclasses.replace(ds, images=resize_crops(images.astype(np.uint8, copy=False),
                                                       side))


def _record_size(ck_dir: Path, side: int) -> None:
    """Write the input side into the run's checkpoints.

    ``size``, read by ``classicfer export`` and by :func:`_check_resume_size`.
    """
    from ..cnn_head.train import _atomic_save, read_checkpoint

    for name in ("best.pt", "last.pt"):
        path = ck_dir / name
        if path.is_file():
            ck = read_checkpoint(path)
            if ck.get("size") != [side, side]:
                ck["size"] = [side, side]
                _atomic_save(ck, path)
