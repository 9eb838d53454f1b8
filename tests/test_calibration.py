"""Calibration: ECE against a hand-computed case, temperature scaling, sidecar update."""

import json

import numpy as np
import pytest

from classicfer.evaluation.calibration import (
    apply_temperature,
    brier_score,
    calibrate_model_dir,
    calibration_bins,
    calibration_summary,
    check_split,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_diagram,
    select_temperature,
    to_scores,
)
from classicfer.exceptions import ClassicferError, ConfigError, DataError


def _hand_case():
    # Top-1 confidences 0.95 (right), 0.85 (wrong), 0.65 (right), 0.75 (wrong), 0.62 (wrong).
    proba = np.array([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.25, 0.75], [0.62, 0.38]])
    y = np.array([0, 1, 1, 0, 1])
    return y, proba


def test_ece_matches_hand_computation():
    y, proba = _hand_case()
    # 5 bins of width 0.2. Bin (0.8, 1.0]: 0.95 right, 0.85 wrong -> acc 0.5, conf 0.9, gap 0.4.
    # Bin (0.6, 0.8]: 0.65 right, 0.75 wrong, 0.62 wrong -> acc 1/3, conf 0.67333, gap 0.34.
    # ECE = 2/5 * 0.4 + 3/5 * 0.34 = 0.364
    assert expected_calibration_error(y, proba, n_bins=5) == pytest.approx(0.364, abs=1e-12)
    bins = calibration_bins(y, proba, n_bins=5)
    assert bins["count"] == [0, 0, 0, 3, 2]
    assert bins["accuracy"][3] == pytest.approx(1 / 3)
    assert bins["confidence"][4] == pytest.approx(0.9)
    assert bins["accuracy"][0] is None


def test_ece_is_zero_when_confidence_equals_accuracy():
    # 10 samples at confidence 0.7, 7 right: perfectly calibrated.
    proba = np.tile([0.7, 0.3], (10, 1))
    y = np.array([0] * 7 + [1] * 3)
    assert expected_calibration_error(y, proba) == pytest.approx(0.0, abs=1e-12)
    # One bin: ECE is |accuracy - mean confidence|.
    y2, p2 = _hand_case()
    assert expected_calibration_error(y2, p2, n_bins=1) == pytest.approx(
        abs(2 / 5 - np.mean([0.95, 0.85, 0.65, 0.75, 0.62])))


def test_nll_and_brier_hand_case():
    proba = np.array([[0.8, 0.2], [0.4, 0.6]])
    y = np.array([0, 0])
    assert negative_log_likelihood(y, proba) == pytest.approx(-(np.log(0.8) + np.log(0.4)) / 2)
    assert brier_score(y, proba) == pytest.approx(((0.04 + 0.04) + (0.36 + 0.36)) / 2)
    s = calibration_summary(y, proba, n_bins=10)
    assert s["accuracy"] == 0.5 and s["n_samples"] == 2
    json.dumps(s)  # JSON-ready


def _overconfident(n=4000, k=5, true_t=2.5, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z * true_t, y  # a model whose logits are true_t times too large


def test_fit_temperature_recovers_known_scale():
    logits, y = _overconfident(true_t=2.5)
    t = fit_temperature(logits, y)
    assert t == pytest.approx(2.5, rel=0.1)
    before = apply_temperature(logits, 1.0)
    after = apply_temperature(logits, t)
    assert np.array_equal(before.argmax(1), after.argmax(1))
    assert negative_log_likelihood(y, after) < negative_log_likelihood(y, before)
    assert expected_calibration_error(y, after) < expected_calibration_error(y, before) / 2


def test_fit_temperature_on_log_probabilities():
    logits, y = _overconfident(true_t=0.5, seed=1)  # under-confident: T < 1
    proba = apply_temperature(logits, 1.0)
    t = fit_temperature(to_scores(proba, "probabilities"), y)
    assert t == pytest.approx(0.5, rel=0.1)


def test_apply_temperature_rows_sum_to_one_and_reject_bad_t():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = apply_temperature(z, 2.0)
    assert np.allclose(p.sum(1), 1)
    assert np.allclose(p[0], np.exp([0.5, 1, 1.5]) / np.exp([0.5, 1, 1.5]).sum())
    for bad in (0, -1, float("nan")):
        with pytest.raises(ConfigError, match="temperature"):
            apply_temperature(z, bad)


@pytest.mark.parametrize("y, proba, match", [
    (np.array([0, 1]), np.array([0.5, 0.5]), "n_samples, n_classes"),
    (np.array([0, 2]), np.array([[0.5, 0.5], [0.5, 0.5]]), "class indices"),
    (np.array(["a", "b"]), np.array([[0.5, 0.5], [0.5, 0.5]]), "integer"),
    (np.array([0]), np.array([[0.5, 0.5], [0.5, 0.5]]), "y_true_idx"),
])
def test_bad_inputs_raise_clear_errors(y, proba, match):
    with pytest.raises(DataError, match=match):
        expected_calibration_error(y, proba)


def test_reliability_diagram_writes_png(tmp_path):
    logits, y = _overconfident(n=500)
    out = reliability_diagram(y, apply_temperature(logits), list("abcde"),
                              tmp_path / "sub" / "rel.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(DataError, match="labels"):
        reliability_diagram(y, apply_temperature(logits), ["a"], tmp_path / "x.png")


def _fake_dataset(n=300, seed=0):
    from classicfer.datasets._base import Dataset

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    labels = np.array(["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"])
    return Dataset(images=images, labels=labels[rng.integers(0, 7, n)], subjects=None,
                   splits=np.array(["val"] * (n // 2) + ["test"] * (n - n // 2)),
                   paths=np.array([f"img{i}.png" for i in range(n)]), name="fake")


def test_calibrate_model_dir_writes_only_temperature(tmp_path):
    from classicfer.export._testing import make_linear_model
    from classicfer.runtime import read_sidecar

    d = make_linear_model(tmp_path / "m")
    before, _ = read_sidecar(d)
    onnx_bytes = (d / "model.onnx").read_bytes()
    rec = calibrate_model_dir(d, _fake_dataset())
    after, _ = read_sidecar(d)  # checksum still verifies
    assert (d / "model.onnx").read_bytes() == onnx_bytes
    assert after["temperature"] == pytest.approx(rec["temperature"])
    assert after["calibration"] == json.loads(json.dumps(rec))
    assert rec["n_samples"] == 150 and rec["fitted_on"] == "fake:val"
    assert rec["n_fit"] + rec["n_check"] == 150 and abs(rec["n_fit"] - rec["n_check"]) <= 7
    assert rec["kept"] == (rec["ece_after"] < rec["ece_before"])
    assert rec["temperature"] == (rec["fitted_temperature"] if rec["kept"] else 1.0)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {"temperature", "calibration"}


def _top1_calibrated(n_per_level=100, k=3):
    """Scores whose top-1 confidence is exactly the accuracy at each of five levels, and
    whose true class, when the prediction is wrong, gets almost no probability.

    The NLL of the wrong rows is huge, so the NLL-fitted temperature is large: it flattens
    every confidence far below the accuracy and makes the ECE much worse.
    """
    scores, y = [], []
    for level, conf in enumerate((0.55, 0.65, 0.75, 0.85, 0.95)):
        for i in range(n_per_level):
            pred = (i + level) % k
            z = np.full(k, -30.0)
            z[pred] = 0.0
            z[(pred + 1) % k] = np.log((1 - conf) / conf)
            scores.append(z)
            y.append(pred if i < round(conf * n_per_level) else (pred + 2) % k)
    return np.array(scores), np.array(y)


def test_check_split_is_stratified_seeded_and_disjoint():
    y = np.repeat([0, 1, 2], [40, 20, 7])
    fit, check = check_split(y, seed=3)
    assert len(np.intersect1d(fit, check)) == 0 and len(fit) + len(check) == len(y)
    assert [int(np.sum(y[check] == c)) for c in (0, 1, 2)] == [20, 10, 4]  # round(7 / 2) = 4
    again = check_split(y, seed=3)
    assert np.array_equal(again[0], fit) and np.array_equal(again[1], check)
    assert not np.array_equal(check_split(y, seed=4)[1], check)
    with pytest.raises(ConfigError, match="check_fraction"):
        check_split(y, check_fraction=1.0)


def test_temperature_kept_when_it_lowers_the_held_out_ece():
    logits, y = _overconfident(n=2000, true_t=3.0)
    rec = select_temperature(logits, y, seed=0)
    assert rec["kept"] and rec["temperature"] == rec["fitted_temperature"]
    assert rec["temperature"] == pytest.approx(3.0, rel=0.15)
    assert rec["ece_after"] < rec["ece_before"] / 2
    assert rec["n_fit"] + rec["n_check"] == 2000
    # the figures are those of the held-out part, at T = 1 and at the fitted T
    _, check = check_split(y, seed=0)
    assert rec["ece_before"] == pytest.approx(
        expected_calibration_error(y[check], apply_temperature(logits[check], 1.0)))
    assert rec["ece_after"] == pytest.approx(expected_calibration_error(
        y[check], apply_temperature(logits[check], rec["fitted_temperature"])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temperature_not_kept_when_it_raises_the_held_out_ece(seed):
    scores, y = _top1_calibrated()
    assert expected_calibration_error(y, apply_temperature(scores)) == pytest.approx(0, abs=1e-9)
    rec = select_temperature(scores, y, seed=seed)
    # NLL improves a lot on the held-out part, ECE gets worse: T = 1 is kept
    assert rec["fitted_temperature"] > 2 and rec["nll_after"] < rec["nll_before"]
    assert rec["ece_after"] > rec["ece_before"]
    assert not rec["kept"] and rec["temperature"] == 1.0


def test_select_temperature_needs_two_parts():
    with pytest.raises(DataError, match="to check it on"):
        select_temperature(np.array([[1.0, 0.0]]), np.array([0]))


@pytest.mark.parametrize("kind", ["kept", "not kept"])
def test_calibrate_model_dir_stores_the_outcome(tmp_path, monkeypatch, kind):
    import classicfer.evaluation.calibration as cal
    from classicfer.export._testing import make_linear_model
    from classicfer.runtime import read_sidecar

    scores, y = _overconfident(n=600, k=7, true_t=3.0) if kind == "kept" else \
        _top1_calibrated(n_per_level=40, k=7)
    labels = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    ds = _fake_dataset(n=2 * len(y))
    ds.labels[: len(y)] = np.array(labels)[y]  # the val rows
    monkeypatch.setattr(cal, "_model_scores", lambda model_dir, images: scores)
    d = make_linear_model(tmp_path / "m")
    rec = calibrate_model_dir(d, ds)
    meta, _ = read_sidecar(d)
    assert meta["calibration"]["kept"] is (kind == "kept")
    if kind == "kept":
        assert meta["temperature"] == pytest.approx(rec["fitted_temperature"]) != 1.0
    else:
        assert meta["temperature"] == 1.0 and rec["fitted_temperature"] > 2


def test_calibrate_model_dir_refuses_test_split_and_missing_split(tmp_path):
    from classicfer.export._testing import make_linear_model

    d = make_linear_model(tmp_path / "m")
    with pytest.raises(ConfigError, match="leak"):
        calibrate_model_dir(d, _fake_dataset(), split="test")
    ds = _fake_dataset()
    ds.splits[:] = ""
    with pytest.raises(ClassicferError, match="no 'val' split"):
        calibrate_model_dir(d, ds)
