"""Shared CLI plumbing: error boundary, progress bars, option bundles."""

from __future__ import annotations

import functools

import click

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
