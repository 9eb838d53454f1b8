"""``classicfer export``: a trained pipeline or CNN checkpoint -> deployment folder."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.command()
@click.argument("source", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Deployment folder to write (model.onnx + model.json).")
@click.option("--name", default=None, help="Model name recorded in model.json.")
@click.option("--data", "data_path", default=None, type=click.Path(),
              help="Dataset whose images are used for the parity check (default: the bundled "
                   "astronaut face, jittered, plus noise crops).")
@click.option("--dataset-name", default=None, help="Training dataset name for model.json.")
@click.option("--check", "n_check", type=click.IntRange(8), default=64, show_default=True,
              help="Number of crops in the parity check.")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=0.995, show_default=True,
              help="Refuse the export if deployed and original labels agree on fewer crops.")
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
@click.option("--allow-pickle", is_flag=True,
              help="Required: SOURCE is a pickle (joblib pipeline or torch checkpoint), and "
                   "loading a pickle runs any code stored in it. Use only for files you made.")
@handle_errors
def export(source, out_dir, name, data_path, dataset_name, n_check, min_agreement, force,
           allow_pickle):
    """Export a trained model to the deployment format, with a parity check.

    SOURCE is a pipeline saved with joblib (*.joblib, *.pkl), a CNN checkpoint
    (*.pt), or a folder holding one. The deployed folder is then run through
    the onnxruntime runtime and compared with the original on the same crops.
    SOURCE is unpickled, which runs code stored in it: --allow-pickle says it is
    your own file.

    \b
    Example:
      classicfer export runs/hog-svm/pipeline.joblib --out models/hog-svm --allow-pickle
      classicfer export runs/cnn/ --out models/fer2013-cnn --data ../shared/datasets/fer2013 \\
          --allow-pickle
    """
    from ..export import export as run

    r = run(source, out_dir, name=name, data=data_path, n_check=n_check,
            min_agreement=min_agreement, dataset_name=dataset_name, force=force,
            allow_pickle=allow_pickle)
    p = r["parity"]
    click.echo(f"wrote {r['out']} ({r['kind']}, {r['name']}, {len(r['labels'])} labels, "
               f"sha256 {r['sha256'][:12]}...)")
    click.echo(f"parity on {p['n']} crops: label agreement {p['agreement']:.1%}, "
               f"max |p_deployed - p_original| = {p['max_abs_diff']:.2e}")
