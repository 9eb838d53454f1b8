"""A pickle runs code when loaded: ``evaluate --model X.joblib`` and ``export`` load one only
with ``--allow-pickle`` (``allow_pickle=True``), and only after the cheap inputs are checked.

The payload below creates a marker file when unpickled; without the flag it never exists.
"""

from __future__ import annotations

import pickle

import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.exceptions import ConfigError, ModelError


class _Payload:
    """Unpickling this object calls ``open(marker, "w")``: the file appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(tmp_path):
    """(pickle path, marker path) for a joblib file whose payload creates the marker."""
    import joblib

    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.joblib"
    joblib.dump(_Payload(marker), path)
    assert not marker.exists()
    return path, marker


def _invoke(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 1, r.output
    assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    return r.output


def test_evaluate_refuses_a_pickle_without_the_flag(evil, tiny_fer_folder):
    path, marker = evil
    out = _invoke("evaluate", "--data", tiny_fer_folder, "--model", path)
    assert "is a pickle" in out and "--allow-pickle" in out
    assert not marker.exists()


@pytest.mark.parametrize("extra, match", [
    (["--data", "{tmp}/no-such-dataset"], "no such file or directory"),
    (["--data", "{fer}", "--format", "bogus"], "unknown dataset format"),
    (["--data", "{fer}", "--test-data", "{tmp}/nope", "--protocol", "cross-dataset"],
     "no such file or directory"),
])
def test_evaluate_checks_cheap_inputs_before_unpickling(evil, tiny_fer_folder, tmp_path, extra,
                                                        match):
    path, marker = evil
    args = [a.format(tmp=tmp_path, fer=tiny_fer_folder) for a in extra]
    out = _invoke("evaluate", *args, "--model", path, "--allow-pickle")
    assert match in out
    assert not marker.exists()


def test_evaluate_loads_the_pickle_when_allowed(evil, tiny_fer_folder):
    """The payload is real: with the flag and valid inputs it runs (then is refused)."""
    path, marker = evil
    out = _invoke("evaluate", "--data", tiny_fer_folder, "--model", path, "--allow-pickle")
    assert "not an estimator" in out
    assert marker.exists()


def test_model_from_path_needs_allow_pickle(evil):
    from classicfer.evaluation import model_from_path

    path, marker = evil
    with pytest.raises(ConfigError, match="allow_pickle=True"):
        model_from_path(path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="not an estimator"):
        model_from_path(path, allow_pickle=True)
    assert marker.exists()


def test_export_refuses_a_pickle_without_the_flag(evil, tmp_path):
    path, marker = evil
    out = _invoke("export", path, "--out", tmp_path / "deployed")
    assert "is a pickled pipeline" in out and "--allow-pickle" in out
    assert not marker.exists() and not (tmp_path / "deployed").exists()


def test_export_refuses_a_checkpoint_without_the_flag(tmp_path):
    marker = tmp_path / "payload-ran"
    ck = tmp_path / "best.pt"
    ck.write_bytes(pickle.dumps(_Payload(marker)))
    out = _invoke("export", ck, "--out", tmp_path / "deployed")
    assert "is a pickled torch checkpoint" in out
    assert not marker.exists()


@pytest.mark.parametrize("extra, match", [
    (["--data", "{tmp}/no-such-dataset"], "no such file or directory"),
    (["--out", "{tmp}/full"], "not empty"),
])
def test_export_checks_cheap_inputs_before_unpickling(evil, tmp_path, extra, match):
    path, marker = evil
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    args = [a.format(tmp=tmp_path) for a in extra]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "deployed")]
    out = _invoke("export", path, *args, "--allow-pickle")
    assert match in out
    assert not marker.exists()


def test_export_loads_the_pickle_when_allowed(evil, tmp_path):
    path, marker = evil
    out = _invoke("export", path, "--out", tmp_path / "deployed", "--allow-pickle")
    assert "not a classicfer pipeline" in out
    assert marker.exists()


def test_help_says_a_pickle_runs_code():
    for cmd in ("evaluate", "export"):
        r = CliRunner().invoke(cli, [cmd, "--help"])
        text = " ".join(r.output.split())
        assert "--allow-pickle" in text and "runs any code" in text and "files you made" in text
