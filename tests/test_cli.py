"""The CLI group: version, help listing every command, and each command's help."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from classicfer import __version__
from classicfer.cli import COMMANDS, cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_command_with_one_line():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        line = next((ln for ln in result.output.splitlines() if ln.strip().startswith(name + " ")),
                    None)
        assert line is not None, f"{name} missing from --help"
        assert len(line.split(None, 1)) == 2, f"{name} has no one-line summary"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_command_is_one_line_error():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, classicfer.cli as c; from click.testing import CliRunner; "
            "CliRunner().invoke(c.cli, ['--help']); "
            "print(','.join(m for m in ('torch', 'onnxruntime', 'dlib', 'sklearn', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
