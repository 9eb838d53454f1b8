"""``classicfer data inspect`` / ``data formats``."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from conftest import requires_shared

from classicfer.cli import cli
from classicfer.datasets import LOADERS


def run(*args):
    return CliRunner().invoke(cli, ["data", *map(str, args)])


def test_inspect_prints_the_table(tiny_fer_folder):
    r = run("inspect", tiny_fer_folder)
    assert r.exit_code == 0, r.output
    assert "format fer2013-folder" in r.output
    assert re.search(r"^happy\s+4\s+2\s+2\s+8$", r.output, re.MULTILINE)
    assert re.search(r"^total\s+28\s+14\s+14\s+56$", r.output, re.MULTILINE)
    assert "sizes      48x48: 56" in r.output and "duplicates 0 groups" in r.output


def test_inspect_json_and_manifest(tiny_ckplus48, tmp_path):
    out = tmp_path / "ck.json"
    r = run("inspect", tiny_ckplus48, "--json", "--manifest", out)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["format"] == "ckplus48" and rep["n_subjects"] == 6 and rep["n_images"] == 63
    man = json.loads(out.read_text())
    assert man["manifest_hash"] == rep["manifest_hash"] and len(man["files"]) == 63


def test_inspect_forced_format_and_size(tiny_ckplus48):
    r = run("inspect", tiny_ckplus48, "--format", "imagefolder", "--size", "24x24", "-q")
    assert r.exit_code == 0, r.output
    assert "format imagefolder" in r.output and "24x24: 63" in r.output


def test_inspect_reports_skipped_files(tiny_ckplus48):
    (tiny_ckplus48 / "happy" / "S001_001_00000001.png").write_bytes(b"")
    r = CliRunner().invoke(cli, ["data", "inspect", str(tiny_ckplus48)])
    assert r.exit_code == 0
    assert "skipped    1 (unreadable: 1)" in r.output
    assert "S001_001_00000001.png: empty file (0 bytes)" in r.output


def _missing(p):
    return p / "missing"


def _empty(p):
    (p / "empty").mkdir()
    return p / "empty"


def _bad_class(p):
    (p / "c" / "cats").mkdir(parents=True)
    (p / "c" / "cats" / "a.jpg").write_bytes(b"x")
    return p / "c"


def _a_file(p):
    (p / "f.bin").write_bytes(b"x")
    return p / "f.bin"


@pytest.mark.parametrize("setup, message", [
    (_missing, "no such file or directory"),
    (_empty, "folder is empty"),
    (_bad_class, "folder name is not an emotion: unknown emotion label 'cats'"),
    (_a_file, "is a file"),
])
def test_bad_input_is_one_error_line(tmp_path, setup, message):
    r = run("inspect", setup(tmp_path))
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_bad_options(tiny_fer_folder):
    r = run("inspect", tiny_fer_folder, "--format", "cifar")
    assert r.exit_code == 1 and "Error: unknown dataset format 'cifar'; choose from" in r.output
    r = run("inspect", tiny_fer_folder, "--size", "big")
    assert r.exit_code == 2 and "expected HxW" in r.output


def test_formats_lists_every_loader():
    r = run("formats")
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.output.splitlines()] == list(LOADERS)


@requires_shared
@pytest.mark.slow
def test_inspect_real_fer2013(fer2013_path):
    r = run("inspect", fer2013_path, "--json", "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["n_images"] == 35887 and rep["skipped"]["count"] == 0
    d = rep["duplicates"]
    # FER-2013 holds exact duplicates, some across train and test (measured, not assumed:
    # only their existence and consistency are checked here)
    assert d["cross_split_groups"] > 0 and d["leaks"]["test"] > 0
    assert d["redundant"] == d["images_in_groups"] - d["groups"]
