"""``classicfer grid``: cross-validated search over features x classifiers x parameters."""

from __future__ import annotations

import contextlib
import re

import click

from ..exceptions import ClassicferError, ConfigError
from ._common import data_options, handle_errors, parse_params, split_comma

#: ``--param`` shortcut -> the estimator argument it sets, as named in the estimator's errors
_PARAM_ALIASES = {"pca": "n_components"}


def backend_options(func):
    """The options that choose where a grid runs.

    ``--backend local|dask``, ``--scheduler ADDRESS``, ``--scheduler-timeout S``,
    ``--dask-workers N``.
    """
    func = click.option("--scheduler-timeout", type=click.FloatRange(0, min_open=True),
                        default=None, metavar="SECONDS",
                        help="Give up on a --scheduler that does not answer as a Dask "
                             "scheduler within this time [default: 10].")(func)
    func = click.option("--dask-workers", type=int, default=None,
                        help="Worker processes of the LocalCluster started when --backend dask "
                             "has no --scheduler [default: 2].")(func)
    func = click.option("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (--backend dask); "
                             "without it a LocalCluster is started on this machine.")(func)
    func = click.option("--backend", type=click.Choice(["local", "dask"]), default="local",
                        show_default=True,
                        help="Where parallel fits run: local joblib processes, or a Dask "
                             "cluster (pip install \"classicfer[dask]\").")(func)
    return func


def _fmt_value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _param_named_in(message: str, params: dict):
    """The ``params`` key whose estimator argument ``message`` names, or None."""
    for key in params:
        names = {key, key.rsplit("__", 1)[-1], _PARAM_ALIASES.get(key, key)}
        if any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", message) for n in names):
            return key
    return None


def describe_param_error(error: Exception, params: dict) -> str:
    """One line for an estimator's error during fitting, naming the ``--param`` at fault.

    Parameters
    ----------
    error : Exception
        What the estimator raised (e.g. PCA's ``n_components=5000 must be between 0
        and min(n_samples, n_features)=28``).
    params : dict
        The parsed ``--param`` values.

    Returns
    -------
    str
    """
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    msg = lines[0] if lines else type(error).__name__
    key = _param_named_in(msg, params)
    if key is not None:
        return f"--param {key}={_fmt_value(params[key])} does not suit this data: {msg}"
    given = " ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())
    return f"fitting failed with --param {given}: {msg}"


@contextlib.contextmanager
def param_errors(params: dict | None):
    """Turn a ValueError/TypeError raised while fitting with ``params`` into a ConfigError.

    Bounds that depend on the data (PCA components, k of k-NN, the crop size a
    feature needs) can only be checked by fitting; this names the parameter in
    one line instead of a traceback. Without ``params`` the error passes unchanged.
    """
    try:
        yield
    except ClassicferError:
        raise
    except (ValueError, TypeError) as e:
        if not params:
            raise
        raise ConfigError(describe_param_error(e, params)) from None


@click.command("grid")
@data_options
@click.option("--features", required=True, callback=split_comma,
              help="Comma-separated feature specs, each may join names with '+': hog,lbp,hog+lbp.")
@click.option("--classifier", "classifiers", required=True, callback=split_comma,
              help="Comma-separated classifiers: linear-svm,svm,xgboost,logreg,knn.")
@click.option("--param", "params", multiple=True, metavar="KEY=V1,V2",
              help="Candidate values, repeatable: C=0.01,0.1,1  pca=none,150  "
                   "hog__orientations=9,12. A key is applied to the combinations that have it.")
@click.option("--cv", default="auto", show_default=True,
              help="auto, official (FER-2013: train -> val), group[:K] (subject-grouped, CK+) "
                   "or an integer K (stratified K-fold).")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Add mirrored copies of each fold's training crops.")
@click.option("--n-jobs", type=int, default=None, help="Parallel fits (and feature processes).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Result folder [default: results/grid/<dataset>-<time>].")
@click.option("--no-cache", is_flag=True, help="Recompute features instead of using the cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@backend_options
@handle_errors
def grid(data_path, data_format, features, classifiers, params, cv, flip, n_jobs, seed, out_dir,
         no_cache, quiet, backend="local", scheduler=None, dask_workers=None,
         scheduler_timeout=None):
    """Cross-validate every FEATURES x CLASSIFIER x --param combination.

    Writes summary.csv (a row per combination, sklearn's cv_results_ keys:
    mean_test_accuracy, mean_test_macro_f1, mean_test_balanced_accuracy...),
    folds.csv (a row per fold), summary.md and run.json (command, seed,
    splitter, versions, git commit, dataset manifest hash) to the result folder.

    \b
    Example:
      classicfer grid --data ../shared/datasets/ckplus48 --features hog,lbp,hog+lbp \\
          --classifier linear-svm,xgboost --param C=0.01,0.1,1 --cv group --n-jobs 2
    """
    import time
    from pathlib import Path

    import numpy as np

    from ..datasets import load_dataset
    from ..evaluation import run_grid, write_grid_results
    from ..exceptions import DataError
    from ..features import feature_spec_string
    from ..pipeline import check_classifier_name
    from ._common import progress, warn

    specs = []
    for f in features or []:
        try:
            specs.append(feature_spec_string(f))
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--features") from None
    if not specs:
        raise click.BadParameter("give at least one feature spec", param_hint="--features")
    for c in classifiers or []:
        try:
            check_classifier_name(c)
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--classifier") from None
    p = parse_params(params)
    ds = load_dataset(data_path, data_format, progress=not quiet)
    if not isinstance(ds.images, np.ndarray):
        raise DataError(f"{data_path}: images have different sizes; the classical pipeline "
                        "needs equal-size face crops")
    from ..distributed import backend_context

    t0 = time.perf_counter()
    with backend_context(backend, scheduler, dask_workers, timeout=scheduler_timeout), \
            param_errors(p):
        summary, folds, info = run_grid(
            ds.images, ds.labels, features=specs, classifiers=classifiers, params=p, cv=cv,
            groups=ds.subjects, splits=ds.splits, flip=flip, n_jobs=n_jobs, seed=seed,
            cache=not no_cache, progress=None if quiet else (lambda **kw: progress(**kw)))
    info["backend"] = backend if scheduler is None else f"{backend} {scheduler}"
    elapsed = time.perf_counter() - t0
    if out_dir is None:
        out_dir = Path("results") / "grid" / f"{ds.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = write_grid_results(out_dir, summary, folds, {
        **info, "seed": seed, "data": str(data_path), "seconds": round(elapsed, 1)}, dataset=ds)
    if not quiet:
        best = min(summary, key=lambda r: r["rank_test_accuracy"])
        warn(f"{len(summary)} combinations in {elapsed:.0f} s ({info['cv']}); best "
             f"{best['features']} + {best['classifier']} {best['params']}: accuracy "
             f"{best['mean_test_accuracy']:.4f} +- {best['std_test_accuracy']:.4f}")
    click.echo(str(out))
