"""``classicfer watch``: live expressions from a camera or a video file."""

from __future__ import annotations

import click

from ._common import handle_errors
from ._runtime_opts import make_predictor, predictor_options


@click.command()
@click.option("--camera", type=click.IntRange(0), default=None, metavar="N",
              help="Camera index (0 = the first camera).")
@click.option("--video", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Video file to read instead of a camera.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the annotated video here (.mp4).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write one row per face per frame here (labels and boxes, never pixels).")
@click.option("--show", is_flag=True, help="Show a window (when a display exists).")
@click.option("--smooth", "smoothing", default="ema:0.3", show_default=True,
              help="Temporal smoothing of each tracked face's probabilities: "
                   "'ema:ALPHA', 'window:N' or 'none'.")
@click.option("--notice", default=None,
              help="On-screen notice text (default: 'Emotion recognition is active on this "
                   "camera').")
@click.option("--max-frames", type=click.IntRange(1), default=None,
              help="Stop after this many frames.")
@click.option("--max-faces", type=click.IntRange(1), default=None,
              help="Track at most this many faces (the largest).")
@click.option("--full-scan-every", type=click.IntRange(1), default=10, show_default=True,
              help="Detect on the whole frame every N frames (new faces appear within N "
                   "frames); in between only around tracked faces. 1 = every frame.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
@predictor_options
@handle_errors
def watch(camera, video, out, csv_path, show, smoothing, notice, max_frames, max_faces,
          full_scan_every, quiet,
          model, detector, landmarks, crop, min_size, min_face, min_confidence, threads,
          blur_faces):
    """Live expressions from a camera or video, with face tracking and smoothing.

    Every frame: detect faces, follow each one with an IoU tracker, smooth its
    probabilities over time, draw boxes, labels, an FPS readout and a visible
    notice that emotion recognition is active. Nothing is written unless --out
    or --csv is given; when the video ends or the camera disconnects, the
    outputs written so far are closed cleanly.

    \b
    Example:
      classicfer watch --camera 0 --show
      classicfer watch --video clip.mp4 --out annotated.mp4 --csv per-frame.csv
      classicfer watch --video clip.mp4 --csv faces.csv --smooth window:8 --blur-faces
    """
    from ..runtime._watch import parse_smoothing
    from ..runtime._watch import watch as run
    from ._common import warn

    if camera is None and video is None:
        raise click.UsageError("give --camera N or --video FILE")
    if camera is not None and video is not None:
        raise click.UsageError("give only one of --camera and --video")
    parse_smoothing(smoothing)  # fail early on a bad spec
    predictor = make_predictor(model, detector, landmarks, crop, min_size, min_face,
                               min_confidence, threads, max_faces=max_faces)
    stats = run(predictor, camera=camera, video=video, out=out, csv=csv_path, show=show,
                smoothing=smoothing, notice=notice, blur=blur_faces, max_frames=max_frames,
                full_scan_every=full_scan_every, log=warn)
    if not quiet:
        click.echo(f"{stats['source']}: {stats['frames']} frames, {stats['faces']} face "
                   f"detections, {stats['tracks']} tracks, {stats['fps']:.1f} fps "
                   f"({stats['ended']})" + (f"; video: {out}" if out else "")
                   + (f"; csv: {csv_path}" if csv_path else "")
                   + ("" if (out or csv_path or show) else
                      "; nothing saved or shown (use --out, --csv or --show)"))
