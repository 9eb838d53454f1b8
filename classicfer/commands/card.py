"""``classicfer card``: write a model card for a deployment folder."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.command("card")
@click.argument("model_dir", type=click.Path())
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the card (default: MODEL_DIR/model_card.md).")
@click.option("--results", "results_dirs", type=click.Path(file_okay=False), multiple=True,
              help="Folder(s) holding harness reports (<dataset>/<protocol>/<model>/); default: "
                   "./results and any results/ folder above MODEL_DIR. Repeatable.")
@click.option("--stdout", "to_stdout", is_flag=True,
              help="Print the card instead of writing a file.")
@click.option("--calibrate", "calibrate_data", type=click.Path(), default=None,
              metavar="DATASET",
              help="First fit a temperature on half of DATASET's val split (e.g. FER-2013 "
                   "PublicTest), keep it only if it lowers the ECE of the other half, and store "
                   "the outcome in model.json (the ONNX file is untouched).")
@handle_errors
def card(model_dir, out, results_dirs, to_stdout, calibrate_data):
    """Write model_card.md: uses, data skews, metrics, calibration, groups, licences.

    Figures come from MODEL_DIR/model.json and the evaluation reports of this
    model found under results/ (run `classicfer evaluate --model MODEL_DIR ...`
    first); nothing is typed in by hand.

    \b
    Example:
      classicfer card classicfer/models/fer2013-cnn
      classicfer card my-model --out docs/my-model-card.md
      classicfer card my-model --calibrate ../shared/datasets/fer2013
    """
    from ..cards import find_evaluations, render_model_card, write_model_card
    from ..runtime import resolve_model_dir
    from ..runtime._format import read_sidecar

    d = resolve_model_dir(model_dir)
    if calibrate_data:
        from ..evaluation.calibration import calibrate_model_dir

        rec = calibrate_model_dir(d, calibrate_data)
        verdict = (f"kept (T = {rec['temperature']:.4f})" if rec["kept"] else
                   "not kept: it does not lower the ECE, T = 1")
        click.echo(f"temperature {rec['fitted_temperature']:.4f} fitted on {rec['n_fit']} "
                   f"images of {rec['fitted_on']}, checked on the other {rec['n_check']}: "
                   f"ECE {100 * rec['ece_before']:.2f} % -> {100 * rec['ece_after']:.2f} %, "
                   f"NLL {rec['nll_before']:.4f} -> {rec['nll_after']:.4f}; {verdict}", err=True)
    if to_stdout:
        meta, onnx_path = read_sidecar(d)
        evs = find_evaluations(onnx_path.parent, meta, results_dirs=list(results_dirs) or None)
        click.echo(render_model_card(meta, onnx_path.parent, evs), nl=False)
        return
    path = write_model_card(d, results_dirs=list(results_dirs) or None, out=out)
    click.echo(f"wrote {path}")
