"""``classicfer serve``: the HTTP API and kiosk page (needs the ``serve`` extra)."""

from __future__ import annotations

import click

from ._common import handle_errors, warn
from ._runtime_opts import make_predictor, predictor_options

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. The default answers only this computer; 0.0.0.0 opens "
                   "the API to the network.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0 picks a free one).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Images decoded and classified at once (worker threads).")
@click.option("--max-pending", default=16, show_default=True, type=click.IntRange(1, 4096),
              help="Requests admitted at once; more get 503 (retry).")
@click.option("--max-upload-mb", default=10.0, show_default=True,
              type=click.FloatRange(0.01, 1024), help="Largest request body, in MiB (413 above).")
@click.option("--max-pixels", default=4096 * 4096, show_default=True,
              type=click.IntRange(1, None), help="Largest image, width x height (413 above).")
@click.option("--rate", default=5.0, show_default=True, type=click.FloatRange(0.5, 30),
              help="Frames per second the kiosk page sends by default.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log one line per request (method, path, status; never the image).")
@predictor_options
@handle_errors
def serve(host, port, workers, max_pending, max_upload_mb, max_pixels, rate, access_log, model,
          detector, landmarks, crop, min_size, min_face, min_confidence, threads):
    """Serve the model over HTTP: POST /predict, GET /health, GET /model, kiosk page at /.

    Needs the serve extra: pip install 'classicfer[serve]'. Images are kept in memory only;
    nothing about a request is written to disk or to the log.

    \b
    Example:
      classicfer serve                       # then open http://127.0.0.1:8000/
      curl -s -H 'Content-Type: image/jpeg' --data-binary @face.jpg \\
           http://127.0.0.1:8000/predict
      curl -s -F image=@face.jpg http://127.0.0.1:8000/predict
    """
    try:
        import uvicorn

        from ..serve import ServeLimits, create_app
    except ImportError as e:
        raise click.ClickException(
            f"classicfer serve needs the serve extra ({e.name} is not installed): "
            f"pip install 'classicfer[serve]'") from None

    limits = ServeLimits(max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                         max_pixels=max_pixels, workers=workers,
                         max_pending=max(max_pending, workers))
    _single_thread_libraries()
    # One predictor per worker, built exactly as `classicfer predict` builds its own, so
    # /predict answers the same record as `predict --json` for the same options.
    predictors = [make_predictor(model, detector, landmarks, crop, min_size, min_face,
                                 min_confidence, threads) for _ in range(workers)]
    app = create_app(predictors, limits=limits, rate=rate)
    if host not in LOOPBACK:
        warn(f"Warning: serving on {host}: anyone who can reach this address can send images. "
             f"Browsers allow the camera page only on localhost or over https.")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"classicfer serve: http://{shown}:{port}/ (kiosk), POST /predict, GET /health, "
               f"GET /model; Ctrl+C stops", err=True)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level="info",
                            server_header=False, limit_concurrency=max(4 * max_pending, 64),
                            timeout_keep_alive=5, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()


def _single_thread_libraries():
    # Each worker thread runs one image; inner thread pools would only fight for the cores.
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


# Saving annotated images does not apply to an API that only answers JSON.
serve.params = [p for p in serve.params if p.name != "blur_faces"]
