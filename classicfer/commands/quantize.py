"""``classicfer quantize``: a CNN model folder -> an int8 folder, kept if its accuracy holds."""

from __future__ import annotations

import click

from ._common import data_options, handle_errors


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


@click.command()
@click.argument("model")
@data_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the int8 model to (model.onnx + model.json + card).")
@click.option("--name", default=None, help="Model name in model.json (default: the source "
              "model's name + -int8).")
@click.option("--calibration", "n_calibration", type=click.IntRange(1), default=512,
              show_default=True, help="Crops of the train split that calibrate the "
              "activation ranges (drawn with --seed).")
@click.option("--max-drop", type=click.FloatRange(0, 100), default=0.5, show_default=True,
              metavar="POINTS", help="Refuse the int8 model if its accuracy on the val split "
              "is more than POINTS percentage points below the float32 model's.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the calibration draw.")
@click.option("--force", is_flag=True, help="Replace a non-empty --out folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def quantize(model, data_path, data_format, out_dir, name, n_calibration, max_drop, seed,
             force, quiet):
    """Quantise a CNN model to int8, kept only if its val accuracy holds.

    MODEL is a model folder or a bundled model's name. onnxruntime's static
    quantisation (int8 weights per channel, uint8 activations) is calibrated on
    crops of the train split of DATASET; both models are then scored through the
    runtime on its val split (never the test split), and the int8 folder is
    written only if it loses at most --max-drop points. DATASET must have train
    and val splits (e.g. FER-2013, FER+).

    \b
    Example:
      classicfer quantize ferplus-cnn --data ../shared/datasets/ferplus \\
          --out models/ferplus-cnn-int8
    """
    from ..datasets import load_dataset
    from ..export._quantize import (
        check_out_dir,
        quantization_splits,
        quantize_model,
        source_model,
    )
    from ._common import progress

    fp32 = source_model(model)  # every cheap check before the dataset is read
    check_out_dir(out_dir, fp32.path, force=force)
    ds = load_dataset(data_path, data_format, progress=not quiet)
    calibration, check = quantization_splits(ds, data_path)
    r = quantize_model(fp32, out_dir, calibration=calibration, check=check,
                       max_drop=max_drop / 100, seed=seed, n_calibration=n_calibration,
                       name=name, dataset=ds.name, force=force,
                       progress=lambda it, **kw: progress(it, quiet=quiet, leave=False,
                                                          unit="batch", **kw))
    click.echo(f"accuracy on {ds.name} val ({r['n_check']} images): float32 "
               f"{100 * r['accuracy_fp32']:.2f} %, int8 {100 * r['accuracy_int8']:.2f} % "
               f"(drop {100 * r['drop']:.2f} points, at most {max_drop:.2f} allowed)")
    click.echo(f"size: {_mb(r['bytes_fp32'])} -> {_mb(r['bytes_int8'])} "
               f"({r['n_calibration']} calibration crops of the train split, seed {seed})")
    click.echo(f"wrote {r['out']} ({r['name']})")
