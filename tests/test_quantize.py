"""Int8 quantisation of CNN model folders: ``quantize_model`` and ``classicfer quantize``.

A random two-layer CNN (``make_conv_model``, 32x32 input: the 48x48 crops of the tiny
FER-2013 tree are resized by the runtime) is quantised with calibration crops of the
train split and judged on the val split. No torch needed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_tiny_ckplus48, make_tiny_fer_folder

from classicfer.cli import cli
from classicfer.datasets import load_dataset
from classicfer.exceptions import ConfigError, DataError, ModelError
from classicfer.export import _quantize as quantize_mod
from classicfer.export import quantization_splits, quantize_model, write_model_dir
from classicfer.export._testing import make_conv_model, make_linear_model
from classicfer.runtime import bundled_models_dir, load_model
from classicfer.runtime._format import read_model_files, read_sidecar

pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    """The tiny FER-2013 tree: 28 train, 14 val (PublicTest), 14 test crops."""
    return make_tiny_fer_folder(tmp_path_factory.mktemp("data") / "fer2013")


@pytest.fixture(scope="module")
def splits(fer):
    return quantization_splits(load_dataset(fer, cache=False))


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    return make_conv_model(tmp_path_factory.mktemp("src") / "conv")


@pytest.fixture(scope="module")
def quantized(conv, splits, tmp_path_factory):
    """``(report, out folder, source digest before)`` of one quantisation run."""
    before = read_model_files(conv).digest
    out = tmp_path_factory.mktemp("q") / "conv-int8"
    calibration, check = splits
    # a random model on 14 crops: one flipped crop is 7 points, so the rule is tested below
    r = quantize_model(conv, out, calibration=calibration, check=check, max_drop=0.5,
                       dataset="fer2013")
    return r, out, before


def _classical_folder(path):
    """A folder whose sidecar says classical (the graph is the linear test model's)."""
    make_linear_model(path)
    files = read_model_files(path)
    meta = dict(files.sidecar, kind="classical", features={"spec": "hog"})
    return write_model_dir(path, files.onnx_bytes, meta)


def _val_accuracy(model, check) -> float:
    crops, labels = check
    p = model.predict_proba(crops)
    return float((np.asarray(model.labels)[p.argmax(1)] == labels).mean())


def test_quantized_folder_runs_agrees_and_is_smaller(quantized, conv, splits):
    import onnx

    r, out, before = quantized
    int8, fp32 = load_model(out, cache=False), load_model(conv, cache=False)
    assert int8.kind == "cnn" and int8.labels == fp32.labels and int8.name == "conv-test-int8"
    assert r["out"] == str(out) and r["name"] == "conv-test-int8"
    crops = list(splits[1][0]) + list(
        np.random.default_rng(1).integers(0, 256, (30, 48, 48), dtype=np.uint8))
    p8, p32 = int8.predict_proba(crops), fp32.predict_proba(crops)
    assert (p8.argmax(1) == p32.argmax(1)).mean() >= 0.9
    assert len(set(p32.argmax(1))) > 1  # the agreement is not that of a constant model
    ops = {n.op_type for n in onnx.load(out / "model.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert (out / "model.onnx").stat().st_size < 0.5 * (conv / "model.onnx").stat().st_size
    assert r["bytes_int8"] == (out / "model.onnx").stat().st_size
    assert (out / "model_card.md").is_file()
    assert read_model_files(conv).digest == before  # the source is untouched
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no staging folder left


def test_sidecar_records_the_measured_numbers(quantized, conv, splits):
    import onnxruntime

    r, out, _ = quantized
    meta, _ = read_sidecar(out)  # schema-valid, checksum of the int8 graph
    q = meta["quantization"]
    want32 = _val_accuracy(load_model(conv, cache=False), splits[1])
    want8 = _val_accuracy(load_model(out, cache=False), splits[1])
    assert q["accuracy_fp32"] == pytest.approx(want32) == r["accuracy_fp32"]
    assert q["accuracy_int8"] == pytest.approx(want8) == r["accuracy_int8"]
    assert q["drop"] == pytest.approx(want32 - want8) and q["max_drop"] == 0.5
    assert q["calibration"] == {"split": "train", "n": 28, "seed": 0}  # 28 < 512: all
    assert q["check"] == {"split": "val", "n": 14} and q["dataset"] == "fer2013"
    assert "QDQ" in q["method"] and q["onnxruntime"] == onnxruntime.__version__
    source = read_sidecar(conv)[0]
    assert q["source"] == {"name": "conv-test", "onnx_sha256": source["onnx"]["sha256"],
                           "metrics": source["metrics"]}
    assert meta["metrics"] == {"accuracy": q["accuracy_int8"], "split": "val",
                               "n_samples": 14, "dataset": "fer2013"}
    assert meta["input"] == source["input"] and meta["labels"] == source["labels"]
    assert "int8, quantised from `conv-test`" in (out / "model_card.md").read_text()


def test_the_schema_checks_the_quantization_record(quantized, tmp_path):
    _, out, _ = quantized
    files = read_model_files(out)
    meta = json.loads(files.sidecar_bytes)
    meta["quantization"]["accuracy_int8"] = 1.5
    with pytest.raises(ModelError, match="quantization.accuracy_int8 must be a number between"):
        write_model_dir(tmp_path / "bad", files.onnx_bytes, meta)


def test_calibration_draw_is_seeded():
    crops = [np.full((4, 4), i, np.uint8) for i in range(50)]

    def drawn(seed):
        return [int(c[0, 0]) for c in quantize_mod._calibration_sample(crops, 8, seed)]

    assert drawn(0) == drawn(0) and len(set(drawn(0))) == 8
    assert drawn(0) != drawn(1)
    with pytest.raises(ConfigError, match="n_calibration"):
        quantize_mod._calibration_sample(crops, 0, 0)


def test_a_drop_over_the_limit_is_refused_and_writes_nothing(conv, splits, tmp_path,
                                                             monkeypatch):
    real = quantize_mod.accuracy

    def worse_int8(model, crops, labels, **kw):  # int8 scored 10 points below its real score
        acc = real(model, crops, labels, **kw)
        return acc - 0.1 if kw.get("desc") == "score int8" else acc

    monkeypatch.setattr(quantize_mod, "accuracy", worse_int8)
    out = tmp_path / "made" / "for" / "q"
    calibration, check = splits
    with pytest.raises(ModelError, match=r"int8 model refused: .* over the 0\.50 allowed; "
                                         r"nothing written") as e:
        quantize_model(conv, out, calibration=calibration, check=check, n_calibration=8)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []  # no folder, no staging folder, no parents


def test_bad_requests_fail_before_any_work(conv, splits, tmp_path):
    calibration, check = splits
    kw = {"calibration": calibration, "check": check}
    with pytest.raises(ConfigError, match="max_drop must be between 0 and 1"):
        quantize_model(conv, tmp_path / "q", max_drop=-0.01, **kw)
    with pytest.raises(ModelError, match="a classical model .* quantize takes a CNN"):
        quantize_model(_classical_folder(tmp_path / "cls"), tmp_path / "q", **kw)
    with pytest.raises(ConfigError, match="is the source model's folder"):
        quantize_model(conv, conv, **kw)
    with pytest.raises(ConfigError, match="bundled models' folder"):
        quantize_model(conv, bundled_models_dir() / "conv-int8", **kw)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not empty; choose another --out or pass --force"):
        quantize_model(conv, tmp_path / "full", **kw)
    with pytest.raises(DataError, match="no check crop has a label the model predicts"):
        quantize_model(conv, tmp_path / "q", calibration=calibration,
                       check=(check[0][:3], np.array(["contempt"] * 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cls", "full"]
    assert (tmp_path / "full" / "x.txt").read_text() == "keep"


def test_a_dataset_without_a_val_split_is_refused(tmp_path):
    ds = load_dataset(make_tiny_ckplus48(tmp_path / "ck"), cache=False)
    with pytest.raises(DataError, match="no val split; .* never on the test split"):
        quantization_splits(ds)


def _run(*args):
    return CliRunner().invoke(cli, ["quantize", *map(str, args)])


def test_cli_end_to_end(conv, fer, tmp_path):
    out = tmp_path / "int8"
    r = _run(conv, "--data", fer, "--out", out, "--calibration", 16, "--max-drop", 50,
             "--seed", 3, "-q")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("accuracy on fer2013 val (14 images): float32 ")
    assert "int8" in lines[0] and "at most 50.00 allowed" in lines[0]
    assert lines[1].startswith("size: 0.08 MB -> 0.02 MB (16 calibration crops")
    assert lines[-1] == f"wrote {out} (conv-test-int8)"
    q = read_sidecar(out)[0]["quantization"]
    assert q["calibration"] == {"split": "train", "n": 16, "seed": 3} and q["max_drop"] == 0.5
    assert load_model(out, cache=False).predict_proba(np.zeros((48, 48), np.uint8)).shape == (1, 7)
    # the folder is now taken: refused without --force, replaced with it
    r = _run(conv, "--data", fer, "--out", out, "-q")
    assert r.exit_code == 1 and "not empty" in r.output and len(r.output.splitlines()) == 1
    r = _run(conv, "--data", fer, "--out", out, "--max-drop", 50, "--name", "mine", "--force",
             "-q")
    assert r.exit_code == 0, r.output
    assert read_sidecar(out)[0]["name"] == "mine"


def test_cli_refusals_are_one_line(conv, fer, tmp_path, monkeypatch):
    ck = make_tiny_ckplus48(tmp_path / "ck")
    cases = [
        ([_classical_folder(tmp_path / "cls"), "--data", fer], 1, "a classical model"),
        ([conv, "--data", ck], 1, "no val split"),
        (["fer2013-cnn", "--data", ck], 1, "no val split"),  # a bundled name resolves
        ([conv, "--data", fer, "--max-drop", -1], 2, "not in the range"),
        ([tmp_path / "nowhere", "--data", fer], 1, "no such model folder"),
    ]
    for args, code, text in cases:
        r = _run(*args, "--out", tmp_path / "q", "-q")
        assert r.exit_code == code, (args, r.output)
        assert text in r.output and "Traceback" not in r.output
        if code == 1:
            assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    monkeypatch.setattr(quantize_mod, "accuracy", lambda m, *a, **kw: 0.5 if
                        kw.get("desc") == "score int8" else 0.9)
    r = _run(conv, "--data", fer, "--calibration", 8, "--out", tmp_path / "q", "-q")
    assert r.exit_code == 1 and "int8 model refused" in r.output and "40.00 points" in r.output
    assert not (tmp_path / "q").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
