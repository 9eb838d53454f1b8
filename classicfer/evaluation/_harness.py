"""Run a protocol for a model and collect every prediction."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError, DataError, ModelError
from ..labels import label_order
from ._metrics import bootstrap_accuracy_ci, classification_metrics, fold_summary
from ._models import ModelSpec, PrefitClassifier, model_from_estimator
from ._protocols import check_protocol, default_protocol, leave_one_subject_out, subject_kfold


@dataclass
class EvaluationResult:
    """Every test prediction of one protocol run, plus per-fold timings.

    ``rows`` index the *test* dataset as it was loaded (before label mapping),
    so images, paths and group attributes can be looked up for each prediction.
    ``proba`` (N, len(labels)) holds probabilities (``score_kind="probability"``),
    a softmax of decision scores (``"decision"``), or is None.
    """

    dataset: str
    protocol: str
    model: str
    model_kind: str
    labels: list
    rows: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    score_kind: str | None
    fold: np.ndarray
    folds: list
    paths: np.ndarray
    subjects: np.ndarray | None
    seed: int = 0
    splitter: str = ""
    model_description: dict = field(default_factory=dict)
    selection: list = field(default_factory=list)
    selected_params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    label_map: dict = field(default_factory=dict)
    train_dataset: str | None = None
    cpu: dict = field(default_factory=dict)

    @property
    def confidence(self) -> np.ndarray:
        if self.proba is None:
            return np.full(len(self.y_pred), np.nan)
        idx = {c: i for i, c in enumerate(self.labels)}
        return np.array([self.proba[k, idx[p]] if p in idx else np.nan
                         for k, p in enumerate(self.y_pred)])

    def metrics(self, *, n_boot: int = 1000) -> dict:
        """All figures of this run as a JSON-ready dict (sorted keys when dumped)."""
        m = classification_metrics(self.y_true, self.y_pred, self.labels)
        lo, hi = bootstrap_accuracy_ci(self.y_true, self.y_pred, groups=self.subjects,
                                       n_boot=n_boot, seed=self.seed)
        n_test = sum(f["n_test"] for f in self.folds)
        pred_total = sum(f["predict_time"] for f in self.folds)
        fit_times = [f["fit_time"] for f in self.folds if f["fit_time"] is not None]
        m.update({
            "dataset": self.dataset,
            "protocol": self.protocol,
            "model": self.model,
            "model_kind": self.model_kind,
            "labels": list(self.labels),
            "n_samples": len(self.y_true),
            "n_folds": len(self.folds),
            "accuracy_ci95": [lo, hi],
            "bootstrap": {"n_boot": n_boot, "seed": self.seed, "level": 0.95,
                          "unit": "subject" if self.subjects is not None else "image"},
            "total_fit_time": float(sum(fit_times)) if fit_times else None,
            "total_predict_time": float(pred_total),
            "cpu": dict(self.cpu),
            "predict_ms_per_image": float(1000 * pred_total / max(n_test, 1)),
            "score_kind": self.score_kind,
            "splitter": self.splitter,
            "seed": self.seed,
            "notes": list(self.notes),
            "label_map": dict(self.label_map),
            "train_dataset": self.train_dataset,
            "selected_params": self.selected_params,
            "selection": self.selection,
            "folds": self.folds,
        })
        m.update(fold_summary(self.folds))
        return m


def _take(images, idx):
    if isinstance(images, np.ndarray):
        return images[idx]
    return [images[i] for i in idx]


def _mirror(images):
    """Left-right mirror of a batch of (N, H, W) or (N, H, W, C) crops."""
    return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])


def _apply_map(dataset, label_map):
    """Rename labels (``old -> new``); ``old -> ""``/None drops those rows.

    Returns the kept row indices and the mapped labels of those rows.
    """
    from ..labels import canonical_label

    labels = np.asarray(dataset.labels).astype(object)
    keep = np.ones(len(labels), dtype=bool)
    for old, new in (label_map or {}).items():
        hit = labels == old
        if new in (None, "", "-"):
            keep &= ~hit
        else:
            labels[hit] = canonical_label(new)
    rows = np.flatnonzero(keep)
    return rows, labels[rows].astype(str)


#: Test rows given to a model per predict / predict_proba call: what the model allocates
#: for them (a CNN's activations, a pipeline's features) stays bounded whatever the size
#: of the test set.
PREDICT_BATCH = 512


def _n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _batched(fn, X, batch: int | None = None) -> np.ndarray:
    """``fn(X)`` computed over consecutive slices of at most ``batch`` rows, concatenated."""
    batch = batch or PREDICT_BATCH
    n = _n_rows(X)
    if n <= batch:
        return np.asarray(fn(X))
    return np.concatenate([np.asarray(fn(X[i:i + batch])) for i in range(0, n, batch)])


def _scores(est, X, labels):
    """Class scores aligned with ``labels`` and their kind, or (None, None)."""
    classes = [str(c) for c in est.classes_]
    raw, kind = None, None
    if hasattr(est, "predict_proba"):
        try:
            raw, kind = np.asarray(_batched(est.predict_proba, X), dtype=float), "probability"
        except (AttributeError, NotImplementedError):
            raw = None
    if raw is None and hasattr(est, "decision_function"):
        try:
            d = np.asarray(_batched(est.decision_function, X), dtype=float)
        except (AttributeError, NotImplementedError):
            d = None
        if d is not None:
            if d.ndim == 1:
                d = np.stack([-d, d], axis=1)
            z = d - d.max(axis=1, keepdims=True)
            raw = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            kind = "decision"
    if raw is None:
        return None, None
    return _align(raw, classes, labels), kind


def _predict(est, X, labels, restrict: bool):
    """Predicted labels, aligned scores, their kind and the predict time of one test fold.

    The rows go to the model :data:`PREDICT_BATCH` at a time.
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    if isinstance(est, PrefitClassifier):
        raw = _batched(est.predict_proba, X)  # one pass gives both labels and scores
        pred_time = time.perf_counter() - t0
        proba, kind = _align(raw, _model_labels(est), labels), "probability"
        pred = (np.asarray(labels)[np.argmax(proba, axis=1)] if restrict
                else est.classes_[np.argmax(raw, axis=1)])
    else:
        pred = _batched(est.predict, X).astype(str)
        pred_time = time.perf_counter() - t0
        proba, kind = _scores(est, X, labels)
        if restrict and proba is not None:
            pred = np.asarray(labels)[np.argmax(proba, axis=1)]
    _CPU["predict"] += time.process_time() - c0
    return pred, proba, kind, pred_time


def _align(raw, classes, labels):
    """Columns of ``raw`` (over ``classes``) re-ordered to ``labels``; missing ones are 0."""
    out = np.zeros((raw.shape[0], len(labels)))
    pos = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(labels):
        if c in pos:
            out[:, j] = raw[:, pos[c]]
    return out


def _model_labels(est):
    return [str(c) for c in getattr(est, "classes_", [])]


def _build(spec: ModelSpec, params: dict | None):
    from sklearn.base import clone

    if spec.factory is not None and params:
        return spec.factory(params)
    est = clone(spec.estimator)
    if params:
        est.set_params(**params)
    return est


def _stateless(step) -> bool:
    from sklearn.pipeline import FeatureUnion
    from sklearn.utils import get_tags

    if isinstance(step, FeatureUnion):
        parts = [t for _, t in step.transformer_list if t not in ("drop", "passthrough")]
        return bool(parts) and all(_stateless(t) for t in parts)
    try:
        return get_tags(step).requires_fit is False
    except (AttributeError, TypeError, ValueError):
        return False


def _precomputable(spec: ModelSpec) -> bool:
    """True when the pipeline starts with a stateless feature step shared by every fit."""
    from sklearn.pipeline import Pipeline

    est = spec.estimator
    if not isinstance(est, Pipeline) or len(est.steps) < 2 or not _stateless(est.steps[0][1]):
        return False
    first = repr(est.steps[0][1])
    for combo in itertools.product(*(spec.grid[k] for k in sorted(spec.grid))):
        params = dict(zip(sorted(spec.grid), combo))
        if repr(_build(spec, params).steps[0][1]) != first:
            return False  # the grid changes the features: compute them per candidate
    return True


def _fit(spec: ModelSpec, params: dict | None, X, y, *, head: bool = False):
    """Fit a fresh copy (``head``: only the steps after the precomputed features)."""
    est = _build(spec, params)
    if head:
        est = est[1:]
    t0 = time.perf_counter()
    c0 = time.process_time()
    est.fit(X, y)
    _CPU["fit"] += time.process_time() - c0
    return est, time.perf_counter() - t0


#: process CPU seconds spent in fit/predict during the current evaluate() call
_CPU = {"fit": 0.0, "predict": 0.0}


def evaluate(model, dataset, protocol: str | None = None, *, test_dataset=None,
             folds: int = 10, seed: int = 0, label_map: dict | None = None,
             shared_classes: bool = False, prefit: bool | None = None, name: str | None = None,
             flip: bool = False, progress=None) -> EvaluationResult:
    """Run ``protocol`` for ``model`` on ``dataset``.

    Parameters
    ----------
    model : ModelSpec, sklearn estimator or PrefitClassifier
        Unfitted estimators are cloned and fitted per fold; fitted ones (and
        deployment folders) are only used to predict.
    dataset : Dataset
        The data (for ``cross-dataset``: the data to fit on, A).
    protocol : {'official', 'split', 'subject-kfold', 'loso', 'cross-dataset'} or None
        None picks :func:`default_protocol`.
    test_dataset : Dataset, optional
        ``cross-dataset`` only: the data to test on (B). For a prefit model
        ``dataset`` may be None.
    folds, seed : int
        Number of subject-grouped folds and the seed of the splitter and bootstrap.
    label_map : dict, optional
        ``{old: new}`` renames dataset labels before anything else; ``{old: ""}``
        drops those rows.
    shared_classes : bool
        Score a prefit model only over the classes it shares with the dataset:
        other rows are dropped and its predictions are restricted to those
        classes. Implied by ``cross-dataset``.
    flip : bool
        Train on each training crop and its mirror image (test crops are not
        flipped). Ignored for prefit models.
    progress : callable, optional
        Wraps the fold iterator (e.g. a tqdm bar).

    Raises
    ------
    DataError, ConfigError, ModelError
        The protocol does not fit the dataset, the model's classes do not match
        the dataset's (and no mapping says how), or the data is empty.
    """
    spec = model if isinstance(model, ModelSpec) else model_from_estimator(
        model, name=name, prefit=prefit)
    if name:
        spec.name = name
    label_map = dict(label_map or {})
    if protocol == "cross-dataset" or test_dataset is not None:
        if protocol not in (None, "cross-dataset"):
            raise ConfigError(f"a second (test) dataset only goes with --protocol "
                              f"cross-dataset, not {protocol!r}")
        if test_dataset is None:
            raise ConfigError("protocol 'cross-dataset' needs a dataset to test on "
                              "(--test-data)")
        protocol = "cross-dataset"
        if dataset is None and not spec.prefit:
            raise ConfigError("protocol 'cross-dataset' needs data to fit the model on (--data)")
        test_ds = test_dataset
    else:
        if dataset is None:
            raise ConfigError("no dataset given")
        protocol = protocol or default_protocol(dataset, folds=folds)
        check_protocol(dataset, protocol, folds=folds, prefit=spec.prefit)
        test_ds = dataset
    if spec.grid and protocol != "official":
        raise ConfigError(f"parameter lists (a grid: {', '.join(sorted(spec.grid))}) are only "
                          f"searched by --protocol official (selection on the val split); "
                          f"give one value per parameter for {protocol!r}")

    rows, y_all = _apply_map(test_ds, label_map)
    if len(rows) == 0:
        raise DataError(f"{test_ds.name}: no rows left after --map")
    notes = []
    data_classes = label_order(y_all)

    # Which classes are scored.
    fit_rows = fit_y = None
    if protocol == "cross-dataset" and not spec.prefit:
        fit_rows, fit_y = _apply_map(dataset, label_map)
        model_classes = label_order(fit_y)
    elif spec.prefit:
        model_classes = _model_labels(spec.estimator)
    else:
        model_classes = data_classes
    restrict = False
    if set(model_classes) != set(data_classes):
        if shared_classes or protocol == "cross-dataset":
            labels = [c for c in data_classes if c in set(model_classes)]
            if not labels:
                raise ModelError(f"the model's classes ({', '.join(model_classes)}) and the "
                                 f"dataset's ({', '.join(data_classes)}) share none")
            dropped = sorted(set(data_classes) - set(labels))
            extra = sorted(set(model_classes) - set(labels))
            if dropped:
                notes.append(f"{test_ds.name} rows of {', '.join(dropped)} dropped (the model "
                             f"does not know these classes)")
            if extra and spec.prefit:
                notes.append(f"predictions restricted to the {len(labels)} shared classes "
                             f"(the model's {', '.join(extra)} never predicted)")
            elif extra:
                notes.append(f"fitted on the {len(labels)} shared classes only (rows of "
                             f"{', '.join(extra)} left out of the training data)")
            restrict = bool(extra) and spec.prefit
            keep = np.isin(y_all, labels)
            rows, y_all = rows[keep], y_all[keep]
            if fit_rows is not None:
                keep = np.isin(fit_y, labels)
                fit_rows, fit_y = fit_rows[keep], fit_y[keep]
        else:
            lacks = sorted(set(data_classes) - set(model_classes))
            extra = sorted(set(model_classes) - set(data_classes))
            detail = "; ".join(x for x in (
                f"the dataset has {', '.join(lacks)} which the model lacks" if lacks else "",
                f"the model predicts {', '.join(extra)} which the dataset lacks" if extra else "",
            ) if x)
            raise ModelError(f"model classes ({', '.join(model_classes)}) do not match "
                             f"{test_ds.name}'s ({', '.join(data_classes)}): {detail}; map them "
                             f"with --map OLD=NEW (OLD= drops a class), or score the shared "
                             f"classes with --shared-classes or --protocol cross-dataset")
    else:
        labels = data_classes
    if restrict and spec.prefit and not (hasattr(spec.estimator, "predict_proba")
                                         or hasattr(spec.estimator, "decision_function")):
        notes.append("the model gives no scores, so predictions outside the shared classes "
                     "count as errors")
    if spec.prefit:
        notes.append("prefit model: not refitted; fit time is not measured")
        flip = False
    elif flip:
        notes.append("training crops augmented with their mirror images (test crops as they are)")

    subj_all = None if test_ds.subjects is None else np.asarray(test_ds.subjects)[rows]
    split_all = np.asarray(test_ds.splits)[rows]

    # The folds: (train positions into rows, val positions, test positions).
    splitter = ""
    if protocol == "official":
        plan = [(np.flatnonzero(split_all == "train"), np.flatnonzero(split_all == "val"),
                 np.flatnonzero(split_all == "test"))]
        splitter = "fit train, select val, report test"
    elif protocol == "split":
        plan = [(np.flatnonzero(np.isin(split_all, ["train", "val"])), np.array([], int),
                 np.flatnonzero(split_all == "test"))]
        splitter = "fit train+val, report test"
    elif protocol == "subject-kfold":
        fl, splitter = subject_kfold(y_all, subj_all, n_splits=folds, seed=seed)
        plan = [(tr, np.array([], int), te) for tr, te in fl]
    elif protocol == "loso":
        fl, splitter = leave_one_subject_out(subj_all)
        plan = [(tr, np.array([], int), te) for tr, te in fl]
    else:  # cross-dataset
        plan = [(None, np.array([], int), np.arange(len(rows)))]
        splitter = (f"fit {dataset.name}, test all of {test_ds.name}" if dataset is not None
                    and not spec.prefit else f"prefit model, test all of {test_ds.name}")
    if spec.prefit:
        plan = [(np.array([], int), np.array([], int), te) for _, _, te in plan]
    for _, _, te in plan:
        if len(te) == 0:
            raise DataError(f"{test_ds.name}: protocol {protocol!r} leaves an empty test set")

    # Stateless features (HOG, LBP...) are computed once for every row, not once per
    # fold; their cost per image is added back to each fold's fit and predict times.
    _CPU.update(fit=0.0, predict=0.0)
    cpu_start = time.process_time()
    feats_test = feats_fit = feats_flip = None
    per_img = 0.0
    if not spec.prefit and _precomputable(spec):
        feat = spec.estimator.steps[0][1]
        t0 = time.perf_counter()
        feats_test = feat.transform(_take(test_ds.images, rows))
        n_done = len(rows)
        if protocol == "cross-dataset":
            feats_fit = feat.transform(_take(dataset.images, fit_rows))
            n_done += len(fit_rows)
        if flip:
            if protocol == "cross-dataset":
                feats_fit = np.concatenate([feats_fit, feat.transform(
                    _mirror(_take(dataset.images, fit_rows)))])
                n_done += len(fit_rows)
            else:
                feats_flip = feat.transform(_mirror(_take(test_ds.images, rows)))
                n_done += len(rows)
        per_img = (time.perf_counter() - t0) / max(n_done, 1)

    def X_at(pos):
        return feats_test[pos] if feats_test is not None else _take(test_ds.images, rows[pos])

    def X_train(pos):
        """Training rows at ``pos`` (plus their mirror images with ``flip``)."""
        X = X_at(pos)
        if not flip:
            return X, y_all[pos]
        Xf = feats_flip[pos] if feats_flip is not None else _mirror(X)
        return np.concatenate([X, Xf]), np.concatenate([y_all[pos], y_all[pos]])

    head = feats_test is not None
    out_pred, out_proba, out_fold, out_pos = [], [], [], []
    fold_rows, selection, selected = [], [], {}
    score_kind = None
    it = list(enumerate(plan))
    if progress is not None:
        it = progress(it)
    for k, (tr, va, te) in it:
        fit_time = None
        X_te = X_at(te)
        if spec.prefit:
            est = spec.estimator
            n_train = 0
        else:
            if protocol == "cross-dataset":
                X_tr = feats_fit if head else _take(dataset.images, fit_rows)
                y_tr = fit_y
                if flip:
                    if not head:
                        X_tr = np.concatenate([X_tr, _mirror(X_tr)])
                    y_tr = np.concatenate([y_tr, y_tr])
            else:
                X_tr, y_tr = X_train(tr)
            n_train = len(y_tr)
            if len(set(y_tr)) < 2:
                raise DataError(f"fold {k}: the training rows hold fewer than 2 classes")
            if spec.grid:
                if len(va) == 0:
                    raise DataError(f"{test_ds.name}: a parameter grid needs a val split")
                X_va, y_va = X_at(va), y_all[va]
                keys = sorted(spec.grid)
                best = None
                for combo in itertools.product(*(spec.grid[k_] for k_ in keys)):
                    params = dict(zip(keys, combo))
                    est_c, t_c = _fit(spec, params, X_tr, y_tr, head=head)
                    t_c += per_img * n_train
                    acc = float(np.mean(est_c.predict(X_va).astype(str) == y_va))
                    selection.append({"params": params, "val_accuracy": acc,
                                      "fit_time": t_c})
                    if best is None or acc > best[0]:
                        best = (acc, params, est_c, t_c)
                _, selected, est, fit_time = best
            else:
                est, fit_time = _fit(spec, None, X_tr, y_tr, head=head)
                fit_time += per_img * n_train
        pred, proba, kind, pred_time = _predict(est, X_te, labels, restrict)
        pred_time += per_img * len(te)
        score_kind = kind if score_kind in (None, kind) else "mixed"
        y_te = y_all[te]
        fm = classification_metrics(y_te, pred, labels)
        fold_rows.append({"fold": k, "n_train": int(n_train), "n_test": len(te),
                          "test_accuracy": fm["accuracy"],
                          "test_balanced_accuracy": fm["balanced_accuracy"],
                          "test_macro_f1": fm["macro_f1"],
                          "fit_time": None if fit_time is None else float(fit_time),
                          "predict_time": float(pred_time)})
        out_pred.append(pred)
        out_proba.append(proba)
        out_fold.append(np.full(len(te), k))
        out_pos.append(te)

    pos = np.concatenate(out_pos)
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    proba = None if any(p is None for p in out_proba) else np.concatenate(out_proba)[order]
    if proba is None:
        score_kind = None
    desc = dict(spec.description)
    cpu = {"total_cpu_seconds": time.process_time() - cpu_start,
           "fit_cpu_seconds": _CPU["fit"], "predict_cpu_seconds": _CPU["predict"]}
    if head:
        desc["features_precomputed"] = True
        desc["feature_seconds_per_image"] = per_img
    # Where the model learned: the protocol's own rows, --data for cross-dataset, or
    # (prefit) what its sidecar says.
    if dataset is not None and (not spec.prefit or protocol == "cross-dataset"):
        train_name = dataset.name
    else:
        train_name = str((desc.get("training") or {}).get("dataset") or "") or None
    return EvaluationResult(
        dataset=(f"{train_name or 'prefit'}-to-{test_ds.name}" if protocol == "cross-dataset"
                 else test_ds.name),
        protocol=protocol, model=spec.name, model_kind=spec.kind, labels=list(labels),
        rows=rows[pos], y_true=y_all[pos], y_pred=np.concatenate(out_pred)[order].astype(str),
        proba=proba, score_kind=score_kind, fold=np.concatenate(out_fold)[order],
        folds=fold_rows, paths=np.asarray(test_ds.paths)[rows[pos]],
        subjects=None if subj_all is None else subj_all[pos], seed=seed, splitter=splitter,
        model_description=desc, cpu=cpu, selection=selection, selected_params=selected, notes=notes,
        label_map=label_map,
        train_dataset=train_name,
    )
