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
@click.option("--header-timeout", default=5.0, show_default=True,
              type=click.FloatRange(0.1, 300),
              help="Seconds a connection may take to send its request line and headers; idle "
                   "or slower connections are closed (408 when part of a request came).")
@click.option("--body-timeout", default=15.0, show_default=True,
              type=click.FloatRange(0.1, 3600),
              help="Seconds a request body may take to arrive (408 after).")
@click.option("--min-body-rate", default=8.0, show_default=True,
              type=click.FloatRange(0, 1024 * 1024),
              help="KiB/s a request body must keep up after its first 2 s (408 below), so "
                   "trickling senders cannot hold the --max-pending slots; 0 turns it off.")
@click.option("--max-connections", default=256, show_default=True,
              type=click.IntRange(4, 65536),
              help="Open connections at most. Over it a new connection closes the "
                   "longest-idle one; if every one has a request in progress it gets 503.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name (repeatable; '*' for any). "
                   "Accepted anyway: the --host address, localhost/127.0.0.1/[::1] on a "
                   "loopback or 0.0.0.0 bind, and the IP address a request arrives on. Other "
                   "names get 421, so web pages elsewhere cannot reach the API (DNS "
                   "rebinding).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log one line per request (method, path, status; never the image).")
@predictor_options
@handle_errors
def serve(host, port, workers, max_pending, max_upload_mb, max_pixels, rate, header_timeout,
          body_timeout, min_body_rate, max_connections, allowed_hosts, access_log, model,
          detector, landmarks, crop, min_size, min_face, min_confidence, threads):
    """Serve the model over HTTP: POST /predict, GET /health, GET /model, kiosk page at /.

    Needs the serve extra: pip install 'classicfer[serve]'. Images are kept in memory only;
    nothing about a request is written to disk or to the log. Errors are JSON. Idle and
    slow clients are cut off (--header-timeout, --body-timeout, --min-body-rate), so a few
    of them cannot lock the kiosk out; requests naming another Host get 421.

    \b
    Example:
      classicfer serve                       # then open http://127.0.0.1:8000/
      curl -s -H 'Content-Type: image/jpeg' --data-binary @face.jpg \\
           http://127.0.0.1:8000/predict
      curl -s -F image=@face.jpg http://127.0.0.1:8000/predict
    """
    missing = missing_serve_extra()
    if missing:
        raise click.ClickException(
            f"classicfer serve needs the serve extra ({missing} is not installed): "
            f"pip install 'classicfer[serve]'")
    import uvicorn

    from ..serve import ServeLimits, allowed_hosts_for, create_app
    from ..serve.server import make_config

    limits = ServeLimits(max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                         max_pixels=max_pixels, workers=workers,
                         max_pending=max(max_pending, workers), body_timeout=body_timeout,
                         min_body_rate=int(min_body_rate * 1024))
    _single_thread_libraries()
    # One predictor per worker, built exactly as `classicfer predict` builds its own, so
    # /predict answers the same record as `predict --json` for the same options.
    predictors = [make_predictor(model, detector, landmarks, crop, min_size, min_face,
                                 min_confidence, threads) for _ in range(workers)]
    app = create_app(predictors, limits=limits, rate=rate,
                     allowed_hosts=allowed_hosts_for(host, allowed_hosts))
    if host not in LOOPBACK:
        warn(f"Warning: serving on {host}: anyone who can reach this address can send images. "
             f"Browsers allow the camera page only on localhost or over https. Clients "
             f"that use a host name (not an IP address) need --allowed-host NAME.")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"classicfer serve: http://{shown}:{port}/ (kiosk), POST /predict, GET /health, "
               f"GET /model; Ctrl+C stops", err=True)
    config = make_config(app, host, port, header_timeout=header_timeout,
                         max_connections=max_connections, access_log=access_log)
    uvicorn.Server(config).run()


def missing_serve_extra() -> str | None:
    """The first package of the serve extra that is not installed, or None.

    Only the optional packages are looked up (without importing them), so an error
    inside classicfer's own serve modules is raised as it is, not reported as a
    missing extra.
    """
    from importlib.util import find_spec

    for module in ("starlette", "uvicorn"):
        if find_spec(module) is None:
            return module
    if find_spec("python_multipart") is None and find_spec("multipart") is None:
        return "python-multipart"
    return None


def _single_thread_libraries():
    # Each worker thread runs one image; inner thread pools would only fight for the cores.
    import cv2  # a dependency of classicfer, always installed

    cv2.setNumThreads(1)


# Saving annotated images does not apply to an API that only answers JSON.
serve.params = [p for p in serve.params if p.name != "blur_faces"]
