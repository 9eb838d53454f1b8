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
    same parameters and output resolution as a stride-1 stem whose first stage halves."""
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
