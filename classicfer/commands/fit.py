"""``classicfer fit``: train one classical pipeline and save it for the runtime."""

from __future__ import annotations

import click

from ._common import data_options, handle_errors, parse_params, split_plus
from .grid import backend_options, param_errors


class FeaturesOption(click.Option):
    """``--features``: its help lists every registered feature, read when help is shown."""

    def get_help_record(self, ctx):
        """Help text listing the registered features (imported only when help is shown)."""
        from ..features import FEATURES

        self.help = f"Feature names joined by '+', e.g. hog+lbp ({', '.join(FEATURES)})."
        return super().get_help_record(ctx)


def check_out_dir(out_dir, force: bool) -> None:
    """Refuse to overwrite a non-empty ``--out`` folder unless ``force`` (as ``export``)."""
    from pathlib import Path

    from ..exceptions import ConfigError

    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: folder exists and is not empty; choose another --out or "
                          "pass --force")


@click.command("fit")
@data_options
@click.option("--features", required=True, callback=split_plus, cls=FeaturesOption,
              help="Feature names joined by '+', e.g. hog+lbp.")
@click.option("--classifier", required=True,
              help="linear-svm, svm, xgboost, logreg or knn.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A pipeline parameter, repeatable: C=0.1, pca=150, hog__orientations=12.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for model.onnx + model.json (must be new or empty).")
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
@click.option("--split", default=None,
              help="Rows to train on: train (default when the dataset has splits) or all.")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Add horizontally flipped copies of the training crops.")
@click.option("--n-jobs", type=int, default=None,
              help="Processes for feature extraction and for calibration folds (svm, linear-svm).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompute features instead of using the cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@backend_options
@handle_errors
def fit(data_path, data_format, features, classifier, params, out_dir, force, split, flip,
        n_jobs, seed, no_cache, quiet, backend="local", scheduler=None, dask_workers=None,
        scheduler_timeout=None):
    """Train FEATURES + CLASSIFIER on a dataset and save a deployable model.

    Features come from the cache when these images and feature parameters were
    seen before. When the dataset has a validation split (FER-2013 PublicTest)
    its accuracy and macro-F1 are stored with the model. Its model_card.md
    lists no evaluation report: run `classicfer evaluate --model OUT ...`, then
    `classicfer card OUT` to add them.

    \b
    Example:
      classicfer fit --data ../shared/datasets/fer2013 --features hog+lbp \\
          --classifier svm --param pca=150 --param C=10 --flip --out models/fer-hoglbp-svm
    """
    import time

    import numpy as np

    from ..datasets import load_dataset
    from ..exceptions import ConfigError, DataError
    from ..export import save_model
    from ..features import feature_spec_string
    from ..pipeline import fit_pipeline, make_pipeline
    from ._common import warn

    try:
        spec = feature_spec_string(features)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--features") from None
    p = parse_params(params)
    pipe = make_pipeline(spec, classifier, p, random_state=seed)
    check_out_dir(out_dir, force)

    t0 = time.perf_counter()
    ds = load_dataset(data_path, data_format, progress=not quiet)
    if not isinstance(ds.images, np.ndarray):
        raise DataError(f"{data_path}: images have different sizes; the classical pipeline "
                        "needs equal-size face crops (run the face stage first)")
    has_splits = "train" in set(ds.splits)
    if split in (None, "train") and has_splits:
        train = ds.split("train")
    elif split in (None, "all"):
        train = ds
    elif split in set(ds.splits):
        train = ds.split(split)
    else:
        raise DataError(f"--split {split!r}: the dataset has splits "
                        f"{', '.join(sorted(set(ds.splits) - {''})) or 'none'}; use one of them "
                        "or 'all'")
    extra = {"extra_images": train.images[:, :, ::-1], "extra_y": train.labels} if flip else {}
    if not quiet:
        warn(f"training {spec} + {classifier} on {len(train)} images"
             f"{' (+ flips)' if flip else ''} from {ds.name}")
    from ..distributed import backend_context

    if backend == "dask" and n_jobs is None:
        n_jobs = -1  # feature chunks go to every Dask worker
    with backend_context(backend, scheduler, dask_workers, timeout=scheduler_timeout), \
            param_errors(p):
        fit_pipeline(pipe, train.images, train.labels, cache=not no_cache, n_jobs=n_jobs,
                     **extra)
        info = dict(pipe.fit_info_)
        val = ds.split("val") if has_splits and split in (None, "train") else None
        Fv = None
        if val is not None and len(val):
            from ..features.cache import compute_features

            Fv = compute_features(pipe.named_steps["features"], val.images, cache=not no_cache,
                                  n_jobs=n_jobs)
    with param_errors(p):
        metrics, check = _score(pipe, Fv, val, train, seed)
    training = {"data": str(data_path), "n_train": info["n_train"], "flip": flip, "seed": seed,
                "features_from_cache": info["features_from_cache"],
                "feature_seconds": info["feature_seconds"], "fit_seconds": info["fit_seconds"],
                "params": p, "run": _run_record(ds)}
    with param_errors(p):
        out = save_model(pipe, out_dir, dataset_name=ds.name, metrics=metrics,
                         training=training, check_images=check)
    if not quiet:
        cache_note = "features from cache" if info["features_from_cache"] else \
            f"features {info['feature_seconds']:.1f} s"
        warn(f"{cache_note}, fit {info['fit_seconds']:.1f} s, total "
             f"{time.perf_counter() - t0:.1f} s")
        if metrics:
            warn(f"validation ({metrics['n']} images): accuracy {metrics['accuracy']:.4f}, "
                 f"macro-F1 {metrics['macro_f1']:.4f}")
    click.echo(str(out))


def _score(pipe, Fv, val, train, seed):
    """``(metrics, check_images)`` for the sidecar and the export's parity check.

    Validation scores when ``Fv`` (val features) is given, else no metrics and up to
    2000 training crops for the parity check.
    """
    import numpy as np

    if Fv is None:
        rng = np.random.default_rng(seed)
        check = train.images[rng.permutation(len(train))[:2000]]
        pipe.predict(check[:8])  # a head that cannot predict (k > n) fails here, not in ONNX
        return {}, check
    from ..evaluation import split_metrics

    return split_metrics(val.labels, pipe[1:].predict(Fv), split="val"), val.images


def _run_record(ds) -> dict:
    """The run record stored in the sidecar's ``training.run``.

    Command, versions, git commit and the dataset's manifest hash (not its absolute
    folder).
    """
    from ..datasets.manifest import dataset_record
    from ..provenance import run_record

    data = {k: v for k, v in dataset_record(ds).items() if k != "root"}
    return run_record(dataset=data)
