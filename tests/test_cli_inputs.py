"""Files and folders on the command line: ``predict`` and ``detect`` read the same images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from classicfer.cli import cli
from classicfer.commands._common import expand_inputs
from classicfer.export._testing import make_linear_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(make_linear_model(tmp_path_factory.mktemp("m") / "linear"))


@pytest.fixture
def tree(tmp_path):
    """A folder with images at two depths, a non-image file and an empty subfolder."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    gray = np.full((40, 40), 120, np.uint8)
    Image.fromarray(gray).save(root / "b.png")
    Image.fromarray(gray).save(root / "A.JPG")  # extensions compare lower case
    Image.fromarray(gray).save(root / "sub" / "deeper" / "c.bmp")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "d.png.bak").write_bytes(b"")
    return root


def test_folder_expands_to_its_image_files_at_any_depth_sorted(tree):
    got = expand_inputs([tree])
    assert got == [(tree / "A.JPG", None), (tree / "b.png", None),
                   (tree / "sub" / "deeper" / "c.bmp", None)]


def test_files_stay_as_given_in_order_and_empty_folder_is_one_error(tree, tmp_path):
    missing = tmp_path / "gone.jpg"
    got = expand_inputs([str(tree / "notes.txt"), str(tree / "empty"), str(missing)])
    assert [p for p, _ in got] == [tree / "notes.txt", tree / "empty", missing]
    assert got[0][1] is None and got[2][1] is None  # reading them reports what is wrong
    assert got[1][1].startswith(f"{tree / 'empty'}: folder holds no image files (")
    assert ".png" in got[1][1]


def _paths(output) -> list[str]:
    doc = json.loads(output)
    return [r["path"] for r in (doc if isinstance(doc, list) else [doc])]


def test_predict_and_detect_process_the_same_files(model, tree):
    runner = CliRunner()
    p = runner.invoke(cli, ["predict", str(tree), "--model", model, "--no-detect", "--json"])
    d = runner.invoke(cli, ["detect", str(tree), "--json", "-q"])
    assert p.exit_code == 0, p.output
    assert d.exit_code == 0, d.output
    want = [str(tree / "A.JPG"), str(tree / "b.png"), str(tree / "sub" / "deeper" / "c.bmp")]
    assert _paths(p.stdout) == want
    assert _paths(d.stdout) == want


@pytest.mark.parametrize("command", [["predict", "--no-detect"], ["detect", "-q"]])
def test_a_folder_without_images_is_an_error_line_and_the_batch_goes_on(command, model, tree):
    args = [*command, str(tree / "empty"), str(tree / "b.png"), "--json"]
    if command[0] == "predict":
        args += ["--model", model]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "empty: folder holds no image files" in errors[0]
    assert "Traceback" not in r.output
    assert _paths(r.stdout) == [str(tree / "empty"), str(tree / "b.png")]
