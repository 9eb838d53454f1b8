"""Options shared by ``predict``, ``watch`` and ``serve`` (model, detector, thresholds).

``--model-digest HEX`` pins the model (see :mod:`classicfer.runtime._digests`): it is
kept in the click context rather than passed to each command, and
:func:`make_predictor` refuses a model whose folder digest differs. Without it,
``$CLASSICFER_MODEL_DIGEST`` pins the model when set.
"""

from __future__ import annotations

import click

from ..face._detect import METHODS

DETECTORS = tuple(METHODS)
#: Where ``--model-digest`` is kept in ``click.Context.meta``.
DIGEST_META = "classicfer.model_digest"


def _store_digest(ctx, param, value):
    """Check ``--model-digest`` and keep it in ``ctx.meta`` for :func:`make_predictor`."""
    if value is None:
        return None
    from ..exceptions import ConfigError
    from ..runtime._format import normalise_digest

    try:
        value = normalise_digest(value, "--model-digest")
    except ConfigError:
        raise click.BadParameter("expected 64 hex digits, as printed by `classicfer "
                                 "model-digest MODEL`", param_hint="--model-digest") from None
    ctx.meta[DIGEST_META] = value
    return value


def predictor_options(func):
    opts = [
        click.option("--model", "model", default=None, metavar="DIR",
                     help="Model folder (model.onnx + model.json) or bundled model name. "
                          "Default: $CLASSICFER_MODEL, else the best bundled model."),
        click.option("--model-digest", metavar="HEX", default=None, expose_value=False,
                     callback=_store_digest,
                     help="Refuse the model unless its folder digest (model.json + ONNX, "
                          "printed by `classicfer model-digest MODEL`) is HEX. Default: "
                          "$CLASSICFER_MODEL_DIGEST when set."),
        click.option("--detector", type=click.Choice(DETECTORS), default="blazeface",
                     show_default=True,
                     help="Face detector. blazeface: fastest; one pass finds faces of at "
                          "least 1/8 of the image (a person near the camera), --min-size "
                          "adds windows for smaller ones; faces are confirmed by MTCNN's O-Net. "
                          "mtcnn for many small faces (--min-size 20 below 40 px)."),
        click.option("--landmarks", type=click.Choice(["auto", "5", "68", "none"]),
                     default="auto", show_default=True,
                     help="Landmarks used to level the eyes before cropping: auto = the "
                          "detector's own eye points (blazeface, mtcnn), else dlib's 5-point "
                          "model; 5 = always dlib 5-point; '68' is non-commercial only."),
        click.option("--crop", type=click.Choice(["box", "level", "aligned"]), default=None,
                     help="How a detected face is framed (default: from the model)."),
        click.option("--min-size", type=float, default=None,
                     help="Smallest face the detector looks for, in pixels (larger is faster; "
                          "default haar 60, dlib 80, mtcnn 40, blazeface 1/8 of the image)."),
        click.option("--min-face", type=click.IntRange(1), default=24, show_default=True,
                     help="Faces smaller than this (pixels) are reported as 'too small', "
                          "not classified."),
        click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.30,
                     show_default=True,
                     help="Faces whose top probability is lower are reported as 'uncertain' "
                          "with no label."),
        click.option("--threads", type=click.IntRange(0), default=1, show_default=True,
                     help="onnxruntime threads (0 = all cores)."),
        click.option("--blur-faces", is_flag=True,
                     help="Blur the faces in every saved image or video."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def make_predictor(model, detector, landmarks, crop, min_size, min_face, min_confidence,
                   threads, detect=True, max_faces=None, digest=None):
    """A :class:`~classicfer.runtime.Predictor` from the shared options.

    The model is loaded first and refused unless it passes its checks, including the
    pinned digest: ``digest``, else ``--model-digest`` of the running command, else
    ``$CLASSICFER_MODEL_DIGEST``.
    """
    from ..runtime import Predictor, load_model

    if digest is None:
        ctx = click.get_current_context(silent=True)
        digest = ctx.meta.get(DIGEST_META) if ctx is not None else None
    model = load_model(model, threads=threads, digest=digest)
    return Predictor(model, detector=detector, landmarks=landmarks, crop=crop, detect=detect,
                     min_size=min_size, min_face=min_face, min_confidence=min_confidence,
                     threads=threads, max_faces=max_faces)
