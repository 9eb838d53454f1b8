"""The robustness suite's corruptions: deterministic, bounded, monotone in severity."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from classicfer.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt, parse_corruption
from classicfer.exceptions import ConfigError


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    base = (128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8)
    return np.stack([np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255)
                     .astype(np.uint8) for _ in range(6)])


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_family_is_deterministic_and_changes_the_image(faces, name):
    a = corrupt(faces, name, 3, seed=1)
    b = corrupt(faces, name, 3, seed=1)
    assert a.dtype == np.uint8 and a.shape == faces.shape
    assert (a == b).all()
    assert np.abs(a.astype(int) - faces).mean() > 0.5


@pytest.mark.parametrize("name", ["gaussian_blur", "gaussian_noise", "low_contrast",
                                  "low_resolution", "overexposure", "mask", "sunglasses"])
def test_stronger_severity_moves_further(faces, name):
    d = [np.abs(corrupt(faces, name, s).astype(int) - faces).mean() for s in SEVERITIES]
    assert all(x < y for x, y in pairwise(d)), d


def test_seed_changes_random_families(faces):
    assert (corrupt(faces, "gaussian_noise", 2, seed=0)
            != corrupt(faces, "gaussian_noise", 2, seed=1)).any()


def test_lists_keep_their_shapes():
    imgs = [np.full((40, 40), 100, np.uint8), np.full((64, 64), 50, np.uint8)]
    out = corrupt(imgs, "rotation", 2)
    assert [o.shape for o in out] == [(40, 40), (64, 64)]


@pytest.mark.parametrize("text, err", [("nope:3", "unknown corruption"),
                                       ("jpeg", "NAME:SEVERITY"), ("jpeg:0", "1-5"),
                                       ("jpeg:x", "NAME:SEVERITY")])
def test_parse_errors_are_one_line(text, err):
    with pytest.raises(ConfigError, match=err):
        parse_corruption(text)


def test_parse_accepts_dashes():
    assert parse_corruption("Gaussian-Noise:4") == ("gaussian_noise", 4)


def test_cli_evaluate_corrupt_scores_corrupted_copies(tiny_fer_folder, tmp_path):
    import json

    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "lin", name="lin")
    base = ["evaluate", "--data", str(tiny_fer_folder), "--model", str(model), "-q",
            "--n-boot", "100", "--out", str(tmp_path / "res")]
    r = CliRunner().invoke(cli, base + ["--corrupt", "gaussian_noise:5"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "res" / "fer2013-gaussian_noise-5" / "official" / "lin-gaussian_noise-5"
    noisy = json.loads((out / "metrics.json").read_text())
    assert noisy["model"] == "lin@gaussian_noise-5"
    r = CliRunner().invoke(cli, base)
    clean = json.loads((tmp_path / "res" / "fer2013" / "official" / "lin" / "metrics.json")
                       .read_text())
    assert noisy["n_samples"] == clean["n_samples"]
    r = CliRunner().invoke(cli, ["evaluate", "--data", str(tiny_fer_folder), "--features",
                                 "hog", "--classifier", "linear-svm", "--corrupt", "jpeg:2"])
    assert r.exit_code == 1 and "prefit --model" in r.output
