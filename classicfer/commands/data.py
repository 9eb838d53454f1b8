"""``classicfer data``: look at datasets before training on them."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.group()
def data():
    """Inspect datasets: formats, counts, duplicates, manifests.

    \b
    Example:
      classicfer data inspect ../shared/datasets/fer2013
      classicfer data inspect fer2013.csv --manifest fer2013.manifest.json
      classicfer data formats
    """


def _parse_size(ctx, param, value):
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW such as 48x48, got {value!r}") from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"expected a positive size such as 48x48, got {value!r}")
    return (h, w)


@data.command()
@click.argument("path", type=click.Path())
@click.option("--format", "data_format", default=None,
              help="Force the dataset format instead of detecting it (see `data formats`).")
@click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False), default=None,
              help="Write a JSON manifest (path, sha256, label, split, subject per image).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--size", callback=_parse_size, default=None, metavar="HxW",
              help="Resize images when loading (formats with a size option).")
@click.option("--no-duplicates", is_flag=True, help="Skip the duplicate-image search.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the dataset cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def inspect(path, data_format, manifest_path, as_json, size, no_duplicates, no_cache, quiet):
    """Report what a dataset holds.

    Format, class x split counts, sizes, subjects, unreadable files and exact
    duplicate images (and train/test leaks).

    \b
    Example:
      classicfer data inspect ../shared/datasets/fer2013
      classicfer data inspect ../shared/datasets/ckplus48 --json
      classicfer data inspect data/jaffe --manifest jaffe.json
    """
    import json
    import sys

    from ..datasets import format_report, inspect_dataset, load_dataset
    from ..datasets.manifest import write_manifest

    options = {"size": size} if size is not None else {}
    ds = load_dataset(path, data_format, cache=not no_cache,
                      progress=not quiet and sys.stderr.isatty(), **options)
    rep = inspect_dataset(ds, duplicates=not no_duplicates)
    if manifest_path:
        write_manifest(ds, manifest_path)
        rep["manifest_file"] = manifest_path
    if as_json:
        click.echo(json.dumps(rep, indent=1))
    else:
        click.echo(format_report(rep))
        if manifest_path:
            click.echo(f"wrote      {manifest_path} ({len(ds):,} files)")
    if ds.skipped and not as_json:
        click.echo(f"warning: {len(ds.skipped):,} file(s) skipped; see 'skipped' above",
                   err=True)


@data.command()
def formats():
    """List the dataset formats and the layouts they read.

    \b
    Example:
      classicfer data formats
    """
    from .. import datasets

    doc = datasets.__doc__ or ""
    rows = [line for line in doc.splitlines()
            if line and not line.startswith("=") and line.split(" ", 1)[0] in datasets.LOADERS]
    for line in rows:
        click.echo(line.replace("``", ""))
