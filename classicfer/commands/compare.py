"""``classicfer compare``: gather run folders into one Markdown page."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.command()
@click.argument("results_dir", default="results", type=click.Path())
@click.option("--out", "out_path", default=None, type=click.Path(),
              help="Output file (default RESULTS_DIR/README.md); '-' prints it.")
@click.option("--check", is_flag=True,
              help="Do not write: exit 1 if the file differs from what would be generated.")
@handle_errors
def compare(results_dir, out_path, check):
    """Tabulate every run under RESULTS_DIR: one table per dataset/protocol.

    Models are rows; accuracy, macro-F1, per-class F1 and latency are columns,
    the best values in bold. The page depends only on the runs' metrics.json,
    so regenerating it gives the same file.

    \b
    Example:
      classicfer compare results
      classicfer compare results --check     # CI: is results/README.md up to date?
    """
    from pathlib import Path

    from ..evaluation import compare_markdown

    text = compare_markdown(results_dir)
    if out_path == "-":
        click.echo(text, nl=False)
        return
    out = Path(out_path) if out_path else Path(results_dir) / "README.md"
    if check:
        current = out.read_text() if out.is_file() else None
        if current != text:
            raise click.ClickException(f"{out} is out of date; run: classicfer compare "
                                       f"{results_dir}")
        click.echo(f"{out} is up to date")
        return
    out.write_text(text)
    n = text.count("\n## ")
    click.echo(f"wrote {out} ({n} table{'s' if n != 1 else ''})")
