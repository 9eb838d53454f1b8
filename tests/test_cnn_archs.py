"""The CNN head's network families (vgg, resnet, mobilenet), input sizes and soft targets.

Every family trains a step, exports to ONNX with parity, fits the kiosk budget and is
rebuilt from its checkpoint; ``--targets votes`` trains FER+ on the annotators' vote
distributions. Skipped cleanly when torch is not installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.cnn_head import ARCHITECTURES
from classicfer.datasets import Dataset
from classicfer.exceptions import ConfigError
from classicfer.export import cnn_parity
from classicfer.runtime._format import read_sidecar

torch = pytest.importorskip("torch")

from classicfer.cnn_head import train as train_mod  # noqa: E402 (imports torch)
from classicfer.cnn_head.model import (  # noqa: E402 (imports torch)
    ARCHS,
    FerNet,
    MobileFerNet,
    ResFerNet,
    arch_config,
    build_model,
    count_params,
)
from classicfer.cnn_head.train import fit, load_checkpoint, train_on_dataset  # noqa: E402 (torch)

QUIET = {"threads": 1, "progress": False, "log": lambda m: None}
TINY_CLI = ["--epochs", "1", "--threads", "1", "--batch-size", "8", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _random_dataset(side: int, n: int = 16, seed: int = 0) -> Dataset:
    """``n`` random ``side`` x ``side`` crops of three classes: 12 train, 2 val, 2 test."""
    rng = np.random.default_rng(seed)
    labels = np.array(["angry", "happy", "sad"])[np.arange(n) % 3]
    splits = np.array(["train"] * (n - 4) + ["val"] * 2 + ["test"] * 2)
    return Dataset(images=rng.integers(0, 256, (n, side, side), dtype=np.uint8), labels=labels,
                   subjects=None, splits=splits, paths=np.array([f"{i}.png" for i in range(n)]),
                   name="toy")


def test_architectures_and_configurations():
    assert tuple(ARCHS) == ARCHITECTURES  # the torch-free list the CLI offers
    assert arch_config("vgg") == {"widths": (16, 32, 64, 128)}  # no arch key: old runs resume
    assert type(build_model({"widths": (4, 8), "n_classes": 3})) is FerNet  # old checkpoints
    res = build_model(dict(arch_config("resnet"), n_classes=3))
    mob = build_model(dict(arch_config("mobilenet", widths=(8, 16, 24)), n_classes=3))
    assert isinstance(res, ResFerNet) and isinstance(mob, MobileFerNet)
    assert mob.config["widths"] == (8, 16, 24) and mob.config["arch"] == "mobilenet"
    for net in (res, mob):
        for side in (48, 64):
            assert net(torch.zeros(2, 1, side, side)).shape == (2, 3)
        net.replace_head(5)
        assert net(torch.zeros(1, 1, 48, 48)).shape == (1, 5)
    # residual blocks start as the identity; the SE flag adds parameters
    no_se = build_model(dict(arch_config("resnet", attention=False), n_classes=3))
    assert count_params(res) > count_params(no_se)
    with pytest.raises(ConfigError, match="unknown CNN architecture"):
        build_model({"arch": "vit", "widths": (4, 8)})
    with pytest.raises(ConfigError, match="unknown setting"):
        build_model({"arch": "resnet", "widths": (4, 8), "expansion": 4})


def test_mobilenet_stem_does_the_first_halving():
    """MobileNetV2's layout: a stride-2 stem, a first stage at the stem's resolution; the
    same parameters and output resolution as a stride-1 stem whose first stage halves.
    """
    s2 = build_model(dict(arch_config("mobilenet"), n_classes=3))
    s1 = build_model(dict(arch_config("mobilenet", stem_stride=1), n_classes=3))
    assert s2.config["stem_stride"] == 2 and s1.config["stem_stride"] == 1
    assert count_params(s1) == count_params(s2)
    x = torch.zeros(1, 1, 48, 48)
    assert s1.features(x).shape == s2.features(x).shape == (1, 384, 3, 3)
    assert s2.features[0](x).shape[-1] == 24 and s1.features[0](x).shape[-1] == 48
    assert type(build_model(dict(s2.config))) is MobileFerNet  # the config rebuilds it
    with pytest.raises(ValueError, match="stem_stride"):
        MobileFerNet(n_classes=3, stem_stride=3)


@pytest.mark.parametrize("side", [48, 64])
@pytest.mark.parametrize("arch", ["vgg", "resnet", "mobilenet"])
def test_each_family_trains_exports_and_fits_the_kiosk_budget(arch, side, tmp_path):
    from classicfer.commands.train_cnn import _export_run

    ds = _random_dataset(side)
    res = train_on_dataset(ds, tmp_path, epochs=1, batch_size=16,
                           model_config=arch_config(arch), **QUIET)
    assert not (tmp_path / "model").exists()  # training writes checkpoints only
    assert res["size"] == (side, side) and len(res["check_images"]) == 2  # the test split
    m = _export_run(res, tmp_path, {"seed": 0})
    assert m["onnx_parity_max_abs_diff"] < 1e-4
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    meta, onnx_path = read_sidecar(tmp_path / "model")
    assert meta["input"]["size"] == [side, side]
    assert meta["training"]["architecture"]["arch"] == arch
    assert onnx_path.stat().st_size <= 5_000_000  # float32 weights, <= ~1.2 M parameters
    model, ck = load_checkpoint(tmp_path / "checkpoints" / "best.pt")  # the right class again
    assert type(model) is ARCHS[arch] and count_params(model) <= 1_200_000
    assert cnn_parity(model, tmp_path / "model", n=4)["max_abs_diff"] < 1e-4
    assert ck["config"].get("arch", "vgg") == arch


def test_training_on_distributions_follows_the_target_distribution():
    from classicfer.cnn_head.train import predict_logits, to_tensor

    x = np.random.default_rng(0).integers(0, 256, (32, 48, 48), dtype=np.uint8)
    target = np.tile(np.float32([0.7, 0.2, 0.1]), (32, 1))
    no_aug = {"rotate": 0, "zoom": 0, "shift": 0, "flip": False, "erase": 0}
    res = fit(x, target, classes=["a", "b", "c"], epochs=40, batch_size=16, lr=2e-2,
              label_smoothing=0.0, aug=no_aug, model_config={"widths": (4, 8), "dropout": 0.0},
              **QUIET)
    p = predict_logits(res["model"], to_tensor(x), res["mean"], res["std"]).softmax(1)
    np.testing.assert_allclose(p.mean(0).numpy(), [0.7, 0.2, 0.1], atol=0.03)


#: Vote rows (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown,
#: NF) of the tiny FER+ fixture: each has a majority emotion, but not a unanimous one.
_VOTES = {"neutral": (6, 1, 2, 0, 0, 0, 0, 0, 0, 1), "happy": (0, 7, 2, 0, 0, 0, 0, 0, 1, 0),
          "surprise": (2, 0, 8, 0, 0, 0, 0, 0, 0, 0)}
_NO_MAJORITY = (4, 0, 0, 1, 3, 2, 0, 0, 0, 0)


def _tiny_ferplus(root, per_class=(3, 1, 1)):
    """FER2013Train/Valid/Test folders of 48x48 PNGs with label.csv vote rows."""
    import cv2

    rng = np.random.default_rng(0)
    k = 0
    folders = ("FER2013Train", "FER2013Valid", "FER2013Test")
    for folder, count in zip(folders, per_class, strict=True):
        (root / folder).mkdir(parents=True)
        rows = []
        for votes in [*[v for v in _VOTES.values() for _ in range(count)], _NO_MAJORITY]:
            name = f"fer{k:07d}.png"
            cv2.imwrite(str(root / folder / name),
                        rng.integers(0, 256, (48, 48), dtype=np.uint8))
            rows.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
            k += 1
        (root / folder / "label.csv").write_text("\n".join(rows) + "\n")
    return root


def test_cli_trains_ferplus_on_the_vote_distributions(tmp_path, monkeypatch):
    from classicfer.datasets import load_dataset, vote_distribution

    data = _tiny_ferplus(tmp_path / "ferplus")
    seen = []
    real_fit = train_mod.fit

    def spy(x, y, *args, **kwargs):
        seen.append((np.asarray(y), kwargs["label_smoothing"]))
        return real_fit(x, y, *args, **kwargs)

    monkeypatch.setattr(train_mod, "fit", spy)
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(data), "--format", "ferplus",
                                 "--targets", "votes", "--arch", "mobilenet", "--widths",
                                 "4,8,16", "--out", str(out), *TINY_CLI])
    assert r.exit_code == 0, r.output
    ds = load_dataset(data, "ferplus", cache=False)
    assert set(ds.classes) == set(_VOTES) and len(ds) == 15  # 3 rows without a majority
    y, smoothing = seen[0]
    want = vote_distribution(ds.votes[ds.splits == "train"], ds.classes)
    assert y.shape == (9, 3) and smoothing == 0.0
    np.testing.assert_allclose(y, want)
    assert (y.max(axis=1) < 1).all()  # every row soft: not the one-hot majority
    meta, _ = read_sidecar(out / "model")
    assert meta["training"]["targets"] == "votes" and meta["labels"] == ds.classes
    assert json.loads((out / "metrics.json").read_text())["onnx_parity_max_abs_diff"] < 1e-4
    # the default trains on the majority labels, with label smoothing
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(data), "--format", "ferplus",
                                 "--widths", "4,8", "--out", str(tmp_path / "maj"), *TINY_CLI])
    assert r.exit_code == 0, r.output
    y, smoothing = seen[1]
    assert y.ndim == 1 and smoothing == 0.1


def test_votes_without_votes_is_a_one_line_error(tiny_fer_folder, tmp_path):
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--targets",
                                 "votes", "--out", str(tmp_path / "run"), *TINY_CLI])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Error:" in r.output and "--targets votes" in r.output and "votes" in r.output
    assert len(r.output.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="annotators' votes"):
        train_on_dataset(_random_dataset(48), tmp_path / "api", epochs=1, targets="votes",
                         **QUIET)


def test_cli_size_64_resizes_records_and_exports_at_64(tiny_fer_folder, tmp_path):
    from classicfer.export import export

    out = tmp_path / "run"
    common = ["--data", str(tiny_fer_folder), "--out", str(out), "--arch", "resnet",
              "--widths", "4,4,8", *TINY_CLI[2:]]  # the epochs are given below
    r = CliRunner().invoke(cli, ["train-cnn", "--size", "64", "--epochs", "2",
                                 "--stop-after", "1", *common])
    assert r.exit_code == 0, r.output
    meta, _ = read_sidecar(out / "model")
    assert meta["input"]["size"] == [64, 64]
    assert meta["training"]["architecture"]["widths"] == [4, 4, 8]
    model, ck = load_checkpoint(out / "checkpoints" / "last.pt")
    assert type(model) is ResFerNet and ck["size"] == [64, 64]
    # `classicfer export` of the checkpoint keeps the input side
    export(out / "checkpoints" / "best.pt", tmp_path / "exported", allow_pickle=True)
    assert read_sidecar(tmp_path / "exported")[0]["input"]["size"] == [64, 64]
    # resuming at another side, or another family from --init-from: one-line errors
    r = CliRunner().invoke(cli, ["train-cnn", "--resume", "--size", "48", "--epochs", "2",
                                 *common])
    assert r.exit_code == 1 and "--size 64" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["train-cnn", "--data", str(tiny_fer_folder), "--out",
                                 str(tmp_path / "ft"), "--init-from",
                                 str(out / "checkpoints" / "best.pt"), "--arch", "vgg",
                                 *TINY_CLI])
    assert r.exit_code == 1 and "resnet network" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["train-cnn", "--resume", "--size", "64", "--epochs", "2",
                                 *common])
    assert r.exit_code == 0, r.output
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 1


# ------------------------------------------------------------ fine-tuning through CNNClassifier

#: tiny networks of each family, for checkpoints that train in well under a second
_TINY_ARCH = {"vgg": {"widths": (4, 8)}, "resnet": {"widths": (4, 4, 8)},
              "mobilenet": {"widths": (4, 8, 8), "head_width": 16}}


def _checkpoint(tmp_path, arch: str, side: int, record_size: bool = True):
    """A one-epoch ``best.pt`` of a tiny ``arch`` network trained on ``side`` x ``side`` crops
    of two classes (not the classes it is fine-tuned on: the head is replaced).
    """
    x = np.random.default_rng(1).integers(0, 256, (8, side, side), dtype=np.uint8)
    out = tmp_path / f"{arch}{side}"
    fit(x, np.arange(8) % 2, classes=["x", "y"], epochs=1, batch_size=8, out_dir=out,
        model_config=arch_config(arch, **_TINY_ARCH[arch]), **QUIET)
    path = out / "best.pt"
    if not record_size:  # a checkpoint that does not record its input size
        ck = torch.load(path, weights_only=True)
        del ck["size"]
        torch.save(ck, path)
    return path


def _crops48(n: int = 12):
    x = np.random.default_rng(2).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return x, np.array(["angry", "happy", "sad"])[np.arange(n) % 3]


def _spy_on_training(monkeypatch):
    """Record, per fit, the training crops' shape, and per epoch the parameters it trains."""
    seen = {"x": [], "trained": []}
    real_fit, real_epoch = train_mod.fit, train_mod._train_epoch

    def fit_spy(x, *args, **kwargs):
        seen["x"].append(tuple(x.shape))
        return real_fit(x, *args, **kwargs)

    def epoch_spy(run, *args, **kwargs):
        before = {k: v.detach().clone() for k, v in run.model.named_parameters()}
        rec = real_epoch(run, *args, **kwargs)
        seen["trained"].append(sorted(k for k, v in run.model.named_parameters()
                                      if not torch.equal(v, before[k])))
        return rec

    monkeypatch.setattr(train_mod, "fit", fit_spy)
    monkeypatch.setattr(train_mod, "_train_epoch", epoch_spy)
    return seen


def _inputs_seen(net, x, est):
    """The (H, W) of every batch ``net`` receives while ``est`` predicts ``x``."""
    sides = []
    hook = net.register_forward_pre_hook(lambda m, inp: sides.append(tuple(inp[0].shape[-2:])))
    try:
        proba = est.predict_proba(x)
    finally:
        hook.remove()
    return proba, set(sides)


@pytest.mark.parametrize("arch, side", [("resnet", 48), ("mobilenet", 64), ("vgg", 64)])
def test_cnn_classifier_fine_tunes_each_family_at_its_checkpoint_size(arch, side, tmp_path,
                                                                      monkeypatch):
    from classicfer.cnn_head.estimator import CNNClassifier

    path = _checkpoint(tmp_path, arch, side)
    seen = _spy_on_training(monkeypatch)
    x, y = _crops48()
    est = CNNClassifier(init=str(path), epochs=2, batch_size=8, tta_flip=False).fit(x, y)
    net = est.models_[0][0]
    assert type(net) is ARCHS[arch] and net.config["n_classes"] == 3  # a new 3-way head
    assert net.config["widths"] == _TINY_ARCH[arch]["widths"]
    assert seen["x"] == [(12, 1, side, side)] and est.input_size_ == (side, side)
    # the first epoch trains the head alone, the second every layer
    head_only, everything = seen["trained"]
    assert head_only == ["head.bias", "head.weight"]
    assert {k.split(".")[0] for k in everything} == {"features", "head"}
    proba, sides = _inputs_seen(net, x, est)  # 48x48 crops, predicted at the training size
    assert sides == {(side, side)} and proba.shape == (12, 3)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)


def test_cnn_classifier_size_overrides_the_checkpoint_and_resizes_from_scratch(tmp_path,
                                                                               monkeypatch):
    from classicfer.cnn_head.estimator import CNNClassifier

    path = _checkpoint(tmp_path, "resnet", 64)
    seen = _spy_on_training(monkeypatch)
    x, y = _crops48()
    est = CNNClassifier(init=str(path), epochs=1, batch_size=8, size=48).fit(x, y)
    assert seen["x"][-1] == (12, 1, 48, 48) and est.input_size_ == (48, 48)
    est = CNNClassifier(epochs=1, batch_size=8, widths=(4, 8), size=32).fit(x, y)
    assert seen["x"][-1] == (12, 1, 32, 32) and est.input_size_ == (32, 32)
    proba, sides = _inputs_seen(est.models_[0][0], x, est)
    assert sides == {(32, 32)} and proba.shape == (12, 3)
    # without size or init the crops are used as given, and predicted at that size
    est = CNNClassifier(epochs=1, batch_size=8, widths=(4, 8)).fit(x[:, :40, :40], y)
    assert seen["x"][-1] == (12, 1, 40, 40) and est.input_size_ == (40, 40)
    assert _inputs_seen(est.models_[0][0], x, est)[1] == {(40, 40)}
    # a checkpoint that does not record its size was trained on 48x48 crops
    bare = _checkpoint(tmp_path / "bare", "vgg", 48, record_size=False)
    est = CNNClassifier(init=str(bare), epochs=1, batch_size=8).fit(x[:, :40, :40], y)
    assert seen["x"][-1] == (12, 1, 48, 48) and est.input_size_ == (48, 48)


def test_resize_crops_keeps_the_type_and_interpolates_as_training_does():
    import cv2

    from classicfer.cnn_head.train import resize_crops

    x = np.random.default_rng(3).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    up = resize_crops(x, 64)
    assert up.shape == (2, 64, 64) and up.dtype == np.uint8
    np.testing.assert_array_equal(up[1], cv2.resize(x[1], (64, 64),
                                                    interpolation=cv2.INTER_LINEAR))
    down = resize_crops(x, (24, 32))
    assert down.shape == (2, 24, 32)
    np.testing.assert_array_equal(down[0], cv2.resize(x[0], (32, 24),
                                                      interpolation=cv2.INTER_AREA))
    assert resize_crops(x, 48) is x
    assert resize_crops(x.astype(np.float64), 64).dtype == np.float32


def test_ckplus_script_names_the_checkpoint_family_and_size(tmp_path):
    import importlib.util
    from argparse import Namespace
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "cnn_ckplus_transfer.py"
    spec = importlib.util.spec_from_file_location("cnn_ckplus_transfer", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ds = _random_dataset(48)
    path = str(_checkpoint(tmp_path, "mobilenet", 64))
    how = mod._harness_how(Namespace(init=[path], size=None), ds)
    assert f"mobilenet checkpoint {path}, trained on 64x64 crops" in how
    assert "48x48 crops resized to 64x64" in how
    how = mod._harness_how(Namespace(init=[path], size=48), ds)
    assert "trained on 64x64 crops (run at 48x48" in how
    with pytest.raises(SystemExit, match="Error: .*no such checkpoint"):
        mod._harness_how(Namespace(init=[str(tmp_path / "none.pt")], size=None), ds)
