"""``classicfer evaluate``: run a protocol for a model and write its report folder."""

from __future__ import annotations

import click

from ._common import handle_errors, parse_params, split_plus

PROTOCOL_CHOICES = ("official", "split", "subject-kfold", "loso", "cross-dataset")


def _parse_map(values) -> dict:
    out = {}
    for item in values or ():
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise click.BadParameter(f"expected OLD=NEW (or OLD= to drop), got {part!r}",
                                         param_hint="--map")
            old, new = (x.strip() for x in part.split("=", 1))
            from ..exceptions import DataError
            from ..labels import canonical_label

            try:
                out[canonical_label(old)] = canonical_label(new) if new and new != "-" else ""
            except DataError as e:  # unknown label name
                raise click.BadParameter(str(e), param_hint="--map") from None
    return out


@click.command()
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="Dataset to evaluate on (for cross-dataset: the dataset to fit on, A).")
@click.option("--format", "data_format", default=None, help="Force the dataset format.")
@click.option("--protocol", type=click.Choice(PROTOCOL_CHOICES), default=None,
              help="Default: official when the dataset has train/val/test, else subject-kfold.")
@click.option("--test-data", "test_path", type=click.Path(), default=None,
              help="cross-dataset: the dataset to test on (B).")
@click.option("--test-format", default=None, help="Force the format of --test-data.")
@click.option("--model", "model_path", default=None,
              help="A model folder (model.onnx + model.json), a bundled model name, or a "
                   ".joblib file of a fitted estimator.")
@click.option("--features", callback=split_plus, default=None,
              help="Feature spec of a pipeline to train, e.g. hog+lbp.")
@click.option("--classifier", default=None, help="Classifier of that pipeline, e.g. linear-svm.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Pipeline parameter (repeatable); KEY=a,b,c is a grid searched on the val "
                   "split (official protocol only).")
@click.option("--name", default=None, help="Model name in the report folder and tables.")
@click.option("--folds", default=10, show_default=True, type=click.IntRange(2, None),
              help="subject-kfold: number of folds.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the folds and of the bootstrap.")
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW",
              help="Rename a dataset label before scoring (OLD= drops those rows).")
@click.option("--shared-classes", is_flag=True,
              help="Score a prefit model only on the classes it shares with the dataset.")
@click.option("--groups", "groups_csv", type=click.Path(exists=True, dir_okay=False),
              default=None, help="CSV of per-image group attributes: adds groups.json/png.")
@click.option("--out", "out_root", default="results", show_default=True, type=click.Path(),
              help="Results root; the report goes to OUT/<dataset>/<protocol>/<model>/.")
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(100, None),
              help="Bootstrap resamples for the accuracy interval.")
@click.option("--gallery", default=24, show_default=True, type=click.IntRange(0, 200),
              help="Mistakes shown in misclassified.png.")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Train on each training crop and its mirror image (pipelines only).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def evaluate(data_path, data_format, protocol, test_path, test_format, model_path, features,
             classifier, params, name, folds, seed, maps, shared_classes, groups_csv,
             out_root, n_boot, gallery, flip, quiet):
    """Evaluate a model under a protocol and write its report folder.

    \b
    Example:
      classicfer evaluate --data ../shared/datasets/ckplus48 --protocol subject-kfold \\
          --features hog --classifier linear-svm
      classicfer evaluate --data ../shared/datasets/fer2013 --model fer2013-cnn
      classicfer evaluate --protocol cross-dataset --test-data ../shared/datasets/ckplus48 \\
          --model fer2013-cnn
    """
    import sys

    from ..datasets import load_dataset
    from ..evaluation import evaluate as run
    from ..evaluation import model_from_path, model_from_spec, report_dir, write_report
    from ..exceptions import ConfigError
    from ._common import progress, warn

    if model_path and (features or classifier):
        raise ConfigError("give either --model or --features/--classifier, not both")
    if not model_path and not (features and classifier):
        raise ConfigError("no model: give --model FOLDER, or --features SPEC and "
                          "--classifier NAME (e.g. --features hog --classifier linear-svm)")
    if test_path and protocol not in (None, "cross-dataset"):
        raise ConfigError(f"--test-data goes with --protocol cross-dataset, not {protocol}")
    if protocol == "cross-dataset" and not test_path:
        raise ConfigError("--protocol cross-dataset needs --test-data (the dataset to test on)")
    if data_path is None and not (test_path and model_path):
        raise ConfigError("no dataset: give --data PATH")

    label_map = _parse_map(maps)
    if model_path and flip:
        raise ConfigError("--flip augments training data: it needs --features/--classifier, "
                          "not a prefit --model")
    if model_path:
        if params:
            raise ConfigError("--param only applies to --features/--classifier pipelines")
        spec = model_from_path(model_path, name=name)
    else:
        spec = model_from_spec(features, classifier, parse_params(params), name=name)

    ds = load_dataset(data_path, data_format, progress=not quiet) if data_path else None
    test_ds = load_dataset(test_path, test_format, progress=not quiet) if test_path else None
    if test_ds is not None and spec.prefit and ds is not None:
        warn(f"note: a prefit model is not refitted; --data {data_path} only names the "
             f"training set in the report")
    for d in (ds, test_ds):
        if d is not None and d.skipped:
            warn(f"{d.name}: skipped {len(d.skipped)} unreadable files")

    res = run(spec, ds, protocol, test_dataset=test_ds, folds=folds, seed=seed,
              label_map=label_map, shared_classes=shared_classes, flip=flip,
              progress=None if quiet else (lambda it: progress(it, desc="folds", unit="fold")))
    scored = test_ds if test_ds is not None else ds
    groups = None
    if groups_csv:
        try:
            from ..evaluation.fairness import load_groups_csv
        except ImportError:
            warn("--groups: classicfer.evaluation.fairness is not installed; skipped")
        else:
            groups = load_groups_csv(groups_csv, scored)
    out = report_dir(out_root, res)
    cmd = ["classicfer", *sys.argv[1:]] if sys.argv and "classicfer" in sys.argv[0] \
        else list(sys.argv)
    m = write_report(res, scored, out, command=cmd, n_boot=n_boot, gallery=gallery,
                     groups=groups, train_dataset=ds if test_ds is not None else None)
    lo, hi = m["accuracy_ci95"]
    folds_txt = (f", folds {100 * m['mean_test_accuracy']:.1f} ± "
                 f"{100 * m['std_test_accuracy']:.1f} %" if m["n_folds"] > 1 else "")
    click.echo(f"{res.model} on {res.dataset} ({res.protocol}): accuracy "
               f"{100 * m['accuracy']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]{folds_txt}, "
               f"macro-F1 {100 * m['macro_f1']:.1f} %, n={m['n_samples']}")
    for n in res.notes:
        warn(f"note: {n}")
    click.echo(f"report: {out}")
