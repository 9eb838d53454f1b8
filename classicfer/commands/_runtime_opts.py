"""Options shared by ``predict`` and ``watch`` (model, detector, thresholds)."""

from __future__ import annotations

import click

from ..face._detect import METHODS

DETECTORS = tuple(METHODS)


def predictor_options(func):
    opts = [
        click.option("--model", "model", default=None, metavar="DIR",
                     help="Model folder (model.onnx + model.json) or bundled model name. "
                          "Default: $CLASSICFER_MODEL, else the best bundled model."),
        click.option("--detector", type=click.Choice(DETECTORS), default="blazeface",
                     show_default=True,
                     help="Face detector. blazeface: fastest; one pass finds faces of at "
                          "least 1/8 of the image (a person near the camera), --min-size "
                          "adds windows for smaller ones; mtcnn or haar for many small faces."),
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
        click.option("--min-face", type=click.IntRange(1), default=40, show_default=True,
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
                   threads, detect=True, max_faces=None):
    from ..runtime import Predictor

    return Predictor(model, detector=detector, landmarks=landmarks, crop=crop, detect=detect,
                     min_size=min_size, min_face=min_face, min_confidence=min_confidence,
                     threads=threads, max_faces=max_faces)
