"""``classicfer card``: write a model card for a deployment folder."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.command("card")
@click.argument("model_dir", type=click.Path())
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the card (default: MODEL_DIR/model_card.md).")
@click.option("--report", "reports", type=click.Path(file_okay=False), multiple=True,
              help="An evaluation report folder to show (holding metrics.json, as written by "
                   "`classicfer evaluate`). Repeatable; when given, --results is read only if "
                   "also given.")
@click.option("--results", "results_dirs", type=click.Path(file_okay=False), multiple=True,
              help="Results root whose reports of this model "
                   "(RESULTS/<dataset>/<protocol>/<model name>/) are shown. Repeatable; "
                   "default without --report: results (in the current folder).")
@click.option("--generalisation", "gen_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder of benchmarks/generalisation.py (matrix.json, "
                   "robustness.json): this model's row becomes the Generalisation section.")
@click.option("--stdout", "to_stdout", is_flag=True,
              help="Print the card instead of writing a file.")
@click.option("--calibrate", "calibrate_data", type=click.Path(), default=None,
              metavar="DATASET",
              help="First fit a temperature on half of DATASET's val split (e.g. FER-2013 "
                   "PublicTest), keep it only if it lowers the ECE of the other half, and store "
                   "the outcome in model.json (the ONNX file is untouched).")
@handle_errors
def card(model_dir, out, reports, results_dirs, gen_dir, to_stdout, calibrate_data):
    """Write model_card.md: uses, data skews, metrics, calibration, groups, licences.

    Figures come from MODEL_DIR/model.json and the evaluation reports named
    with --report, or else those of this model under the --results root
    (default: ./results, where `classicfer evaluate --model MODEL_DIR ...`
    writes them); nothing is typed in by hand and nothing else is searched.

    \b
    Example:
      classicfer card classicfer/bundled_models/fer2013-cnn
      classicfer card my-model --out docs/my-model-card.md
      classicfer card my-model --report runs/eval/fer2013/official/my-model
      classicfer card my-model --calibrate ../shared/datasets/fer2013
    """
    from ..export.cards import model_card, write_model_card
    from ..runtime import resolve_model_dir

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
    roots = list(results_dirs) or ([] if reports else ["results"])
    if to_stdout:
        _, text = model_card(d, evaluations=list(reports), results_dirs=roots,
                             generalisation=gen_dir)
        click.echo(text, nl=False)
        return
    path = write_model_card(d, evaluations=list(reports), results_dirs=roots, out=out,
                            generalisation=gen_dir)
    click.echo(f"wrote {path}")
