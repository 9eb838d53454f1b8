"""Cross-validated search over feature specs x classifiers x parameters (``classicfer grid``).

The folds come from the same CV objects as the evaluation protocols
(:func:`~classicfer.evaluation.make_cv`); each classifier's parameter grid runs in
``GridSearchCV`` on the cached feature matrix, scored with the metric names every
classicfer result uses (:data:`~classicfer.evaluation.METRICS`).
"""

from __future__ import annotations

import json
import time
from itertools import product
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, DataError
from ._metrics import METRICS, SCORERS
from ._protocols import make_cv


def grid_cv(cv, *, labels, groups=None, splits=None, seed: int = 0):
    """Resolve a ``--cv`` value to (list of (train, test) index pairs, description).

    Parameters
    ----------
    cv : str or int
        ``"auto"`` (official split when the data has train+val, else subject-grouped
        10-fold when subjects are known, else stratified 5-fold), ``"official"`` (fit on
        train, score on val; test untouched), ``"group"`` / ``"group:K"``
        (``StratifiedGroupKFold`` by subject), or an integer K (``StratifiedKFold``).
        Rows with split ``test`` are never used by the grouped/stratified schemes when
        the data also has train/val splits.
    labels, groups, splits : (N,) array-like
        Class, subject (or None) and split of each row.
    seed : int
        Seed of the shuffled splitters.

    Raises
    ------
    ConfigError
        An unknown ``cv`` or one the data cannot support.
    DataError
        Too few subjects or images per class for the folds.
    """
    labels = np.asarray(labels)
    n = len(labels)
    splits = np.asarray(splits) if splits is not None else np.full(n, "")
    has_official = {"train", "val"} <= set(splits)
    cv = str(cv).strip().lower()
    if cv == "auto":
        cv = "official" if has_official else ("group" if groups is not None else "5")
    if cv == "official":
        if not has_official:
            raise ConfigError("--cv official needs a dataset with train and val splits "
                              "(FER-2013); use --cv group or --cv K")
        plan = make_cv("select", labels=labels, splits=splits)
        return plan.folds(labels), plan.description
    pool = np.flatnonzero(splits != "test") if has_official else np.arange(n)
    if cv.startswith("group"):
        plan, g = _group_cv(cv, labels[pool], groups, pool, seed)
    else:
        plan, g = _kfold_cv(cv, labels[pool], seed), None
    return [(pool[a], pool[b]) for a, b in plan.folds(labels[pool], g)], plan.description


def _group_cv(cv: str, labels, groups, pool, seed):
    if groups is None:
        raise ConfigError("--cv group needs subject ids (CK+48 has them); use --cv K")
    try:
        k = int(cv.split(":", 1)[1]) if ":" in cv else 10
    except ValueError:
        raise ConfigError(f"--cv {cv!r}: expected group:K with an integer K") from None
    g = np.asarray(groups)[pool]
    n_groups = len(set(g))
    k = min(k, n_groups)
    if k < 2:
        raise DataError(f"subject-grouped CV needs at least 2 subjects, found {n_groups}")
    return make_cv("subject-kfold", labels=labels, groups=g, n_splits=k, seed=seed), g


def _kfold_cv(cv: str, labels, seed):
    try:
        k = int(cv)
    except ValueError:
        raise ConfigError(f"--cv {cv!r}: expected auto, official, group, group:K or an integer "
                          "number of folds") from None
    if k < 2:
        raise ConfigError(f"--cv {k}: need at least 2 folds")
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        raise DataError(f"--cv {k}: the smallest class has {counts.min()} images; use fewer "
                        "folds")
    return make_cv("kfold", labels=labels, n_splits=k, seed=seed)


def _feature_grid(spec: str, params: dict) -> tuple[list[dict], dict]:
    """Split grid params into feature-param combinations and the rest."""
    from ..features import ALIGN_PARAMS, FEATURES, parse_feature_spec

    names = parse_feature_spec(spec)
    feat_keys, rest = {}, {}
    for key, vals in params.items():
        vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
        if "__" in key and key.split("__", 1)[0] in FEATURES:
            if key.split("__", 1)[0] in names:
                feat_keys[key] = vals
            continue
        if key.startswith("features__"):
            feat_keys[key[len("features__"):]] = vals
            continue
        if (any(key in FEATURES[n]().get_params() for n in names) and key != "n_jobs") \
                or key in ALIGN_PARAMS:  # the alignment step is part of the feature step
            feat_keys[key] = vals
            continue
        rest[key] = vals
    combos = [dict(zip(feat_keys, c, strict=True)) for c in product(*feat_keys.values())] or [{}]
    return combos, rest


def _head_grid(head, rest: dict, used: set) -> dict:
    """``rest`` routed to ``head``'s names (keys it does not have are skipped), checked."""
    from ..pipeline import check_param_values, route_params

    grid = {}
    for key, vals in rest.items():
        try:
            grid.update(route_params(head, {key: vals}, grid=True))
            used.add(key)
        except ConfigError:
            continue
    for k, vals in grid.items():
        for v in vals:
            if k not in ("reduce", "scale"):
                check_param_values(head, {k: v})
    return grid


def _grid_plan(features, classifiers, params: dict, seed: int) -> list:
    """``[(feature spec, feature params, classifier, head, head grid), ...]``."""
    from ..pipeline import check_classifier_name, make_head, make_pipeline, unknown_param_error

    for name in classifiers:
        check_classifier_name(name)
    plan, used = [], set()
    for spec in features:
        combos, rest = _feature_grid(spec, params)
        used |= set(params) - set(rest)
        for fp in combos:
            for clf in classifiers:
                head = make_head(clf, random_state=seed)
                plan.append((spec, fp, clf, head, _head_grid(head, rest, used)))
    unused = set(params) - used
    if unused:
        raise unknown_param_error(min(unused), make_pipeline(features[0], classifiers[0]))
    return plan


def _short_params(p: dict) -> dict:
    out = {}
    for k, v in p.items():
        k = k.replace("classifier__estimator__", "").replace("classifier__", "")
        if k == "reduce":
            k, v = "pca", (None if v == "passthrough" else getattr(v, "n_components", v))
        if k == "scale":
            v = v != "passthrough"
        out[k] = v
    return out


def _rows(res, spec, fp_text, clf, n_folds, scoring):
    """Summary rows (one per candidate) and fold rows of one ``GridSearchCV``."""
    summary, folds = [], []
    for i, params in enumerate(res["params"]):
        row = {"features": spec, "feature_params": fp_text, "classifier": clf,
               "params": json.dumps(_short_params(params), sort_keys=True, default=str),
               "mean_fit_time": float(res["mean_fit_time"][i]),
               "mean_score_time": float(res["mean_score_time"][i])}
        for s in scoring:
            row[f"mean_test_{s}"] = float(res[f"mean_test_{s}"][i])
            row[f"std_test_{s}"] = float(res[f"std_test_{s}"][i])
        summary.append(row)
        for f in range(n_folds):
            fr = {k: row[k] for k in ("features", "feature_params", "classifier", "params")}
            fr["fold"] = f
            for s in scoring:
                fr[f"test_{s}"] = float(res[f"split{f}_test_{s}"][i])
            folds.append(fr)
    return summary, folds


class _FeatureMatrix:
    """Features of the images for one (spec, feature params) at a time, from the cache.

    With ``flip`` the mirrored crops' features follow the originals' (rows ``n + i``).
    """

    def __init__(self, images, *, flip, cache, n_jobs, data_key):
        self.images, self.flip, self.cache = images, flip, cache
        self.n_jobs, self.data_key = n_jobs, data_key
        self.key, self.F, self.seconds = None, None, {}

    def get(self, spec: str, fp: dict):
        from ..features import make_features
        from ..features.cache import compute_features

        key = (spec, json.dumps(fp, sort_keys=True, default=str))
        if key != self.key:  # keep one matrix in memory
            t0 = time.perf_counter()
            feat = make_features(spec, fp)
            F = compute_features(feat, self.images, cache=self.cache, n_jobs=self.n_jobs,
                                 key=self.data_key)
            if self.flip:
                Ff = compute_features(feat, np.asarray(self.images)[:, :, ::-1],
                                      cache=self.cache, n_jobs=self.n_jobs,
                                      key=None if self.data_key is None
                                      else self.data_key + ":flip")
                F = np.concatenate([F, Ff])
            self.seconds[f"{spec} {key[1]}"] = round(time.perf_counter() - t0, 3)
            self.key, self.F = key, F
        return self.F


def _rank(summary, metric) -> None:
    order = np.argsort([-r[f"mean_test_{metric}"] for r in summary], kind="stable")
    for rank, i in enumerate(order, 1):
        summary[i][f"rank_test_{metric}"] = rank


def run_grid(images, labels, *, features, classifiers, params=None, cv="auto", groups=None,
             splits=None, flip: bool = False, n_jobs=None, seed: int = 0, cache: bool = True,
             scoring=METRICS, progress=None, data_key: str | None = None):
    """Cross-validated search over feature specs x classifiers x parameters.

    Features are computed once per (images, feature params) through the cache;
    each classifier's parameter grid runs in ``GridSearchCV`` on the cached
    matrix. With ``flip`` the mirrored crops of each fold's training rows join
    that fold's training set (never its test set).

    Parameters whose name belongs to no classifier in a combination are skipped
    for it (``C`` is not an XGBoost parameter) but must fit at least one.

    Parameters
    ----------
    images : (N, H, W) uint8 ndarray
    labels : (N,) array-like of str
    features, classifiers : list of str
        Feature specs (``"hog+lbp"``) and classifier names.
    params : dict, optional
        Parameter -> candidate values.
    cv, groups, splits, seed
        See :func:`grid_cv`.
    scoring : tuple of str
        Names from :data:`~classicfer.evaluation.METRICS`; the first ranks the rows.
    progress : callable, optional
        ``progress(total=..., desc=..., unit=...)`` returns a tqdm-like bar.

    Returns
    -------
    summary : list of dict
        One row per (features, feature params, classifier, parameter candidate)
        with sklearn's keys (``mean_test_accuracy``, ``std_test_macro_f1``,
        ``mean_fit_time``, ``params``...).
    folds : list of dict
        One row per candidate per fold (``test_accuracy``...).
    info : dict
        ``cv`` description, number of folds, feature seconds per spec, ``flip``.
    """
    from sklearn.model_selection import GridSearchCV

    from ..pipeline import check_training_labels

    unknown = [s for s in scoring if s not in SCORERS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; choose from {', '.join(SCORERS)}")
    labels = np.asarray(labels)
    folds, cv_desc = grid_cv(cv, labels=labels, groups=groups, splits=splits, seed=seed)
    check_training_labels(labels[np.unique(np.concatenate([np.r_[a, b] for a, b in folds]))])
    plan = _grid_plan(features, classifiers, dict(params or {}), seed)
    n_total = sum(int(np.prod([len(v) for v in g.values()])) if g else 1
                  for *_, g in plan) * len(folds)
    bar = progress(total=n_total, desc="grid", unit="fit") if progress else None
    n = len(labels)
    y = np.concatenate([labels, labels]) if flip else labels
    cv_idx = [(np.concatenate([a, a + n]) if flip else a, b) for a, b in folds]
    matrix = _FeatureMatrix(images, flip=flip, cache=cache, n_jobs=n_jobs, data_key=data_key)
    summary, fold_rows = [], []
    for spec, fp, clf, head, grid in plan:
        search = GridSearchCV(head, [grid] if grid else [{}],
                              scoring={s: SCORERS[s] for s in scoring}, refit=False,
                              cv=cv_idx, n_jobs=n_jobs, error_score="raise")
        search.fit(matrix.get(spec, fp), y)
        rows, frows = _rows(search.cv_results_, spec, json.dumps(fp, sort_keys=True, default=str),
                            clf, len(folds), scoring)
        summary += rows
        fold_rows += frows
        if bar is not None:
            bar.update(len(rows) * len(folds))
            bar.set_postfix_str(f"{spec}/{clf}")
    if bar is not None:
        bar.close()
    _rank(summary, scoring[0])
    return summary, fold_rows, {"cv": cv_desc, "n_folds": len(folds),
                                "feature_seconds": matrix.seconds, "flip": flip}


def write_grid_results(out_dir, summary, folds, info: dict, *, dataset=None,
                       command=None) -> Path:
    """Write ``summary.csv``, ``folds.csv``, ``summary.md`` and ``run.json`` under ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
    summary, folds : list of dict
        From :func:`run_grid`.
    info : dict
        Settings stored in the run record (``cv``, ``seed``, ``flip``...).
    dataset : Dataset, optional
        Described in the run record (name, root, manifest hash).
    command : list of str, optional
        The command line (default: the current one).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    import csv

    from ..datasets.manifest import dataset_record
    from ..provenance import run_record

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = sorted(summary, key=lambda r: r.get("rank_test_accuracy", 0))
    for name, rows in (("summary.csv", summary), ("folds.csv", folds)):
        if not rows:
            continue
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    run = run_record(command, dataset=None if dataset is None else dataset_record(dataset),
                     **info)
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    (out / "summary.md").write_text(_summary_markdown(summary, run))
    return out


def _summary_markdown(summary, run) -> str:
    lines = [("| Rank | Features | Classifier | Params | Accuracy | Macro-F1 | Balanced Acc. | "
              "Fit s |"), "|---|---|---|---|---|---|---|---|"]
    for r in summary:
        fp = "" if r["feature_params"] == "{}" else f" {r['feature_params']}"
        lines.append(
            f"| {r.get('rank_test_accuracy', '')} | {r['features']}{fp} | {r['classifier']} | "
            f"`{r['params']}` | {r['mean_test_accuracy']:.4f} ± {r['std_test_accuracy']:.4f} | "
            f"{r.get('mean_test_macro_f1', float('nan')):.4f} | "
            f"{r.get('mean_test_balanced_accuracy', float('nan')):.4f} | "
            f"{r['mean_fit_time']:.1f} |")
    dataset = (run.get("dataset") or {}).get("name", "")
    command = run.get("command", "")
    command = " ".join(command) if isinstance(command, list) else command
    return (f"# Grid: {dataset}\n\nCV: {run.get('cv', '')}; generated from "
            f"summary.csv by `classicfer grid`.\n\nCommand: `{command}`\n\n"
            + "\n".join(lines) + "\n")
