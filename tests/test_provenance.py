"""The run record written beside every result."""

from __future__ import annotations

import pytest

from classicfer.provenance import command_line, git_commit, run_record, versions


def test_run_record_holds_command_versions_git_and_data():
    rec = run_record(["classicfer", "grid", "--seed", "3"],
                     dataset={"name": "tiny", "manifest_sha256": "0" * 64}, seed=3)
    assert rec["command"] == ["classicfer", "grid", "--seed", "3"]
    assert rec["dataset"]["manifest_sha256"] == "0" * 64 and rec["seed"] == 3
    assert rec["git"] == git_commit() and set(rec["git"]) == {"commit", "dirty"}
    assert rec["versions"]["python"] and rec["versions"] == versions()
    assert rec["platform"]["cpu_count"] >= 1
    assert "dataset" not in run_record([])


@pytest.mark.parametrize("argv, want", [
    (["/venv/bin/classicfer", "evaluate", "-q"], ["classicfer", "evaluate", "-q"]),
    (["benchmarks/latency.py", "--n", "3"], ["benchmarks/latency.py", "--n", "3"]),
])
def test_command_line(argv, want):
    assert command_line(argv) == want


def test_git_commit_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == {"commit": None, "dirty": None}
