"""Calibration: expected calibration error, reliability diagrams, temperature scaling.

A classifier is *calibrated* when, among the images it labels with confidence
0.8, about 80 % are right. These functions measure that on held-out data and fit
one scalar temperature ``T`` on a validation split so that
``softmax(logits / T)`` is better calibrated (Guo et al., 2017). Temperature
scaling never changes the arg-max, so accuracy is untouched. The temperature is
fitted by NLL on one part of the validation split and kept only when it lowers
the ECE of the other part (:func:`select_temperature`): lower NLL does not
always mean lower top-1 calibration error.

References
----------
.. [1] Naeini, M. P., Cooper, G., Hauskrecht, M. (2015). Obtaining well
       calibrated probabilities using Bayesian binning. AAAI.
       :DOI:`10.1609/aaai.v29i1.9602`
.. [2] Guo, C., Pleiss, G., Sun, Y., Weinberger, K. Q. (2017). On calibration of
       modern neural networks. ICML. arXiv:1706.04599
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, DataError

#: Probabilities are clipped to this before a log, so log(0) never appears.
EPS = 1e-12


def _check_inputs(y_true_idx, proba):
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y_true_idx)
    if proba.ndim != 2:
        raise DataError(f"proba must be (n_samples, n_classes); got shape {proba.shape}")
    if y.ndim != 1 or len(y) != len(proba):
        raise DataError(f"y_true_idx must be (n_samples,) = ({len(proba)},); got shape {y.shape}")
    if len(y) == 0:
        raise DataError("no samples: calibration needs at least one prediction")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"y_true_idx must hold integer class indices; got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= proba.shape[1]:
        raise DataError(f"class indices must lie in [0, {proba.shape[1] - 1}]; "
                        f"got [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(proba)):
        raise DataError("proba holds NaN or infinite values")
    return y.astype(int), proba


def calibration_bins(y_true_idx, proba, n_bins=15):
    """Per-bin confidence, accuracy and count of the top-1 prediction.

    Bins are equal-width over confidence ``(0, 1]``: bin ``b`` holds the samples
    with ``b / n_bins < max(proba) <= (b + 1) / n_bins`` (confidence 0 falls in bin 0).

    Parameters
    ----------
    y_true_idx : (N,) int ndarray
        True class index of each sample.
    proba : (N, K) ndarray
        Predicted class probabilities (rows sum to 1).
    n_bins : int
        Number of equal-width bins.

    Returns
    -------
    dict
        ``edges`` ((n_bins + 1,) list), ``count``, ``confidence`` (mean top-1
        probability, None for empty bins), ``accuracy`` (None for empty bins).
    """
    y, proba = _check_inputs(y_true_idx, proba)
    if int(n_bins) < 1:
        raise ConfigError(f"n_bins must be >= 1; got {n_bins}")
    n_bins = int(n_bins)
    conf = proba.max(axis=1)
    pred = proba.argmax(axis=1)
    correct = (pred == y).astype(float)
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = sum_conf / count
        mean_acc = sum_acc / count
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": count.tolist(),
        "confidence": [None if c == 0 else float(v) for c, v in zip(count, mean_conf, strict=True)],
        "accuracy": [None if c == 0 else float(v) for c, v in zip(count, mean_acc, strict=True)],
    }


def expected_calibration_error(y_true_idx, proba, n_bins=15) -> float:
    """Expected calibration error (ECE) of the top-1 prediction.

    ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over equal-width
    confidence bins (see :func:`calibration_bins` for the bin edges) [1]_.

    Parameters
    ----------
    y_true_idx : (N,) int ndarray
        True class index of each sample.
    proba : (N, K) ndarray
        Predicted probabilities.
    n_bins : int
        Number of bins (15 as in Guo et al. [2]_).

    Returns
    -------
    float
        In ``[0, 1]``; 0 is perfect calibration.
    """
    bins = calibration_bins(y_true_idx, proba, n_bins)
    n = float(sum(bins["count"]))
    ece = 0.0
    for c, conf, acc in zip(bins["count"], bins["confidence"], bins["accuracy"], strict=True):
        if c:
            ece += c / n * abs(acc - conf)
    return float(ece)


def maximum_calibration_error(y_true_idx, proba, n_bins=15) -> float:
    """Largest ``|acc - conf|`` over the non-empty bins."""
    bins = calibration_bins(y_true_idx, proba, n_bins)
    gaps = [abs(a - c) for a, c in zip(bins["accuracy"], bins["confidence"], strict=True)
            if a is not None]
    return float(max(gaps))


def negative_log_likelihood(y_true_idx, proba) -> float:
    """Mean ``-log p(true class)`` (probabilities clipped at 1e-12)."""
    y, proba = _check_inputs(y_true_idx, proba)
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))))


def brier_score(y_true_idx, proba) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (p_k - [y = k])^2``."""
    y, proba = _check_inputs(y_true_idx, proba)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def calibration_summary(y_true_idx, proba, n_bins=15) -> dict:
    """Everything ``calibration.json`` holds: ECE, MCE, NLL, Brier, accuracy, bins."""
    y, p = _check_inputs(y_true_idx, proba)
    return {
        "n_samples": len(y),
        "n_bins": int(n_bins),
        "ece": expected_calibration_error(y, p, n_bins),
        "mce": maximum_calibration_error(y, p, n_bins),
        "nll": negative_log_likelihood(y, p),
        "brier": brier_score(y, p),
        "accuracy": float(np.mean(p.argmax(axis=1) == y)),
        "mean_confidence": float(np.mean(p.max(axis=1))),
        "bins": calibration_bins(y, p, n_bins),
    }


def reliability_diagram(y_true_idx, proba, labels, path, *, n_bins=15, title=None):
    """Save a reliability diagram (accuracy vs confidence, with a count histogram).

    Parameters
    ----------
    y_true_idx : (N,) int ndarray
    proba : (N, K) ndarray
    labels : sequence of str
        Class names in column order (shown in the subtitle; length must be K).
    path : str or Path
        Output image (PNG/SVG/PDF by extension). Parent folders are created.
    n_bins : int
    title : str, optional

    Returns
    -------
    Path
        The written file.
    """
    y, p = _check_inputs(y_true_idx, proba)
    labels = list(labels)
    if len(labels) != p.shape[1]:
        raise DataError(f"{len(labels)} labels for {p.shape[1]} probability columns")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    bins = calibration_bins(y, p, n_bins)
    ece = expected_calibration_error(y, p, n_bins)
    edges = np.asarray(bins["edges"])
    width = edges[1] - edges[0]
    centers = edges[:-1] + width / 2
    acc = np.array([np.nan if a is None else a for a in bins["accuracy"]])
    conf = np.array([np.nan if c is None else c for c in bins["confidence"]])
    count = np.asarray(bins["count"])

    fig, (ax, axh) = plt.subplots(2, 1, figsize=(7.2, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    ok = count > 0
    ax.bar(centers[ok], acc[ok], width=width * 0.95, color="#4477aa", edgecolor="black",
           linewidth=0.5, label="accuracy in bin")
    gap_lo = np.minimum(acc, conf)
    ax.bar(centers[ok], np.abs(acc - conf)[ok], bottom=gap_lo[ok], width=width * 0.95,
           fill=False, hatch="///", edgecolor="#cc3311", linewidth=0.8,
           label="gap to mean confidence")
    ax.plot(centers[ok], conf[ok], "_", color="black", markersize=9, markeredgewidth=1.5,
            label="mean confidence in bin")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title or 'Reliability diagram'}\nECE = {100 * ece:.2f} % "
                 f"(n = {len(y)}, {n_bins} bins)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    axh.bar(centers, count, width=width * 0.95, color="#999999", edgecolor="black",
            linewidth=0.5)
    axh.set_xlabel("confidence (top-1 probability)")
    axh.set_ylabel("images")
    fig.text(0.5, 0.005, "classes: " + ", ".join(labels), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- temperature


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def to_scores(values, kind="logits"):
    """Turn a model output into scores for :func:`apply_temperature`.

    ``kind="logits"`` returns the values unchanged; ``kind="probabilities"``
    returns ``log(clip(p, 1e-12, 1))``.
    """
    values = np.asarray(values, dtype=float)
    if kind == "logits":
        return values
    if kind == "probabilities":
        return np.log(np.clip(values, EPS, 1.0))
    raise ConfigError(f"unknown output kind {kind!r}; choose from logits, probabilities")


def apply_temperature(logits_or_logproba, temperature=1.0):
    """``softmax(scores / T)``: calibrated probabilities.

    Parameters
    ----------
    logits_or_logproba : (N, K) ndarray
        Logits, or log-probabilities of a model that outputs probabilities
        (see :func:`to_scores`).
    temperature : float
        ``T > 0``; ``T > 1`` softens, ``T < 1`` sharpens, 1 leaves the
        softmax of the scores unchanged.

    Returns
    -------
    (N, K) ndarray
        Probabilities; the arg-max of every row is unchanged.
    """
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ConfigError(f"temperature must be a positive number; got {temperature!r}")
    z = np.asarray(logits_or_logproba, dtype=float)
    if z.ndim != 2:
        raise DataError(f"scores must be (n_samples, n_classes); got shape {z.shape}")
    return np.exp(_log_softmax(z / t))


def fit_temperature(logits_or_logproba, y_true_idx, *, bounds=(0.05, 20.0)) -> float:
    """Fit the temperature ``T`` that minimises the NLL of ``softmax(scores / T)``.

    One scalar is fitted on held-out data (the validation split, never the test
    split), by a bounded 1-D search over ``log T`` (scipy's
    ``minimize_scalar``, method ``"bounded"``) [2]_.

    Parameters
    ----------
    logits_or_logproba : (N, K) ndarray
        Logits, or ``log(p)`` for a model that outputs probabilities.
    y_true_idx : (N,) int ndarray
    bounds : (float, float)
        Search range for ``T``.

    Returns
    -------
    float
        The fitted temperature.
    """
    z = np.asarray(logits_or_logproba, dtype=float)
    y, _ = _check_inputs(y_true_idx, np.zeros_like(z) if z.ndim == 2 else z)
    if not np.all(np.isfinite(z)):
        raise DataError("scores hold NaN or infinite values")
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y))

    def nll(log_t):
        return -float(np.mean(_log_softmax(z / np.exp(log_t))[rows, y]))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


# --------------------------------------------------------------------------- model folders


def _model_scores(model_dir, images):
    """Raw (T = 1) scores of a deployed model on face crops.

    Logits for a CNN, ``log(p)`` for a classifier that outputs probabilities.
    """
    from ..runtime._model import load_model

    model = load_model(model_dir, cache=False)
    model.temperature = 1.0
    if model.kind == "cnn" and model.output_kind == "logits":
        outs = []
        for start in range(0, len(images), 256):
            crops = model.prepare(images[start:start + 256])
            x = crops.astype(np.float32) * np.float32(model.scale)
            x = (x - model.mean) / model.std
            x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
            out = model.session.run([model.output_name],
                                    {model.input_name: np.ascontiguousarray(x, np.float32)})[0]
            outs.append(np.asarray(out, dtype=np.float64).reshape(len(x), -1))
        return np.concatenate(outs)
    proba = np.concatenate([model.predict_proba(images[s:s + 256])
                            for s in range(0, len(images), 256)])
    return to_scores(proba.astype(np.float64), "probabilities")


def check_split(y_true_idx, *, check_fraction=0.5, seed=0):
    """Split sample indices into a fitting part and a checking part, stratified by class.

    Each class's indices are shuffled with ``numpy.random.default_rng(seed)`` and
    ``round(n_class * check_fraction)`` of them go to the checking part, so the
    split is the same on every run and both parts keep the class proportions.

    Parameters
    ----------
    y_true_idx : (N,) int ndarray
        Class index of each sample.
    check_fraction : float
        Share of each class held out for checking, in ``(0, 1)``.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    (ndarray, ndarray)
        Sorted indices of the fitting part and of the checking part.
    """
    if not 0 < float(check_fraction) < 1:
        raise ConfigError(f"check_fraction must be in (0, 1); got {check_fraction!r}")
    y = np.asarray(y_true_idx)
    rng = np.random.default_rng(seed)
    fit, check = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(len(idx) * float(check_fraction))
        check.append(idx[:k])
        fit.append(idx[k:])
    return np.sort(np.concatenate(fit)).astype(int), np.sort(np.concatenate(check)).astype(int)


def select_temperature(scores, y_true_idx, *, check_fraction=0.5, seed=0, n_bins=15) -> dict:
    """Fit a temperature on one part of held-out data and keep it only if it helps.

    The samples are split by :func:`check_split`; ``T`` is fitted on the fitting
    part by :func:`fit_temperature` (NLL) and kept only when it lowers the ECE
    of the checking part below its ECE at ``T = 1``. Otherwise ``T = 1`` is kept:
    minimising NLL does not always lower the top-1 calibration error.

    Parameters
    ----------
    scores : (N, K) ndarray
        Logits, or ``log(p)`` for a model that outputs probabilities (see
        :func:`to_scores`), at ``T = 1``.
    y_true_idx : (N,) int ndarray
    check_fraction : float
        Share of each class held out for checking.
    seed : int
        Seed of the split.
    n_bins : int
        ECE bins.

    Returns
    -------
    dict
        ``temperature`` (the kept one: the fitted ``T`` or 1.0), ``fitted_temperature``,
        ``kept``, ``n_samples``, ``n_fit``, ``n_check``, ``check_fraction``, ``seed``,
        ``n_bins``, and on the checking part ``ece_before``/``nll_before`` (at
        ``T = 1``) and ``ece_after``/``nll_after`` (at the fitted ``T``).

    Raises
    ------
    DataError
        Fewer than two samples, or a part left empty.
    """
    z = np.asarray(scores, dtype=float)
    y, _ = _check_inputs(y_true_idx, np.zeros_like(z) if z.ndim == 2 else z)
    fit_idx, check_idx = check_split(y, check_fraction=check_fraction, seed=seed)
    if len(fit_idx) == 0 or len(check_idx) == 0:
        raise DataError(f"{len(y)} images: a temperature needs images to fit on and others "
                        f"to check it on (at least 2, better hundreds)")
    t = fit_temperature(z[fit_idx], y[fit_idx])
    yc, zc = y[check_idx], z[check_idx]
    before, after = apply_temperature(zc, 1.0), apply_temperature(zc, t)
    ece_before = expected_calibration_error(yc, before, n_bins)
    ece_after = expected_calibration_error(yc, after, n_bins)
    kept = bool(ece_after < ece_before)
    return {
        "temperature": t if kept else 1.0,
        "fitted_temperature": t,
        "kept": kept,
        "n_samples": len(y),
        "n_fit": len(fit_idx),
        "n_check": len(check_idx),
        "check_fraction": float(check_fraction),
        "seed": int(seed),
        "n_bins": int(n_bins),
        "nll_before": negative_log_likelihood(yc, before),
        "nll_after": negative_log_likelihood(yc, after),
        "ece_before": ece_before,
        "ece_after": ece_after,
    }


def calibrate_model_dir(model_dir, dataset, *, split="val", n_bins=15, check_fraction=0.5,
                        seed=0) -> dict:
    """Fit a temperature on a dataset split, check it, and store the outcome in ``model.json``.

    The split's images are divided by :func:`select_temperature` (stratified by
    class, seeded): ``T`` is fitted on one part and kept only if it lowers the
    ECE of the other part; otherwise ``T = 1`` is stored. Only the
    ``temperature`` key and a ``calibration`` record saying what happened change;
    the ONNX file and its sha256 are untouched.

    Parameters
    ----------
    model_dir : str or Path
        A deployment folder (``model.onnx`` + ``model.json``).
    dataset : str, Path or Dataset
        Labelled face crops; the ``split`` rows are used (FER-2013's PublicTest
        is ``"val"``).
    split : str
        Never ``"test"``: the temperature must not see the test split.
    n_bins : int
        ECE bins.
    check_fraction, seed : float, int
        Share of each class held out to check the temperature, and the seed of
        that split.

    Returns
    -------
    dict
        The record stored under ``calibration`` (see :func:`select_temperature`),
        plus ``fitted_on`` (``"<dataset>:<split>"``) and ``method``.
    """
    from ..runtime._format import SIDECAR, read_sidecar

    if split == "test":
        raise ConfigError("fitting a temperature on the test split would leak; use split='val'")
    meta, onnx_path = read_sidecar(model_dir)
    if not hasattr(dataset, "labels"):
        from ..datasets import load_dataset

        dataset = load_dataset(dataset)
    part = dataset.split(split) if split else dataset
    if len(part) == 0:
        raise DataError(f"dataset {dataset.name!r} has no {split!r} split; temperature "
                        f"scaling needs held-out labelled data (e.g. FER-2013 PublicTest)")
    labels = list(meta["labels"])
    known = np.isin(part.labels, labels)
    if not known.all():
        part = part.subset(known)
    y = np.array([labels.index(lab) for lab in part.labels])
    scores = _model_scores(Path(onnx_path).parent, part.images)
    record = select_temperature(scores, y, check_fraction=check_fraction, seed=seed,
                                n_bins=n_bins)
    record["fitted_on"] = f"{dataset.name}:{split}"
    record["method"] = ("temperature scaling (Guo et al. 2017): NLL minimised over log T on "
                        "the fitting part; kept only if it lowers the ECE of the held-out "
                        "checking part (stratified by class, seeded), else T = 1")
    side = Path(onnx_path).parent / SIDECAR
    raw = json.loads(side.read_text())
    raw["temperature"] = record["temperature"]
    raw["calibration"] = record
    side.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    read_sidecar(side.parent)  # still verifies
    return record


__all__ = [
    "apply_temperature", "brier_score", "calibrate_model_dir", "calibration_bins",
    "calibration_summary", "check_split", "expected_calibration_error", "fit_temperature",
    "maximum_calibration_error", "negative_log_likelihood", "reliability_diagram",
    "select_temperature", "to_scores",
]
