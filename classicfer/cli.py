"""The ``classicfer`` command: a thin click group over the library.

Each command lives in ``classicfer/commands/<name>.py`` and is imported only
when used (or when ``--help`` lists it), so start-up stays fast.
"""

from __future__ import annotations

import importlib

import click

from . import __version__

#: command name -> "module:attribute" under classicfer.commands
COMMANDS = {
    "data": "data:data",
    "detect": "detect:detect",
    "fit": "fit:fit",
    "grid": "grid:grid",
    "evaluate": "evaluate:evaluate",
    "compare": "compare:compare",
    "train-cnn": "train_cnn:train_cnn",
    "export": "export:export",
    "quantize": "quantize:quantize",
    "predict": "predict:predict",
    "watch": "watch:watch",
    "card": "card:card",
    "model-digest": "model_digest:model_digest",
    "serve": "serve:serve",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        """Every command name, including those whose module is not imported yet."""
        return sorted(set(super().list_commands(ctx)) | set(_available()))

    def get_command(self, ctx, name):
        """The command ``name``, importing its module on first use; None if unknown."""
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in _available():
            return cmd
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"classicfer.commands.{module}"), attr)


def _available():
    # Only commands whose module exists are listed.
    from importlib.util import find_spec

    return [n for n, spec in COMMANDS.items()
            if find_spec(f"classicfer.commands.{spec.split(':')[0]}") is not None]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="classicfer")
def cli():
    """classicfer: facial expression recognition on the CPU, offline.

    \b
    Quick start:
      classicfer predict --demo            # the bundled astronaut photo
      classicfer data inspect DATASET      # what is in a dataset
      classicfer evaluate --data DATASET --features hog+lbp --classifier linear-svm
    """


if __name__ == "__main__":  # pragma: no cover
    cli()
