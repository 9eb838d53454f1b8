"""``classicfer model-digest``: the folder digest that pins a deployed model."""

from __future__ import annotations

import click

from ._common import handle_errors


@click.command("model-digest")
@click.argument("model", required=False)
@click.option("--record-bundled", is_flag=True,
              help="Recompute the digests of the models shipped in classicfer/bundled_models/ and "
                   "write classicfer/bundled_models/DIGESTS.json (after replacing one on purpose).")
@handle_errors
def model_digest(model, record_bundled):
    """Print the digest of a model folder, to pin it with --model-digest.

    The digest is a sha256 over model.json and the ONNX file (names and bytes), so
    it changes when the labels, normalisation or temperature change, not only the
    graph. MODEL is a model folder or a bundled model name; it is validated and its
    ONNX checksum verified first.

    \b
    Example:
      classicfer model-digest models/hog-svm
      CLASSICFER_MODEL_DIGEST=$(classicfer model-digest models/hog-svm) \\
          classicfer serve --model models/hog-svm
      classicfer predict photo.jpg --model fer2013-cnn \\
          --model-digest "$(classicfer model-digest fer2013-cnn)"
      classicfer model-digest --record-bundled
    """
    from ..exceptions import ConfigError
    from ..runtime._digests import DIGESTS_FILE, model_digest, record_bundled_digests
    from ..runtime._model import bundled_models_dir, resolve_model_dir

    if record_bundled:
        if model:
            raise ConfigError("--record-bundled takes no MODEL (it covers every bundled model)")
        for name, digest in record_bundled_digests().items():
            click.echo(f"{digest}  {name}")
        click.echo(f"wrote {bundled_models_dir() / DIGESTS_FILE}", err=True)
        return
    if not model:
        raise click.UsageError("give a MODEL folder or bundled model name (or --record-bundled)")
    click.echo(model_digest(resolve_model_dir(model)))
