"""``classicfer detect``: find faces (and landmarks) in images."""

from __future__ import annotations

import click

from ..config import is_image_file
from ..face._detect import METHODS
from ._common import expand_inputs, handle_errors

_METHODS = tuple(METHODS)


@click.command()
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--method", "-m", type=click.Choice(_METHODS), default="haar", show_default=True,
              help="Face detector.")
@click.option("--landmarks", "-l", type=click.Choice(["none", "5", "68"]), default="none",
              show_default=True,
              help="dlib landmark model to run on each face (mtcnn always gives its 5, "
                   "blazeface its 6 keypoints).")
@click.option("--min-size", type=float, default=None,
              help="Smallest face side in pixels (default depends on --method).")
@click.option("--upsample", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Upscale 2**N times before detecting (small faces).")
@click.option("--out", "out_path", type=click.Path(), default=None,
              help="Annotated PNG (boxes, landmarks); a folder (required with several "
                   "inputs; also accepted with one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (boxes, scores, landmarks).")
@click.option("--demo", is_flag=True, help="Use the bundled astronaut photo as input.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def detect(images, method, landmarks, min_size, upsample, out_path, as_json, demo, quiet):
    """Detect faces in IMAGES (files or folders) and report boxes and landmarks.

    A folder stands for its image files, in subfolders too, in sorted order. A
    file that cannot be read (not an image, truncated, too many pixels) or a
    folder holding no image file gives one error line and the batch continues;
    the exit code is then 1. An image without a face is reported, not an error.

    \b
    Example:
      classicfer detect photo.jpg --method dlib-hog --landmarks 5 --out annotated.png
      classicfer detect photos/ --method mtcnn --json > faces.json
      classicfer detect --demo --landmarks 68 --out astronaut.png
    """
    import json
    import sys

    from ..exceptions import ClassicferError, ConfigError
    from ._common import progress, warn

    paths = expand_inputs(images)
    if demo:
        paths.insert(0, ("<astronaut>", None))
    if not paths:
        raise ConfigError("no input images: give IMAGE paths or folders (or --demo)")
    several = len(paths) > 1
    out_dir = _out_folder(out_path, len(paths))

    records, failures = [], 0
    bar = progress(paths, quiet=quiet or not several, desc="detect", unit="img")

    def say(line, file=None):  # a line (stderr by default) that does not break the bar
        with bar.external_write_mode(file=file or sys.stderr):
            click.echo(line, file=file or sys.stderr)

    for path, msg in bar:
        name = str(path)
        if msg is None:
            try:
                record, faces = _detect_one(path, method=method, landmarks=landmarks,
                                            min_size=min_size, upsample=upsample,
                                            out_path=out_path, out_dir=out_dir)
            except ClassicferError as e:
                msg = str(e)
        if msg is not None:
            failures += 1
            say(f"Error: {msg if msg.startswith(name) else f'{name}: {msg}'}")
            records.append({"path": name, "error": msg, "faces": []})
            continue
        records.append(record)
        if not faces:
            say(f"{name}: no face found")
        if not as_json:
            for i, f in enumerate(faces, 1):
                say(_face_line(name, i, f), file=sys.stdout)
    if as_json:
        click.echo(json.dumps(records if several else records[0], indent=1))
    if out_path is not None and not quiet:
        warn(f"annotated image{'s' if several else ''} written to {out_path}")
    if failures:
        warn(f"{failures} of {len(paths)} input{'s' if len(paths) != 1 else ''} failed")
        raise SystemExit(1)


def _detect_one(path, *, method, landmarks, min_size, upsample, out_path, out_dir):
    """Detect the faces of one input (and write its annotated PNG); ``(record, faces)``."""
    from pathlib import Path

    from ..face import detect_faces, draw_faces, face_landmarks
    from ..imageio import read_image

    name = str(path)
    if path == "<astronaut>":
        from skimage.data import astronaut

        img = astronaut()
    else:
        img = read_image(path)
    faces = detect_faces(img, method, min_size=min_size, upsample=upsample)
    if landmarks != "none":
        for f in faces:
            f.landmarks = face_landmarks(img, f, landmarks)
            f.layout = None
    record = {"path": name, "height": int(img.shape[0]), "width": int(img.shape[1]),
              "faces": [f.to_dict() for f in faces]}
    if out_path is not None:
        stem = "astronaut" if path == "<astronaut>" else Path(name).stem
        target = out_dir / f"{stem}.png" if out_dir is not None else Path(out_path)
        _save_png(draw_faces(img, faces), target)
    return record, faces


def _face_line(name, i, f) -> str:
    """The text report of face ``i`` of input ``name``."""
    x, y, w, h = f.box
    extra = "" if f.landmarks is None else f" landmarks={len(f.landmarks)}"
    return (f"{name}: face {i} box=({x}, {y}, {w}, {h}) "
            f"score={f.score:.3f} method={f.method}{extra}")


def _out_folder(out_path, n_inputs: int):
    """The folder for the annotated images, or None when ``--out`` names one PNG file.

    Several inputs need a folder: an ``--out`` that is an existing file or ends
    like an image file name is refused instead of becoming a folder called
    ``x.png``. One input may also go to an existing folder (as ``<stem>.png``).
    """
    from pathlib import Path

    from ..exceptions import ConfigError

    if out_path is None:
        return None
    out = Path(out_path)
    if n_inputs == 1:
        return out if out.is_dir() else None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; with {n_inputs} inputs --out must be a "
                          "folder for the annotated images")
    if not out.exists() and is_image_file(out):
        raise ConfigError(f"--out {out} looks like an image file name, but {n_inputs} inputs "
                          "give one annotated image each: pass a folder (e.g. --out "
                          f"{out.with_suffix('')}/) or a single input")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save_png(rgb, target):
    from PIL import Image

    from ..exceptions import ImageError

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(rgb).save(target)
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot write {target}: {e}") from None
