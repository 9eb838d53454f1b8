"""Where a figure came from: the command, package versions, git commit and the data.

Every command that writes figures (``evaluate``, ``grid``, ``fit``, ``train-cnn``) and
every benchmark stores one :func:`run_record` beside them, so a number can be traced to
the code and the data that produced it. Nothing here imports the rest of classicfer: a
dataset is described by the caller (:func:`classicfer.datasets.manifest.dataset_record`)
and passed in as data.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

#: Packages whose versions a run record lists (those installed).
PACKAGES = ("classicfer", "numpy", "scikit-learn", "scikit-image",
            "opencv-contrib-python-headless", "onnxruntime", "skl2onnx", "xgboost",
            "xgboost-cpu", "dlib-bin", "torch", "joblib", "matplotlib")


def versions(packages=PACKAGES) -> dict:
    """Python's version and those of the installed ``packages``.

    Parameters
    ----------
    packages : sequence of str, optional
        Distribution names (default :data:`PACKAGES`); a benchmark names the ones its
        figures depend on (e.g. the web server's for the serve benchmark).

    Returns
    -------
    dict
        ``{"python": "3.11.4", "numpy": "2.1.0", ...}``; packages not installed are left out.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def git_commit(cwd=None) -> dict:
    """HEAD commit of the source tree and whether tracked files have uncommitted changes.

    Parameters
    ----------
    cwd : str or Path, optional
        A folder inside the checkout (default: the folder of this module).

    Returns
    -------
    dict
        ``{"commit": str | None, "dirty": bool | None}``; both None outside a git checkout.
    """
    here = cwd or os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True,
                               timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head or None, "dirty": bool(dirty) if head else None}


def command_line(argv=None) -> list[str]:
    """The command as typed: ``["classicfer", "grid", ...]`` for the CLI, else ``argv``."""
    argv = list(sys.argv if argv is None else argv)
    if argv and "classicfer" in os.path.basename(str(argv[0])):
        return ["classicfer", *argv[1:]]
    return argv


def run_record(command=None, *, dataset: dict | None = None, **fields) -> dict:
    """The record written beside a run's figures.

    Parameters
    ----------
    command : list of str, optional
        The command line (default: :func:`command_line`).
    dataset : dict, optional
        The data the figures were computed on, as
        :func:`classicfer.datasets.manifest.dataset_record` describes it (name, root,
        format, number of images, ``manifest_sha256``).
    **fields
        The run's own settings (seed, splitter, protocol...), stored as given.

    Returns
    -------
    dict
        ``command``, ``dataset`` (when given), ``fields``, then ``git`` (commit, dirty),
        ``versions`` (Python and packages) and ``platform`` (system, CPU count).
    """
    rec = {"command": command_line() if command is None else command}
    if dataset is not None:
        rec["dataset"] = dataset
    rec.update(fields)
    rec.update({"git": git_commit(), "versions": versions(),
                "platform": {"system": platform.platform(), "cpu_count": os.cpu_count()}})
    return rec


__all__ = ["PACKAGES", "command_line", "git_commit", "run_record", "versions"]
