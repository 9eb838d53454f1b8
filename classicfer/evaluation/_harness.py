"""Run a protocol for a model and collect every prediction.

:func:`evaluate` runs named steps: resolve the protocol, decide which rows and classes
are scored (:class:`_Scored`), split them with the protocol's scikit-learn CV object
(:func:`~classicfer.evaluation.make_cv`), compute stateless features once
(:class:`_Features`), then per fold fit (a parameter grid is searched by ``GridSearchCV``
on the ``PredefinedSplit`` train -> val) and predict, and collect an
:class:`EvaluationResult`. CPU seconds are counted per call (:class:`_Clock`).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError, DataError, ModelError
from ..labels import label_order
from ._metrics import METRICS, bootstrap_accuracy_ci, classification_metrics, fold_summary
from ._models import ModelSpec, PrefitClassifier, model_from_estimator
from ._protocols import check_protocol, default_protocol, make_cv


@dataclass
class _Clock:
    """Process CPU seconds spent fitting and predicting in one :func:`evaluate` call."""

    start: float = field(default_factory=time.process_time)
    fit: float = 0.0
    predict: float = 0.0

    def summary(self) -> dict:
        return {"total_cpu_seconds": time.process_time() - self.start,
                "fit_cpu_seconds": self.fit, "predict_cpu_seconds": self.predict}


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


def _predict(est, X, labels, restrict: bool, clock: _Clock):
    """Predicted labels, aligned scores, their kind and the predict time of one test fold.

    The rows go to the model :data:`PREDICT_BATCH` at a time; the CPU time is added to
    ``clock``.
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
    clock.predict += time.process_time() - c0
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


def _routed(spec: ModelSpec, params: dict) -> dict:
    """``params`` in the estimator's own names (a classicfer spec routes ``C``, ``pca``...)."""
    return spec.route(params) if spec.route is not None else dict(params)


def _build(spec: ModelSpec, params: dict | None):
    from sklearn.base import clone

    est = clone(spec.estimator)
    if params:
        est.set_params(**_routed(spec, params))
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


def _candidates(spec: ModelSpec) -> list[dict]:
    """Every combination of the grid's values, in ``ParameterGrid`` order (sorted keys)."""
    keys = sorted(spec.grid)
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(spec.grid[k] for k in keys))]


def _precomputable(spec: ModelSpec) -> bool:
    """True when the pipeline starts with a stateless feature step shared by every fit."""
    from sklearn.pipeline import Pipeline

    est = spec.estimator
    if not isinstance(est, Pipeline) or len(est.steps) < 2 or not _stateless(est.steps[0][1]):
        return False
    first = repr(est.steps[0][1])
    for params in _candidates(spec):
        if repr(_build(spec, params).steps[0][1]) != first:
            return False  # the grid changes the features: compute them per candidate
    return True


def _fit(spec: ModelSpec, params: dict | None, X, y, *, head: bool, clock: _Clock):
    """Fit a fresh copy (``head``: only the steps after the precomputed features)."""
    est = _build(spec, params)
    if head:
        est = est[1:]
    t0 = time.perf_counter()
    c0 = time.process_time()
    est.fit(X, y)
    clock.fit += time.process_time() - c0
    return est, time.perf_counter() - t0


# --------------------------------------------------------------------------- steps
def _resolve_protocol(spec, dataset, protocol, test_dataset, folds):
    """``(protocol, test dataset)``; a one-line error when they do not go together."""
    if protocol == "cross-dataset" or test_dataset is not None:
        if protocol not in (None, "cross-dataset"):
            raise ConfigError(f"a second (test) dataset only goes with --protocol "
                              f"cross-dataset, not {protocol!r}")
        if test_dataset is None:
            raise ConfigError("protocol 'cross-dataset' needs a dataset to test on "
                              "(--test-data)")
        if dataset is None and not spec.prefit:
            raise ConfigError("protocol 'cross-dataset' needs data to fit the model on (--data)")
        return "cross-dataset", test_dataset
    if dataset is None:
        raise ConfigError("no dataset given")
    protocol = protocol or default_protocol(dataset, folds=folds)
    check_protocol(dataset, protocol, folds=folds, prefit=spec.prefit)
    return protocol, dataset


def _check_grid(spec, protocol) -> None:
    if spec.grid and protocol != "official":
        raise ConfigError(f"parameter lists (a grid: {', '.join(sorted(spec.grid))}) are only "
                          f"searched by --protocol official (selection on the val split); "
                          f"give one value per parameter for {protocol!r}")


@dataclass
class _Scored:
    """The rows and classes one run scores.

    ``rows`` index the test dataset as loaded, ``y`` are their labels after the label
    map; ``fit_rows``/``fit_y`` the rows of the fit dataset (cross-dataset only).
    """

    rows: np.ndarray
    y: np.ndarray
    labels: list
    fit_rows: np.ndarray | None = None
    fit_y: np.ndarray | None = None
    restrict: bool = False  # a prefit model's predictions limited to ``labels``
    notes: list = field(default_factory=list)


def _scored(spec, dataset, test_ds, protocol, label_map, shared_classes) -> _Scored:
    """Which rows and classes are scored: mapped labels, the classes the model shares."""
    rows, y = _apply_map(test_ds, label_map)
    if len(rows) == 0:
        raise DataError(f"{test_ds.name}: no rows left after --map")
    sc = _Scored(rows, y, label_order(y))
    if protocol == "cross-dataset" and not spec.prefit:
        sc.fit_rows, sc.fit_y = _apply_map(dataset, label_map)
        model_classes = label_order(sc.fit_y)
    elif spec.prefit:
        model_classes = _model_labels(spec.estimator)
    else:
        model_classes = sc.labels
    if set(model_classes) != set(sc.labels):
        if not (shared_classes or protocol == "cross-dataset"):
            raise _mismatch(model_classes, sc.labels, test_ds.name)
        _share(sc, spec, model_classes, test_ds.name)
    return sc


def _mismatch(model_classes, data_classes, name) -> ModelError:
    lacks = sorted(set(data_classes) - set(model_classes))
    extra = sorted(set(model_classes) - set(data_classes))
    detail = "; ".join(x for x in (
        f"the dataset has {', '.join(lacks)} which the model lacks" if lacks else "",
        f"the model predicts {', '.join(extra)} which the dataset lacks" if extra else "",
    ) if x)
    return ModelError(f"model classes ({', '.join(model_classes)}) do not match "
                      f"{name}'s ({', '.join(data_classes)}): {detail}; map them "
                      f"with --map OLD=NEW (OLD= drops a class), or score the shared "
                      f"classes with --shared-classes or --protocol cross-dataset")


def _share(sc: _Scored, spec, model_classes, name) -> None:
    """Keep only the classes the model and the data share (rows, labels, notes)."""
    data_classes = sc.labels
    labels = [c for c in data_classes if c in set(model_classes)]
    if not labels:
        raise ModelError(f"the model's classes ({', '.join(model_classes)}) and the "
                         f"dataset's ({', '.join(data_classes)}) share none")
    dropped = sorted(set(data_classes) - set(labels))
    extra = sorted(set(model_classes) - set(labels))
    if dropped:
        sc.notes.append(f"{name} rows of {', '.join(dropped)} dropped (the model "
                        f"does not know these classes)")
    if extra and spec.prefit:
        sc.notes.append(f"predictions restricted to the {len(labels)} shared classes "
                        f"(the model's {', '.join(extra)} never predicted)")
    elif extra:
        sc.notes.append(f"fitted on the {len(labels)} shared classes only (rows of "
                        f"{', '.join(extra)} left out of the training data)")
    sc.restrict = bool(extra) and spec.prefit
    keep = np.isin(sc.y, labels)
    sc.rows, sc.y, sc.labels = sc.rows[keep], sc.y[keep], labels
    if sc.fit_rows is not None:
        keep = np.isin(sc.fit_y, labels)
        sc.fit_rows, sc.fit_y = sc.fit_rows[keep], sc.fit_y[keep]


def _model_notes(spec, sc: _Scored, flip: bool) -> bool:
    """Notes on how the model is treated; returns ``flip`` (never for a prefit model)."""
    est = spec.estimator
    if sc.restrict and not (hasattr(est, "predict_proba") or hasattr(est, "decision_function")):
        sc.notes.append("the model gives no scores, so predictions outside the shared classes "
                        "count as errors")
    if spec.prefit:
        sc.notes.append("prefit model: not refitted; fit time is not measured")
        return False
    if flip:
        sc.notes.append("training crops augmented with their mirror images (test crops as "
                        "they are)")
    return flip


def _plan(spec, sc: _Scored, protocol, dataset, test_ds, folds, seed):
    """``([(train, val, test) positions into sc.rows, ...], splitter description)``."""
    empty = np.array([], int)
    if protocol == "cross-dataset":
        plan = [(None, empty, np.arange(len(sc.rows)))]
        splitter = (f"fit {dataset.name}, test all of {test_ds.name}" if dataset is not None
                    and not spec.prefit else f"prefit model, test all of {test_ds.name}")
    else:
        grouped = protocol in ("subject-kfold", "loso")
        subj = np.asarray(test_ds.subjects)[sc.rows] if grouped else None
        split = np.asarray(test_ds.splits)[sc.rows]
        cv = make_cv(protocol, labels=sc.y, groups=subj, splits=split, n_splits=folds,
                     seed=seed)
        val = np.flatnonzero(split == "val") if protocol == "official" else empty
        plan = [(tr, val, te) for tr, te in cv.folds(sc.y, subj)]
        splitter = cv.description
    if spec.prefit:
        plan = [(empty, empty, te) for _, _, te in plan]
    if not plan or any(len(te) == 0 for _, _, te in plan):
        raise DataError(f"{test_ds.name}: protocol {protocol!r} leaves an empty test set")
    return plan, splitter


class _Features:
    """The model's input at any scored position.

    Stateless features (HOG, LBP...) are computed once for every row instead of once
    per fold, and their cost per image is added back to each fold's fit and predict
    times (``per_img``).
    """

    def __init__(self, spec, sc: _Scored, protocol, dataset, test_ds, flip: bool):
        self.sc, self.flip = sc, flip
        self.images = test_ds.images
        self.fit_images = dataset.images if sc.fit_rows is not None else None
        self.test = self.fit = self.flipped = None
        self.per_img = 0.0
        if not spec.prefit and _precomputable(spec):
            self._precompute(spec.estimator.steps[0][1])

    @property
    def head(self) -> bool:
        """True when the features are precomputed (fit and predict only the head)."""
        return self.test is not None

    def _precompute(self, feat) -> None:
        sc = self.sc
        t0 = time.perf_counter()
        self.test = feat.transform(_take(self.images, sc.rows))
        n_done = len(sc.rows)
        if self.fit_images is not None:
            fit_images = _take(self.fit_images, sc.fit_rows)
            self.fit = feat.transform(fit_images)
            if self.flip:
                self.fit = np.concatenate([self.fit, feat.transform(_mirror(fit_images))])
            n_done += len(sc.fit_rows) * (2 if self.flip else 1)
        elif self.flip:
            self.flipped = feat.transform(_mirror(_take(self.images, sc.rows)))
            n_done += len(sc.rows)
        self.per_img = (time.perf_counter() - t0) / max(n_done, 1)

    def at(self, pos):
        """Model input of the scored rows at ``pos``."""
        return self.test[pos] if self.test is not None else _take(self.images, self.sc.rows[pos])

    def train(self, pos):
        """Training input and labels at ``pos`` (plus their mirror images with ``flip``)."""
        X, y = self.at(pos), self.sc.y[pos]
        if not self.flip:
            return X, y
        Xf = self.flipped[pos] if self.flipped is not None else _mirror(X)
        return np.concatenate([X, Xf]), np.concatenate([y, y])

    def fit_set(self):
        """Cross-dataset: every (kept) row of the fit dataset, and its labels."""
        sc = self.sc
        X = self.fit if self.head else _take(self.fit_images, sc.fit_rows)
        if not self.flip:
            return X, sc.fit_y
        if not self.head:
            X = np.concatenate([X, _mirror(X)])
        return X, np.concatenate([sc.fit_y, sc.fit_y])


@dataclass
class _Run:
    """What every fold of one :func:`evaluate` call shares."""

    spec: ModelSpec
    protocol: str
    sc: _Scored
    feats: _Features
    clock: _Clock
    name: str  # of the test dataset, for messages


def _concat(a, b):
    return a + b if isinstance(a, list) else np.concatenate([a, b])


def _select(run: _Run, X_tr, y_tr, va):
    """Search the grid on train -> val, then fit the best candidate on the training rows.

    The search is ``GridSearchCV`` on the ``PredefinedSplit`` train -> val. Returns the
    fitted estimator, its fit time, the selection table and its parameters.
    """
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    spec, feats = run.spec, run.feats
    if len(va) == 0:
        raise DataError(f"{run.name}: a parameter grid needs a val split")
    candidates = _candidates(spec)
    base = _build(spec, None)
    search = GridSearchCV(base[1:] if feats.head else base,
                          [{k: [v] for k, v in _routed(spec, p).items()} for p in candidates],
                          scoring="accuracy", refit=False, error_score="raise",
                          cv=PredefinedSplit(np.r_[np.full(len(y_tr), -1),
                                                   np.zeros(len(va), int)]))
    c0 = time.process_time()
    search.fit(_concat(X_tr, feats.at(va)), np.concatenate([y_tr, run.sc.y[va]]))
    run.clock.fit += time.process_time() - c0
    res = search.cv_results_
    per = feats.per_img * len(y_tr)
    selection = [{"params": p, "val_accuracy": float(res["mean_test_score"][i]),
                  "fit_time": float(res["mean_fit_time"][i]) + per}
                 for i, p in enumerate(candidates)]
    best = candidates[int(np.argmax(res["mean_test_score"]))]  # the first of equal scores
    est, fit_time = _fit(spec, best, X_tr, y_tr, head=feats.head, clock=run.clock)
    return est, fit_time + per, selection, best


def _fit_fold(run: _Run, k: int, tr, va):
    """``(estimator, fit time or None, n_train, selection, selected params)`` of fold ``k``."""
    spec, feats = run.spec, run.feats
    if spec.prefit:
        return spec.estimator, None, 0, [], {}
    X_tr, y_tr = feats.fit_set() if run.protocol == "cross-dataset" else feats.train(tr)
    if len(set(y_tr)) < 2:
        raise DataError(f"fold {k}: the training rows hold fewer than 2 classes")
    if spec.grid:
        est, fit_time, selection, selected = _select(run, X_tr, y_tr, va)
        return est, fit_time, len(y_tr), selection, selected
    est, fit_time = _fit(spec, None, X_tr, y_tr, head=feats.head, clock=run.clock)
    return est, fit_time + feats.per_img * len(y_tr), len(y_tr), [], {}


def _run_fold(run: _Run, k: int, tr, va, te) -> dict:
    """Fit and predict fold ``k``; its fold row, predictions and selection."""
    est, fit_time, n_train, selection, selected = _fit_fold(run, k, tr, va)
    pred, proba, kind, pred_time = _predict(est, run.feats.at(te), run.sc.labels,
                                            run.sc.restrict, run.clock)
    fm = classification_metrics(run.sc.y[te], pred, run.sc.labels)
    row = {"fold": k, "n_train": int(n_train), "n_test": len(te),
           **{f"test_{m}": fm[m] for m in METRICS},
           "fit_time": None if fit_time is None else float(fit_time),
           "predict_time": float(pred_time + run.feats.per_img * len(te))}
    return {"row": row, "pred": pred, "proba": proba, "kind": kind, "te": te,
            "selection": selection, "selected": selected}


def _score_kind(kinds) -> str | None:
    out = None
    for kind in kinds:
        out = kind if out in (None, kind) else "mixed"
    return out


def _result(run: _Run, outs, dataset, test_ds, splitter, seed, label_map) -> EvaluationResult:
    """The :class:`EvaluationResult` of every fold's predictions, in row order."""
    spec, sc = run.spec, run.sc
    pos = np.concatenate([o["te"] for o in outs])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    probas = [o["proba"] for o in outs]
    proba = None if any(p is None for p in probas) else np.concatenate(probas)[order]
    desc = dict(spec.description)
    if run.feats.head:
        desc["features_precomputed"] = True
        desc["feature_seconds_per_image"] = run.feats.per_img
    # Where the model learned: the protocol's own rows, --data for cross-dataset, or
    # (prefit) what its sidecar says.
    if dataset is not None and (not spec.prefit or run.protocol == "cross-dataset"):
        train_name = dataset.name
    else:
        train_name = str((desc.get("training") or {}).get("dataset") or "") or None
    subj = None if test_ds.subjects is None else np.asarray(test_ds.subjects)[sc.rows]
    return EvaluationResult(
        dataset=(f"{train_name or 'prefit'}-to-{test_ds.name}"
                 if run.protocol == "cross-dataset" else test_ds.name),
        protocol=run.protocol, model=spec.name, model_kind=spec.kind, labels=list(sc.labels),
        rows=sc.rows[pos], y_true=sc.y[pos],
        y_pred=np.concatenate([o["pred"] for o in outs])[order].astype(str),
        proba=proba, score_kind=None if proba is None else _score_kind(o["kind"] for o in outs),
        fold=np.concatenate([np.full(len(o["te"]), o["row"]["fold"]) for o in outs])[order],
        folds=[o["row"] for o in outs], paths=np.asarray(test_ds.paths)[sc.rows[pos]],
        subjects=None if subj is None else subj[pos], seed=seed, splitter=splitter,
        model_description=desc, cpu=run.clock.summary(),
        selection=[s for o in outs for s in o["selection"]],
        selected_params=next((o["selected"] for o in reversed(outs) if o["selected"]), {}),
        notes=sc.notes, label_map=label_map, train_dataset=train_name,
    )


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

    Returns
    -------
    EvaluationResult
        Every test prediction, per-fold figures and timings.

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
    protocol, test_ds = _resolve_protocol(spec, dataset, protocol, test_dataset, folds)
    _check_grid(spec, protocol)
    sc = _scored(spec, dataset, test_ds, protocol, label_map, shared_classes)
    flip = _model_notes(spec, sc, flip)
    plan, splitter = _plan(spec, sc, protocol, dataset, test_ds, folds, seed)
    clock = _Clock()
    run = _Run(spec, protocol, sc, _Features(spec, sc, protocol, dataset, test_ds, flip), clock,
               test_ds.name)
    it = list(enumerate(plan))
    if progress is not None:
        it = progress(it)
    outs = [_run_fold(run, k, tr, va, te) for k, (tr, va, te) in it]
    return _result(run, outs, dataset, test_ds, splitter, seed, label_map)
