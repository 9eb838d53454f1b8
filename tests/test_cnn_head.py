"""The small CNN head: training, resume, export parity, sidecar checksum, CLI.

Skipped cleanly when torch is not installed (``pip install .[cnn]``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classicfer.exceptions import ConfigError, DataError, ModelError
from classicfer.export import cnn_parity, export_model, onnx_session
from classicfer.runtime._format import read_sidecar


def test_package_import_does_not_import_torch():
    code = ("import sys, classicfer.cnn_head, classicfer.commands.train_cnn; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


torch = pytest.importorskip("torch")

from classicfer.cnn_head.model import FerNet, count_flops, count_params  # noqa: E402 (torch)
from classicfer.cnn_head.train import augment_batch, fit  # noqa: E402 (torch)

TINY = {"widths": (4, 8), "attention": True, "dropout": 0.1}


def _synthetic(n=48, classes=3, seed=0):
    """Learnable toy crops: class k has a bright square in a class-specific place."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, 8 + 10 * k:18 + 10 * k, 8:40] = 220
    return x, y


def _textures(n=96, seed=0):
    """Texture classes the tiny network learns in a few epochs: stripes one way, the other,
    none (class indices 0, 1, 2).
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 48, 48)).astype(np.uint8)
    r = (120 * ((np.arange(48) // 4) % 2)).astype(np.uint8)
    x[y == 0] += r[:, None]
    x[y == 1] += r[None, :]
    return x, y


def test_model_shapes_params_and_flops():
    m = FerNet(n_classes=7, widths=(16, 32, 64, 128), attention=True)
    assert m(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    no_se = FerNet(n_classes=7, widths=(16, 32, 64, 128), attention=False)
    assert count_params(m) > count_params(no_se) > 0
    # stem conv alone: 48*48 outputs * 16 channels * 9 taps
    assert count_flops(m) > 48 * 48 * 16 * 9
    m.replace_head(5)
    assert m(torch.zeros(1, 1, 48, 48)).shape == (1, 5)


def test_flip_only_augmentation_is_an_exact_mirror():
    x = torch.rand(6, 1, 48, 48)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, gen, {"rotate": 0, "zoom": 0, "shift": 0, "flip": True, "erase": 0})
    for a, b in zip(x, out, strict=True):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(torch.flip(a, [2]), b,
                                                                 atol=1e-5)
    full = augment_batch(x, gen, {"rotate": 15, "zoom": 0.15, "shift": 0.1, "flip": True,
                                  "erase": 0.5})
    assert full.shape == x.shape and torch.isfinite(full).all()


def test_one_epoch_learns_and_writes_checkpoints(tmp_path):
    x, y = _synthetic()
    res = fit(x, y, x, y, classes=["a", "b", "c"], epochs=1, out_dir=tmp_path, batch_size=16,
              lr=1e-2, model_config=TINY, threads=1, progress=False, log=lambda m: None)
    assert len(res["history"]) == 1 and res["best_epoch"] == 1
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    # the recorded validation scores are those of the network saved in best.pt
    from classicfer.cnn_head.train import load_checkpoint, predict_logits, to_tensor

    net, ck = load_checkpoint(tmp_path / "best.pt")
    logits = predict_logits(net, to_tensor(x), ck["mean"], ck["std"])
    rec = res["history"][0]
    loss = float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)))
    assert loss == pytest.approx(rec["val_loss"], rel=1e-5)
    acc = float((logits.argmax(1).numpy() == y).mean())
    assert res["best_val_acc"] == pytest.approx(acc) == rec["val_acc"] == ck["val_acc"]


def test_cnn_classifier_learns_and_runs_through_the_harness(tmp_path, tiny_ckplus48):
    from sklearn.base import clone

    from classicfer.cnn_head.estimator import CNNClassifier
    from classicfer.datasets import load_dataset
    from classicfer.evaluation import evaluate

    x, y = _textures()
    names = np.array(["a", "b", "c"])[y]
    est = CNNClassifier(epochs=6, lr=1e-2, batch_size=16, widths=(4, 8), members=2, seed=1)
    est.fit(x, names)
    assert list(est.classes_) == ["a", "b", "c"] and len(est.models_) == 2
    proba = est.predict_proba(x)
    assert proba.shape == (96, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (est.predict(x) == names).mean() >= 0.9  # the toy classes are learnt
    # fine-tuning a checkpoint of other classes (a new head) on each fold of the harness
    fit(x, y, classes=["a", "b", "c"], epochs=1, out_dir=tmp_path / "ck", batch_size=16,
        model_config=TINY, threads=1, progress=False, log=lambda m: None)
    ft = CNNClassifier(init=str(tmp_path / "ck" / "best.pt"), epochs=2, batch_size=16)
    ds = load_dataset(tiny_ckplus48)
    out = evaluate(clone(ft), ds, "subject-kfold", folds=3, name="cnn-ft")
    assert len(out.folds) == 3 and len(out.y_pred) == len(ds.labels)
    assert set(out.y_pred) <= set(ds.classes) and out.proba.shape == (len(ds.labels), 7)
    with pytest.raises(DataError, match="same size|shape"):
        CNNClassifier(epochs=1).fit(np.zeros((4, 8, 8, 3), np.uint8), ["a", "b", "a", "b"])


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    x, y = _synthetic()
    kw = {"classes": ["a", "b", "c"], "epochs": 2, "batch_size": 16, "model_config": TINY,
          "threads": 1, "progress": False, "log": lambda m: None, "seed": 3}
    full = fit(x, y, x, y, out_dir=tmp_path / "full", **kw)
    fit(x, y, x, y, out_dir=tmp_path / "split", stop_after=1, **kw)
    ck = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    assert ck["epoch"] == 0
    resumed = fit(x, y, x, y, out_dir=tmp_path / "split", resume=True, **kw)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=False)["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    assert full["history"][1]["train_loss"] == pytest.approx(
        resumed["history"][1]["train_loss"], abs=1e-5)


def test_resume_refuses_a_different_configuration(tmp_path):
    x, y = _synthetic()
    kw = {"classes": ["a", "b", "c"], "batch_size": 16, "threads": 1, "progress": False,
              "log": lambda m: None, "model_config": TINY}
    fit(x, y, x, y, out_dir=tmp_path, epochs=2, stop_after=1, **kw)
    with pytest.raises(ConfigError, match="different"):
        fit(x, y, x, y, out_dir=tmp_path, epochs=3, resume=True, **kw)
    with pytest.raises(ConfigError, match="no checkpoint"):
        fit(x, y, x, y, out_dir=tmp_path / "none", epochs=2, resume=True, **kw)


def test_grow_copies_the_smaller_networks_layers(tmp_path):
    x, y = _synthetic()
    kw = {"classes": ["a", "b", "c"], "batch_size": 16, "threads": 1, "progress": False,
          "log": lambda m: None}
    small = fit(x, y, x, y, epochs=1, model_config=TINY, **kw)["model"]
    state = {k: v.clone() for k, v in small.state_dict().items()}
    grown = fit(x, y, x, y, epochs=1, init_state=state, grow=True, lr=1e-9,
                model_config=dict(TINY, widths=(4, 8, 16)), **kw)["model"]
    assert grown.config["widths"] == (4, 8, 16)
    # with a negligible learning rate the copied stem is (almost) unchanged
    torch.testing.assert_close(grown.state_dict()["features.0.weight"],
                               state["features.0.weight"], atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="share no layer"):
        fit(x, y, x, y, epochs=1, init_state={"other.weight": torch.zeros(3)}, grow=True,
            model_config=TINY, **kw)
    with pytest.raises(ConfigError, match="do not match"):
        fit(x, y, x, y, epochs=1, init_state=state, model_config=dict(TINY, widths=(4, 8, 16)),
            **kw)


def test_swa_returns_the_average_of_the_epoch_end_weights(tmp_path):
    x, y = _synthetic()
    kw = {"classes": ["a", "b", "c"], "epochs": 3, "batch_size": 16, "model_config": TINY,
          "threads": 1, "progress": False, "log": lambda m: None, "swa": True, "lr": 1e-2}
    ends = []
    for step in range(3):  # one epoch per call, resumed: the end-of-cycle weights each time
        res = fit(x, y, out_dir=tmp_path, stop_after=1, resume=step > 0, **kw)
        ends.append(torch.load(tmp_path / "last.pt", weights_only=False)["model"])
    assert [r["swa_models"] for r in res["history"]] == [1, 2, 3]
    avg = res["model"].state_dict()  # no validation split: the last average is kept
    for k in ("features.0.weight", "head.weight", "head.bias"):
        torch.testing.assert_close(avg[k], sum(e[k] for e in ends) / 3, atol=1e-6, rtol=0)
    assert not torch.allclose(avg["head.weight"], ends[-1]["head.weight"])
    # the average's batch-norm statistics were recomputed, not averaged
    assert not torch.allclose(avg["features.1.running_mean"],
                              sum(e["features.1.running_mean"] for e in ends) / 3)
    with pytest.raises(ConfigError, match="with --swa"):
        fit(x, y, out_dir=tmp_path, resume=True, **dict(kw, swa=False))


def test_distillation_follows_the_teacher_not_the_labels(tmp_path):
    from classicfer.cnn_head.train import predict_logits, to_tensor

    x, y = _textures()
    shifted = (y + 1) % 3  # a teacher that is confidently "wrong" in a consistent way
    teacher = np.eye(3)[shifted] * 8.0
    kw = {"classes": ["a", "b", "c"], "epochs": 6, "batch_size": 16, "model_config": TINY,
          "threads": 1, "progress": False, "log": lambda m: None, "lr": 1e-2, "seed": 1}
    student = fit(x, y, teacher_logits=teacher, distill=1.0, out_dir=tmp_path, **kw)
    plain = fit(x, y, **kw)

    def pred(res):
        return predict_logits(res["model"], to_tensor(x), res["mean"], res["std"]).argmax(1).numpy()

    assert (pred(student) == shifted).mean() > 0.9
    assert (pred(plain) == y).mean() > 0.9
    assert torch.load(tmp_path / "best.pt", weights_only=False)["distill"] == [1.0, 2.0]
    with pytest.raises(ConfigError, match="other distillation"):
        fit(x, y, out_dir=tmp_path, resume=True, **kw)
    with pytest.raises(ConfigError, match="needs teacher_logits"):
        fit(x, y, distill=0.5, **kw)
    with pytest.raises(DataError, match="teacher_logits of shape"):
        fit(x, y, distill=0.5, teacher_logits=teacher[:10], **kw)


def test_a_config_object_and_keywords_train_the_same_network():
    from classicfer.cnn_head.train import TrainConfig

    x, y = _synthetic(n=32)
    quiet = {"classes": ["a", "b", "c"], "progress": False, "log": lambda m: None}
    kw = {"epochs": 1, "batch_size": 16, "lr": 1e-2, "model_config": TINY, "threads": 1,
          "seed": 2, "swa": True}
    by_keywords = fit(x, y, x, y, **kw, **quiet)
    # a keyword replaces the config's field (here the seed)
    by_config = fit(x, y, x, y, config=TrainConfig(**dict(kw, seed=5)), seed=2, **quiet)
    a, b = by_keywords["model"].state_dict(), by_config["model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert by_keywords["history"][0]["train_loss"] == by_config["history"][0]["train_loss"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fit(x, y, epoch=1, **quiet)


def test_checkpoints_hold_plain_data_and_load_without_unpickling_objects(tmp_path):
    from classicfer.cnn_head.train import load_checkpoint

    x, y = _synthetic(n=32)
    # numpy scalars among the settings and the class names still give plain-data files
    kw = {"classes": np.array(["a", "b", "c"]), "epochs": np.int64(2), "batch_size": 16,
          "lr": np.float64(1e-2), "model_config": dict(TINY, widths=tuple(np.array([4, 8]))),
          "threads": 1, "progress": False, "log": lambda m: None, "swa": True}
    fit(x, y, x, y, out_dir=tmp_path, stop_after=1, **kw)
    for name in ("best.pt", "last.pt"):
        assert torch.load(tmp_path / name, weights_only=True)["classes"] == ["a", "b", "c"]
    resumed = fit(x, y, x, y, out_dir=tmp_path, resume=True, **kw)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]
    # any other object in a checkpoint is refused, not unpickled
    ck = torch.load(tmp_path / "best.pt", weights_only=True)
    torch.save(dict(ck, mean=np.float64(ck["mean"])), tmp_path / "numpy.pt")
    with pytest.raises(ModelError, match="other than tensors and plain data.*numpy"):
        load_checkpoint(tmp_path / "numpy.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints-shipped" / "fer2013-cnn" / "best.pt"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="the shipped checkpoint is absent")
def test_the_shipped_checkpoint_loads_as_plain_data():
    from classicfer.cnn_head.train import load_checkpoint

    net, ck = load_checkpoint(SHIPPED)
    assert len(ck["classes"]) == 7 and not net.training
    assert net(torch.zeros(1, 1, 48, 48)).shape == (1, 7)


def _trained_tiny(tmp_path):
    x, y = _synthetic()
    res = fit(x, y, x, y, classes=["angry", "happy", "sad"], epochs=1, batch_size=16,
              model_config=TINY, threads=1, progress=False, log=lambda m: None)
    out = export_model(res["model"], tmp_path / "model", classes=res["classes"],
                       mean=res["mean"], std=res["std"], name="tiny-cnn")
    return res, out, x


def test_export_parity_dynamic_batch_and_sidecar(tmp_path):
    res, out, x = _trained_tiny(tmp_path)
    assert cnn_parity(res["model"], out, x[:7])["max_abs_diff"] <= 1e-4
    assert cnn_parity(res["model"], out, n=1)["max_abs_diff"] <= 1e-4  # batch 1, random pixels
    meta, _path = read_sidecar(out)
    assert meta["kind"] == "cnn" and meta["labels"] == ["angry", "happy", "sad"]
    assert meta["input"]["size"] == [48, 48] and meta["input"]["color"] == "gray"
    assert meta["input"]["scale"] == pytest.approx(1 / 255)
    assert meta["input"]["mean"] == pytest.approx(res["mean"])
    assert meta["onnx"]["output"] == "logits" and meta["onnx"]["output_kind"] == "logits"
    sess, _ = onnx_session(out)
    assert sess.get_outputs()[0].name == "logits"
    assert sess.get_inputs()[0].shape[0] not in (1, 7)  # symbolic batch axis


def test_flip_average_export_is_mirror_invariant_and_matches_torch(tmp_path):
    from classicfer.export import FlipAverage
    from classicfer.runtime import load_model

    res, _, x = _trained_tiny(tmp_path)
    out = export_model(res["model"], tmp_path / "tta", classes=res["classes"],
                       mean=res["mean"], std=res["std"], name="tiny-tta", tta_flip=True)
    wrapped = FlipAverage(res["model"]).eval()
    assert cnn_parity(wrapped, out, x[:5])["max_abs_diff"] <= 1e-4
    assert cnn_parity(wrapped, out, n=1)["max_abs_diff"] <= 1e-4
    meta, _ = read_sidecar(out)
    assert meta["test_time"] == "flip-average"
    model = load_model(out)
    p = model.predict_proba(x[:6])
    np.testing.assert_allclose(model.predict_proba(np.ascontiguousarray(x[:6, :, ::-1])), p,
                               atol=1e-5)
    # it is the mean of the two logits of the bare network
    with torch.no_grad():
        xt = (torch.from_numpy(x[:3, None].astype(np.float32) / 255) - res["mean"]) / res["std"]
        want = (res["model"](xt) + res["model"](torch.flip(xt, dims=[3]))) / 2
    np.testing.assert_allclose(wrapped(xt).detach().numpy(), want.numpy(), atol=1e-5)


def test_sidecar_checksum_is_verified_on_load(tmp_path):
    _, out, _ = _trained_tiny(tmp_path)
    onnx_file = out / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        onnx_session(out)


def test_cli_train_cnn_one_epoch(tiny_fer_folder, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--epochs", "1",
                                 "--out", str(out), "--widths", "4,8", "--threads", "1",
                                 "--batch-size", "8", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "best epoch 1" in r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["onnx_parity_max_abs_diff"] <= 1e-4
    # the metric names of every result, scored on the test split (PrivateTest)
    assert metrics["split"] == "test" and metrics["n"] == 14
    assert set(metrics["per_class"]) == {"angry", "disgust", "fear", "happy", "neutral",
                                         "sad", "surprise"}
    meta, _ = read_sidecar(out / "model")
    assert len(meta["labels"]) == 7 and meta["training"]["epochs"] == 1
    assert meta["metrics"]["accuracy"] == metrics["accuracy"]
    assert {"balanced_accuracy", "macro_f1"} <= set(meta["metrics"])
    run = json.loads((out / "run.json").read_text())
    assert len(run["dataset"]["manifest_sha256"]) == 64 and run["seed"] == 0
    assert "scikit-learn" in run["versions"] and "commit" in run["git"]
    assert (out / "checkpoints" / "last.pt").is_file()
    # continue with weight averaging from that run's weights
    swa = tmp_path / "swa"
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--epochs", "2",
                                 "--out", str(swa), "--threads", "1", "--batch-size", "8",
                                 "--swa", "--init-from", str(out / "checkpoints" / "best.pt"),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    hist = json.loads((swa / "model" / "model.json").read_text())["training"]["history"]
    assert [h["swa_models"] for h in hist] == [1, 2]


def test_cli_train_cnn_distils_from_teachers(tiny_fer_folder, tiny_ckplus48, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    common = ["--epochs", "1", "--widths", "4,8", "--threads", "1", "--batch-size", "8",
              "--quiet"]
    run = CliRunner().invoke
    assert run(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--out",
                     str(tmp_path / "t"), *common]).exit_code == 0
    teacher = str(tmp_path / "t" / "checkpoints" / "best.pt")
    r = run(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--out", str(tmp_path / "s"),
                  "--teacher", teacher, "--teacher", teacher, "--distill", "0.7", *common])
    assert r.exit_code == 0, r.output
    meta, _ = read_sidecar(tmp_path / "s" / "model")
    assert meta["training"]["distillation"] == {"teachers": [teacher, teacher], "weight": 0.7,
                                                "temperature": 2.0}
    assert torch.load(tmp_path / "s" / "checkpoints" / "best.pt",
                      weights_only=False)["distill"] == [0.7, 2.0]
    # a teacher of other classes, or distillation settings without a teacher: one-line errors
    for extra, msg in ([["--teacher", teacher], "classes"], [["--distill", "0.3"], "--teacher"]):
        r = run(cli, ["train-cnn", "--data", str(tiny_ckplus48), "--out", str(tmp_path / "x"),
                      *extra, *common])
        assert r.exit_code == 1 and "Error:" in r.output and msg in r.output, r.output
        assert "Traceback" not in r.output


def test_cli_bad_widths_is_one_line_error(tiny_fer_folder, tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--epochs", "1",
                                 "--out", str(tmp_path), "--widths", "a,b"])
    assert r.exit_code == 1
    assert "Error:" in r.output and "--widths" in r.output and "Traceback" not in r.output


def test_cli_transfer_to_other_classes_gets_a_fresh_head(tiny_fer_folder, tiny_ckplus48,
                                                         tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    common = ["--epochs", "1", "--widths", "4,8", "--threads", "1", "--batch-size", "8",
              "--quiet"]
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder),
                                 "--out", str(tmp_path / "fer"), *common])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_ckplus48),
                                 "--out", str(tmp_path / "ck"), "--init-from",
                                 str(tmp_path / "fer" / "checkpoints" / "best.pt"), *common])
    assert r.exit_code == 0, r.output
    meta, _ = read_sidecar(tmp_path / "ck" / "model")
    assert "contempt" in meta["labels"] and "neutral" not in meta["labels"]
    fer = torch.load(tmp_path / "fer" / "checkpoints" / "best.pt", weights_only=False)
    ck = torch.load(tmp_path / "ck" / "checkpoints" / "best.pt", weights_only=False)
    assert ck["mean"] == pytest.approx(fer["mean"])  # FER normalisation kept
    assert ck["classes"] != fer["classes"]


@pytest.mark.parametrize("params, name", [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"),
                                          ({"members": 0}, "members"),
                                          ({"tta_flip": "yes"}, "tta_flip")])
def test_cnn_classifier_checks_its_parameters_before_training(params, name, monkeypatch):
    """CNNClassifier's parameters are checked against its ``_parameter_constraints`` when
    ``fit`` starts, before any network is built.
    """
    from sklearn.utils._param_validation import InvalidParameterError

    from classicfer.cnn_head import estimator, train

    def no_training(*a, **k):
        raise AssertionError("training started with an invalid parameter")

    monkeypatch.setattr(train, "fit", no_training)
    x = np.zeros((4, 16, 16), np.uint8)
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of CNNClassifier"):
        estimator.CNNClassifier(**params).fit(x, ["happy", "sad"] * 2)


def test_progress_bar_reaches_the_step_count(capsys):
    """A short epoch's bar shows its finished count (it used to stay at 0/N)."""
    import numpy as np

    from classicfer.cnn_head.train import fit

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (56, 48, 48), dtype=np.uint8)
    y = np.arange(56) % 2
    fit(x, y, classes=["happy", "sad"], epochs=1, batch_size=8, progress=True,
        log=lambda m: None, threads=1, model_config={"widths": (4, 8)})
    assert "7/7" in capsys.readouterr().err
