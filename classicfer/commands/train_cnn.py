"""``classicfer train-cnn``: train the small CNN head, export it to ONNX."""

from __future__ import annotations

import click

from ._common import data_options, handle_errors


@click.command("train-cnn")
@data_options
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1),
              help="Epochs of the one-cycle schedule.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: checkpoints/, model/ (ONNX + model.json), metrics.json.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=3e-3, show_default=True, type=float, help="Peak learning rate.")
@click.option("--widths", default="16,32,64,128", show_default=True,
              help="Stem width, then one width per double-conv stage.")
@click.option("--attention/--no-attention", default=True, show_default=True,
              help="Squeeze-excitation after each stage.")
@click.option("--label-smoothing", default=0.1, show_default=True, type=float)
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
def train_cnn(data_path, data_format, epochs, out_dir, batch_size, lr, widths, attention,
              label_smoothing, seed, threads, resume, stop_after, init_from, swa, teachers,
              distill, distill_t, quiet):
    """Train the compact CNN on 48x48 grayscale crops and export it (needs torch).

    Uses the dataset's train split to fit, its val split (FER-2013 PublicTest) to pick the
    best epoch, and reports its test split (PrivateTest) once.

    \b
    Example:
      classicfer train-cnn --data ../shared/datasets/fer2013 --epochs 14 --out runs/cnn
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
    from ..exceptions import ConfigError

    try:
        w = tuple(int(v) for v in widths.split(","))
    except ValueError:
        raise ConfigError(f"--widths expects comma-separated integers, got {widths!r}") from None
    if len(w) < 2 or min(w) < 1:
        raise ConfigError(f"--widths needs a stem and at least one stage, got {widths!r}")
    if not teachers and (distill is not None or distill_t is not None):
        raise ConfigError("--distill and --distill-t need --teacher")
    ds = load_dataset(data_path, data_format)
    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    m = train_on_dataset(ds, out_dir, epochs=epochs, init_from=init_from, log=log,
                         progress=not quiet, batch_size=batch_size, lr=lr,
                         label_smoothing=label_smoothing, seed=seed, threads=threads or None,
                         resume=resume, stop_after=stop_after, swa=swa, teachers=teachers,
                         **({"distill": 0.5 if distill is None else distill,
                             "distill_temperature": 2.0 if distill_t is None else distill_t}
                            if teachers else {}),
                         **({} if init_from else
                            {"model_config": {"widths": w, "attention": attention}}))
    click.echo(f"best epoch {m['best_epoch']}"
               + (f", val accuracy {m['val_accuracy']:.4f}" if m["val_accuracy"] is not None
                  else "")
               + (f", test accuracy {m['test_accuracy']:.4f}, macro-F1 {m['test_macro_f1']:.4f}"
                  if "test_accuracy" in m else ""))
    click.echo(f"model: {out_dir}/model (ONNX parity max abs diff "
               f"{m['onnx_parity_max_abs_diff']:.2e})")
