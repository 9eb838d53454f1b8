"""Shared CLI plumbing: error boundary, progress bars, input files, option bundles."""

from __future__ import annotations

import functools

import click

from ..config import IMAGE_EXTENSIONS, is_image_file
from ..exceptions import ClassicferError


def handle_errors(func):
    """Turn a :class:`ClassicferError` into ``Error: <message>`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ClassicferError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def warn(message: str) -> None:
    """One line on stderr."""
    click.echo(message, err=True)


def progress(iterable=None, *, quiet: bool = False, **kwargs):
    """A tqdm bar on stderr, or a silent pass-through when ``quiet``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=quiet, **kwargs)


def expand_inputs(inputs) -> list:
    """The image files named by command-line inputs, each with an error or None.

    A file stays as given, whatever its extension (reading it reports what is
    wrong). A folder expands to the files under it, at any depth, whose names end
    with an :data:`~classicfer.config.IMAGE_EXTENSIONS` entry, in sorted order;
    a folder holding none gives one error entry instead.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        File and folder paths, in the order given.

    Returns
    -------
    list of (pathlib.Path, str or None)
        ``(path, None)`` for each file to process; ``(folder, message)`` for a
        folder without image files.
    """
    from pathlib import Path

    out = []
    for raw in inputs:
        p = Path(raw)
        if not p.is_dir():
            out.append((p, None))
            continue
        files = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
        if not files:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            out.append((p, f"{p}: folder holds no image files ({exts})"))
        out.extend((f, None) for f in files)
    return out


def split_plus(ctx, param, value):
    """Callback: ``"hog+lbp"`` -> ``["hog", "lbp"]``."""
    if value is None:
        return None
    return [v.strip() for v in str(value).split("+") if v.strip()]


def split_comma(ctx, param, value):
    """Callback: ``"a,b,c"`` -> ``["a", "b", "c"]``."""
    if value is None:
        return None
    return [v.strip() for v in str(value).split(",") if v.strip()]


def parse_params(values) -> dict:
    """``("C=0.1", "kernel=rbf")`` -> ``{"C": 0.1, "kernel": "rbf"}``.

    Numbers, booleans and None are parsed; anything else stays a string.
    """
    out = {}
    for item in values or ():
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        key, raw = item.split("=", 1)
        out[key.strip()] = [_parse_value(v) for v in raw.split(",")] if "," in raw \
            else _parse_value(raw)
    return out


def _parse_value(raw: str):
    raw = raw.strip()
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def data_options(func):
    """``--data PATH`` and ``--format NAME``."""
    func = click.option("--format", "data_format", default=None,
                        help="Force the dataset format instead of detecting it.")(func)
    func = click.option("--data", "data_path", required=True,
                        type=click.Path(), help="Dataset folder or CSV.")(func)
    return func
