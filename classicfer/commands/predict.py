"""``classicfer predict``: expressions of every face in images or folders."""

from __future__ import annotations

import click

from ._common import expand_inputs, handle_errors
from ._runtime_opts import make_predictor, predictor_options


def demo_image():
    """Path of the bundled astronaut photo that ``--demo`` runs on."""
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "data" / "astronaut.jpg"


def _fmt_box(box):
    return "{},{},{},{}".format(*box)


def _table_rows(record):
    faces = record["faces"]
    if record.get("error"):
        return [[record["path"], "-", "ERROR", "", record["error"]]]
    if not faces:
        return [[record["path"], "-", "(no face)", "", ""]]
    rows = []
    for f in faces:
        if f["status"] == "too_small":
            label, conf = "too small", ""
        elif f["status"] == "uncertain":
            label, conf = "uncertain", f"{f['confidence']:.2f}"
        else:
            label, conf = f["label"], f"{f['confidence']:.2f}"
        top = " ".join(f"{k}:{v:.2f}" for k, v in f["top3"])
        rows.append([record["path"], _fmt_box(f["box"]), label, conf, top])
    return rows


def _print_table(records):
    header = ["file", "box (x,y,w,h)", "label", "conf", "top-3"]
    rows = [r for rec in records for r in _table_rows(rec)]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    widths[-1] = 0
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())


def csv_rows(records, labels):
    """CSV rows (labels, boxes, probabilities; never pixels)."""
    head = ["path", "face", "x", "y", "w", "h", "label", "confidence", "status"] + \
        [f"p_{lab}" for lab in labels] + ["error"]
    yield head
    for rec in records:
        if rec.get("error") or not rec["faces"]:
            yield [rec["path"], "", "", "", "", "", "", "", "error" if rec.get("error")
                   else "no_face"] + [""] * len(labels) + [rec.get("error") or ""]
            continue
        for i, f in enumerate(rec["faces"]):
            probs = f["probabilities"] or {}
            yield [rec["path"], i, *f["box"], f["label"] or "",
                   "" if f["confidence"] is None else f"{f['confidence']:.6f}", f["status"]] + \
                [f"{probs[lab]:.6f}" if lab in probs else "" for lab in labels] + [""]


def _out_path(out_dir, path, used):
    from pathlib import Path

    p = Path(path)
    ext = p.suffix.lower() if p.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
    name = f"{p.stem}.annotated{ext}"
    i = 1
    while name in used:
        i += 1
        name = f"{p.stem}.annotated-{i}{ext}"
    used.add(name)
    return Path(out_dir) / name


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--demo", is_flag=True, help="Run on the bundled astronaut photo.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: one record per file ({path, faces: [{box, label, confidence, "
                   "probabilities, top3, status}]}).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: one row per face.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write annotated images (boxes, labels, probability bars) to this folder.")
@click.option("--no-detect", is_flag=True,
              help="Treat each image as one already-cropped face (as in FER-2013 or CK+48).")
@click.option("-q", "--quiet", is_flag=True,
              help="No notes on stderr (such as 'no face found'); unreadable files are still "
                   "reported, one error line each.")
@predictor_options
@handle_errors
def predict(inputs, demo, as_json, as_csv, out_dir, no_detect, quiet, model, detector,
            landmarks, crop, min_size, min_face, min_confidence, threads, blur_faces):
    """Detect, align and classify every face in images or folders.

    Prints a table (file, face box, label, confidence, top-3). A face smaller
    than --min-face pixels is reported as 'too small' and one whose top
    probability is below --min-confidence as 'uncertain' (no label), rather
    than guessed. A folder stands for its image files, in subfolders too, in
    sorted order. Unreadable files and folders holding no image file give one
    error line each and the batch goes on; the exit code is 1 if any failed.
    Nothing is written unless --out is given.

    \b
    Example:
      classicfer predict --demo
      classicfer predict photos/ --json > faces.json
      classicfer predict crops/ --no-detect --csv
      classicfer predict group.jpg --detector mtcnn --out annotated/ --blur-faces
    """
    import csv
    import json
    import sys
    from pathlib import Path

    from ..exceptions import ConfigError

    if as_json and as_csv:
        raise ConfigError("choose one of --json and --csv")
    inputs = list(inputs)
    if demo:
        inputs.insert(0, str(demo_image()))
    if not inputs:
        raise click.UsageError("give at least one IMAGE or FOLDER (or --demo)")
    predictor = make_predictor(model, detector, landmarks, crop, min_size, min_face,
                               min_confidence, threads, detect=not no_detect)
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    records, failed, used = [], 0, set()
    for path, err in expand_inputs(inputs):
        rec = None
        if err is None:
            rec, err = _predict_one(predictor, path, out_dir, used, blur_faces)
        if err is not None:
            failed += 1
            click.echo(f"Error: {err}", err=True)
            rec = {"path": str(path), "faces": [], "error": err}
        elif not rec["faces"] and not quiet:
            hint = (" (blazeface's single pass finds faces of at least 1/8 of the image; "
                    "for smaller faces pass --min-size 40 or --detector mtcnn)"
                    if predictor.detector == "blazeface" and predictor.min_size is None else "")
            click.echo(f"warning: {path}: no face found{hint}", err=True)
        records.append(rec)
    if as_json:
        click.echo(json.dumps(records, indent=2))
    elif as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        for row in csv_rows(records, predictor.labels):
            w.writerow(row)
    else:
        _print_table(records)
    if failed:
        sys.exit(1)


def _predict_one(predictor, path, out_dir, used, blur_faces):
    """``(record, None)`` for one image, or ``(None, error line)`` when it cannot be processed.

    With ``out_dir`` the annotated copy of the image is written there.
    """
    from ..exceptions import ClassicferError
    from ..runtime._decode import decode_image

    try:
        img = decode_image(path)
        rec = predictor.predict_record(img, path)
        if out_dir:
            _save_annotated(img, predictor, rec, _out_path(out_dir, path, used), blur_faces)
    except ClassicferError as e:
        return None, str(e)
    except MemoryError:
        return None, f"{path}: image too large to process (out of memory)"
    return rec, None


def _save_annotated(img, predictor, rec, out_path, blur):
    from ..imageio import as_uint8_image
    from ..runtime._draw import annotate
    from ..runtime._predict import FaceResult

    faces = [FaceResult(tuple(f["box"]), f["label"], f["confidence"], f["probabilities"],
                        f["status"]) for f in rec["faces"]]
    ann = annotate(as_uint8_image(img), faces, predictor.labels, blur=blur)
    from PIL import Image

    Image.fromarray(ann).save(out_path, quality=92)
