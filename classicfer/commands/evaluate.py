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


def _check_corruption(corruption, model_path):
    if corruption is None:
        return None
    from ..evaluation.corruptions import parse_corruption
    from ..exceptions import ConfigError

    if not model_path:
        raise ConfigError("--corrupt scores a prefit --model on corrupted test images; "
                          "it does not apply to pipelines trained here")
    return parse_corruption(corruption)


def _corrupt_scored(ds, test_ds, corruption, seed):
    """``(ds, test_ds)`` with the scored one corrupted.

    That is ``test_ds`` when given (a prefit model never sees ``ds`` then; it only names the
    training set), else ``ds``.
    """
    if test_ds is not None:
        return ds, _corrupted(test_ds, corruption, seed)
    return _corrupted(ds, corruption, seed), None


def _corrupted(ds, corruption, seed):
    """A copy of ``ds`` whose images are corrupted (``(name, severity)``), seeded."""
    from dataclasses import replace

    from ..evaluation.corruptions import corrupt

    return replace(ds, images=corrupt(ds.images, *corruption, seed=seed),
                   name=f"{ds.name}@{corruption[0]}-{corruption[1]}")


def _check_datasets(*pairs) -> None:
    """Each (path, format) given: the path exists and the format name is known."""
    import os

    from ..datasets import resolve_format
    from ..exceptions import DataError

    for path, fmt in pairs:
        if path is None:
            continue
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file or directory")
        resolve_format(fmt, path)


def _check_pickle(model_path, allow_pickle: bool) -> None:
    """Refuse a pickle ``--model`` (one line) unless ``--allow-pickle`` was given."""
    import os

    from ..evaluation._models import is_pickle_path, refuse_pickle

    if os.path.isfile(model_path) and is_pickle_path(model_path):
        refuse_pickle(model_path, allow_pickle, "--allow-pickle")


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
                   ".joblib file of a fitted estimator (with --allow-pickle).")
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
@click.option("--corrupt", "corruption", default=None, metavar="NAME:SEVERITY",
              help="Score on corrupted copies of the test images (prefit --model only), e.g. "
                   "gaussian_noise:3; NAME from classicfer.evaluation.corruptions.CORRUPTIONS, "
                   "SEVERITY 1-5; seeded by --seed.")
@click.option("--allow-pickle", is_flag=True,
              help="Allow --model to be a .joblib/.pkl file. Loading a pickle runs any code "
                   "stored in it: use only for files you made.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def evaluate(data_path, data_format, protocol, test_path, test_format, model_path, features,
             classifier, params, name, folds, seed, maps, shared_classes, groups_csv,
             out_root, n_boot, gallery, flip, corruption, allow_pickle, quiet):
    """Evaluate a model under a protocol and write its report folder.

    \b
    Example:
      classicfer evaluate --data ../shared/datasets/ckplus48 --protocol subject-kfold \\
          --features hog --classifier linear-svm
      classicfer evaluate --data ../shared/datasets/fer2013 --model fer2013-cnn
      classicfer evaluate --protocol cross-dataset --test-data ../shared/datasets/ckplus48 \\
          --model fer2013-cnn
      classicfer evaluate --data ../shared/datasets/ckplus48 --model mine.joblib --allow-pickle
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
    corrupt_with = _check_corruption(corruption, model_path)
    if model_path and flip:
        raise ConfigError("--flip augments training data: it needs --features/--classifier, "
                          "not a prefit --model")
    if model_path and params:
        raise ConfigError("--param only applies to --features/--classifier pipelines")
    parsed = parse_params(params)
    # every cheap check before a model is loaded (loading a pickle runs code)
    _check_datasets((data_path, data_format), (test_path, test_format))
    if model_path:
        _check_pickle(model_path, allow_pickle)
        spec = model_from_path(model_path, name=name, allow_pickle=allow_pickle)
    else:
        spec = model_from_spec(features, classifier, parsed, name=name)

    ds = load_dataset(data_path, data_format, progress=not quiet) if data_path else None
    test_ds = load_dataset(test_path, test_format, progress=not quiet) if test_path else None
    if test_ds is not None and spec.prefit and ds is not None:
        warn(f"note: a prefit model is not refitted; --data {data_path} only names the "
             f"training set in the report")
    for d in (ds, test_ds):
        if d is not None and d.skipped:
            warn(f"{d.name}: skipped {len(d.skipped)} files (unreadable or unlabelled; "
                 "'classicfer data inspect' lists them)")
    if corrupt_with:
        ds, test_ds = _corrupt_scored(ds, test_ds, corrupt_with, seed)
        spec.name = f"{spec.name}@{corrupt_with[0]}-{corrupt_with[1]}"

    from .grid import param_errors

    with param_errors(parse_params(params)):  # e.g. pca larger than the data allows
        res = run(spec, ds, protocol, test_dataset=test_ds, folds=folds, seed=seed,
                  label_map=label_map, shared_classes=shared_classes, flip=flip,
                  progress=None if quiet else (lambda it: progress(it, desc="folds",
                                                                   unit="fold")))
    scored = test_ds if test_ds is not None else ds
    groups = None
    if groups_csv:
        from ..evaluation.fairness import load_groups_csv

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
