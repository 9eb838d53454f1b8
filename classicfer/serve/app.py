"""The ``classicfer serve`` HTTP API and kiosk page (a Starlette ASGI app).

Endpoints
---------
``POST /predict``
    An image as the raw request body (``Content-Type: image/jpeg``, ``image/png``,
    ... or ``application/octet-stream``) or as a multipart form upload (field
    ``image`` or ``file``). Answers the same JSON record as
    ``classicfer predict --json``: ``{"path": ..., "faces": [...]}``.
``GET /health``
    ``{"status": "ok", ...}`` once the model is loaded.
``GET /model``
    Labels, a model card summary (the model folder by name only, never its path on
    this computer) and library versions.
``GET /``
    The kiosk page (camera -> ``/predict`` -> boxes, labels, probability bars).
    Every asset is served from ``/static``; nothing is fetched from the internet.

Errors are JSON, ``{"error": <code>, "message": <one line>, "status": <int>}``, with
the same security headers as every other answer: 400 not an image / malformed
request, 408 request too slow, 413 body or image too large, 415 wrong content type,
421 a ``Host`` this server was not started for, 500 internal error, 503 too many
requests in flight (retry later).

Safety
------
- Request bodies are read into memory up to ``max_upload_bytes`` and never
  written to disk (multipart forms are parsed in memory too); nothing about a
  request is logged (the multipart parser's own diagnostics, which quote body
  bytes, are muted).
- A body must arrive within ``body_timeout`` seconds, and after a grace of
  ``BODY_GRACE`` seconds at no less than ``min_body_rate`` bytes/s; slower senders
  get 408 and lose their admission slot.
- ``allowed_hosts`` (set by ``classicfer serve`` from ``--host`` and
  ``--allowed-host``) rejects requests whose ``Host`` names another site, so a web
  page elsewhere cannot reach the API through DNS rebinding.
- Decoded images are limited to ``max_pixels`` (checked from the header,
  before decoding).
- At most ``workers`` images are decoded and classified at once (one predictor
  per worker thread) and at most ``max_pending`` requests are admitted at once;
  the rest get 503, so a burst cannot exhaust memory.
- Connection-level limits (request-header deadline, connection cap) live in
  :mod:`classicfer.serve.server`, which runs this app under uvicorn.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import math
import queue
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import resources

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..exceptions import ClassicferError, ImageError
from ..provenance import versions

try:  # python-multipart >= 0.0.13
    import python_multipart as _multipart
    from python_multipart.multipart import parse_options_header
except ImportError:  # pragma: no cover - older python-multipart
    import multipart as _multipart
    from multipart.multipart import parse_options_header

log = logging.getLogger("classicfer.serve")

#: Content types accepted as a raw request body (besides any ``image/*``).
RAW_TYPES = ("application/octet-stream",)
#: Multipart field names searched for the image, in order.
FILE_FIELDS = ("image", "file")
MAX_PARTS = 8
#: Seconds a request body may take before ``min_body_rate`` applies.
BODY_GRACE = 2.0
#: Headers added to every HTTP answer, errors included.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"),
    "Permissions-Policy": "camera=(self), microphone=()",
}
#: Host names always accepted by a server bound to a loopback or wildcard address.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class _Muted:
    """Stands in for python-multipart's logger, which quotes bytes of the body.

    Nothing about a request may reach the logs.
    """

    def _drop(self, *args, **kwargs):
        return None

    debug = info = warning = error = exception = critical = _drop


_MUTED = _Muted()


@dataclass(frozen=True)
class ServeLimits:
    """Limits applied to every request.

    Parameters
    ----------
    max_upload_bytes : int
        Largest request body accepted (413 above).
    max_pixels : int
        Largest image accepted, width x height (413 above), checked before decoding.
    workers : int
        Images decoded and classified at once (one predictor each).
    max_pending : int
        Requests admitted at once, including those reading their body or waiting for a
        worker; further requests get 503 at once.
    body_timeout : float
        Seconds allowed to receive a request body (408 after), so slow senders cannot
        hold the admitted slots.
    min_body_rate : int
        Bytes per second a body must keep up after the first ``BODY_GRACE`` seconds
        (408 below), so a trickling sender loses its slot within seconds; 0 turns the
        check off.
    """

    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    workers: int = 2
    max_pending: int = 16
    body_timeout: float = 15.0
    min_body_rate: int = 8 * 1024

    def __post_init__(self):
        from ..exceptions import ConfigError

        if not isinstance(self.body_timeout, (int, float)) or not self.body_timeout > 0:
            raise ConfigError(f"body_timeout must be a positive number of seconds, got "
                              f"{self.body_timeout!r}")
        if not isinstance(self.min_body_rate, int) or self.min_body_rate < 0:
            raise ConfigError(f"min_body_rate must be a whole number of bytes/s >= 0, got "
                              f"{self.min_body_rate!r}")
        for name in ("max_upload_bytes", "max_pixels", "workers", "max_pending"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.max_pending < self.workers:
            raise ConfigError(f"max_pending ({self.max_pending}) must be >= workers "
                              f"({self.workers})")


class ApiError(Exception):
    """An error answered as JSON with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _json_default(o):
    import numpy as np  # a dependency of classicfer, always installed

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _clean_floats(o):
    # JSON has no NaN/inf: send null (json.dumps would emit invalid JSON).
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean_floats(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean_floats(v) for v in o]
    return o


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        content = json.loads(json.dumps(content, default=_json_default))
        return json.dumps(_clean_floats(content), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")


def error_body(status: int, code: str, message: str) -> bytes:
    """The JSON body of an error answer.

    Parameters
    ----------
    status : int
        HTTP status.
    code : str
        Short machine-readable error code (``"busy"``, ``"timeout"``, ...).
    message : str
        One line for a person.

    Returns
    -------
    bytes
        ``{"error": code, "message": message, "status": status}`` as UTF-8 JSON.
    """
    return JSON({}).render({"error": code, "message": message, "status": status})


def _error_response(status: int, code: str, message: str, headers=None) -> JSON:
    h = {"Cache-Control": "no-store"}
    h.update(headers or {})
    return JSON({"error": code, "message": message, "status": status}, status_code=status,
                headers=h)


def error_app(status: int, code: str, message: str, headers=None):
    """An ASGI app that answers every request with one JSON error and the security headers.

    Used by :mod:`classicfer.serve.server` for answers given outside the app (a full
    server). The answer closes the connection.

    Parameters
    ----------
    status : int
        HTTP status.
    code, message : str
        The ``error`` code and the one-line ``message`` of the JSON body.
    headers : dict, optional
        More response headers (e.g. ``Retry-After``).

    Returns
    -------
    starlette.responses.Response
        A response object, which is itself an ASGI app and can be called repeatedly.
    """
    return _error_response(status, code, message,
                           {**(headers or {}), **SECURITY_HEADERS, "Connection": "close"})


# --------------------------------------------------------------------------- helpers
def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _is_image_type(mt: str) -> bool:
    return mt.startswith("image/") or mt in RAW_TYPES


def _too_large(limit: int, n: int | None = None) -> ApiError:
    size = f"{n:,} bytes, above" if n is not None else "above"
    return ApiError(413, "too_large", f"request body is {size} the limit of {limit:,} bytes; "
                    f"send a smaller image (e.g. a 640x480 JPEG)")


async def _read_body(request: Request, limits: ServeLimits) -> bytes:
    """The whole request body, within the size, time and rate limits.

    Raises ApiError 413 above ``max_upload_bytes``, 408 when the body takes longer than
    ``body_timeout`` or, after ``BODY_GRACE`` seconds, arrives slower than
    ``min_body_rate``; ClientDisconnect when the client goes away.
    """
    limit = limits.max_upload_bytes
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length is not a number: {cl!r}") from None
        if n > limit:
            raise _too_large(limit, n)
    buf = bytearray()
    t0 = anyio.current_time()
    while True:
        due, slow = _body_deadline(t0, len(buf), limits)
        message = None
        with anyio.move_on_after(due - anyio.current_time()):
            message = await request.receive()
        if message is None:
            raise _too_slow(limits, slow)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        buf += message.get("body", b"")
        if len(buf) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return bytes(buf)


def _body_deadline(t0: float, received: int, limits: ServeLimits) -> tuple[float, bool]:
    """When the next piece of body must have arrived, and whether the rate rule sets it."""
    due = t0 + limits.body_timeout
    if limits.min_body_rate:
        by_rate = t0 + BODY_GRACE + received / limits.min_body_rate
        if by_rate < due:
            return by_rate, True
    return due, False


def _too_slow(limits: ServeLimits, slow: bool) -> ApiError:
    if slow:
        why = (f"the request body arrived slower than {limits.min_body_rate:,} bytes/s")
    else:
        why = f"the request body did not arrive within {limits.body_timeout:g} s"
    return ApiError(408, "timeout", f"{why}; send the whole image at once",
                    headers={"Connection": "close"})


def _parse_multipart(body: bytes, content_type: str) -> tuple[bytes, str | None, str]:
    """Find the image part of a multipart form, in memory. Returns (data, filename, type)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart/form-data body without a boundary "
                       "parameter in its Content-Type")
    parts: list[dict] = []
    state = {"hname": b"", "hval": b""}

    def on_part_begin():
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, "bad_multipart", f"more than {MAX_PARTS} parts in the form; "
                           "send one image field")
        parts.append({"headers": {}, "data": bytearray()})

    def on_part_data(data, start, end):
        parts[-1]["data"] += data[start:end]

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hval"] += data[start:end]

    def on_header_end():
        parts[-1]["headers"][state["hname"].lower().decode("latin-1")] = \
            state["hval"].decode("latin-1")
        state["hname"], state["hval"] = b"", b""

    callbacks = {"on_part_begin": on_part_begin, "on_part_data": on_part_data,
                 "on_header_field": on_header_field, "on_header_value": on_header_value,
                 "on_header_end": on_header_end}
    try:
        parser = _multipart.MultipartParser(boundary, callbacks)
        parser.logger = _MUTED
        parser.write(body)
        parser.finalize()
    except (ValueError, IndexError, KeyError) as e:  # python-multipart's errors are ValueErrors
        raise ApiError(400, "bad_multipart", f"malformed multipart/form-data body "
                       f"({e.__class__.__name__})") from None

    chosen = None
    fields = []
    for p in parts:
        _, opts = parse_options_header(p["headers"].get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        fields.append(name)
        p["name"] = name
        p["filename"] = filename.decode("utf-8", "replace") if filename is not None else None
    for want in FILE_FIELDS:
        chosen = next((p for p in parts if p["name"] == want), None)
        if chosen:
            break
    if chosen is None:
        chosen = next((p for p in parts if p["filename"] is not None), None)
    if chosen is None:
        raise ApiError(400, "no_image", f"the form has no image field (fields: "
                       f"{', '.join(repr(f) for f in fields) or 'none'}); send the image as "
                       f"field 'image', e.g. curl -F image=@face.jpg")
    ptype = _media_type(chosen["headers"].get("content-type")) or "application/octet-stream"
    return bytes(chosen["data"]), chosen["filename"], ptype


#: packages whose versions the health endpoint reports (those installed)
VERSION_PACKAGES = ("classicfer", "numpy", "onnxruntime", "opencv-contrib-python-headless",
                    "pillow", "starlette", "uvicorn")


def _model_info(predictor) -> dict:
    """Labels and a model card summary from a Predictor (or anything shaped like one)."""
    model = getattr(predictor, "model", None)
    side = getattr(model, "sidecar", None) or getattr(predictor, "sidecar", None) or {}
    labels = (getattr(model, "labels", None) or getattr(predictor, "labels", None)
              or side.get("labels") or [])
    onnx_meta = side.get("onnx") or {}
    card = {
        "name": getattr(model, "name", None) or side.get("name"),
        "kind": getattr(model, "kind", None) or side.get("kind"),
        "input": side.get("input"),
        "features": side.get("features"),
        "temperature": side.get("temperature"),
        "sha256": onnx_meta.get("sha256"),
        "training": side.get("training"),
        "metrics": side.get("metrics"),
    }
    path = getattr(model, "path", None) or getattr(predictor, "path", None)
    detector = getattr(predictor, "detector", None)
    if detector is not None and not isinstance(detector, str):
        detector = getattr(detector, "method", None) or type(detector).__name__
    thresholds = {k: getattr(predictor, k) for k in ("min_confidence", "min_face", "min_size")
                  if isinstance(getattr(predictor, k, None), (int, float))}
    return {"labels": [str(x) for x in labels],
            "model": {k: v for k, v in card.items() if v is not None},
            "folder": _folder_name(path), "detector": detector, "thresholds": thresholds}


# --------------------------------------------------------------------------- the app
class _Service:
    def __init__(self, predictors, limits: ServeLimits):
        self.limits = limits
        self.pool: queue.SimpleQueue = queue.SimpleQueue()
        for p in predictors:
            self.pool.put(p)
        self.limiter = anyio.CapacityLimiter(limits.workers)
        self.in_flight = 0
        self.served = 0
        self.started = time.time()
        self.info = _model_info(predictors[0])
        self.versions = versions(VERSION_PACKAGES)

    def check_pixels(self, data: bytes) -> None:
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    w, h = im.size
        except Image.DecompressionBombError:
            raise ApiError(413, "too_many_pixels", "image has more pixels than Pillow allows "
                           "(decompression bomb); send a smaller image") from None
        except Exception:  # noqa: BLE001 (a corrupt header can make a plugin raise anything)
            return  # not a readable image: read_image says so in its own words
        if w * h > self.limits.max_pixels:
            raise ApiError(413, "too_many_pixels",
                           f"image is {w}x{h} = {w * h:,} pixels, above the limit of "
                           f"{self.limits.max_pixels:,}; send a smaller image")

    def predict(self, data: bytes, name: str) -> dict:
        from ..imageio import read_image

        self.check_pixels(data)
        try:
            image = read_image(data)
        except ImageError as e:
            msg = str(e).replace("<bytes>: ", "")
            raise ApiError(400, "not_an_image", f"upload: {msg}; send a JPEG, PNG, BMP, WebP "
                           f"or TIFF image") from None
        predictor = self.pool.get()
        try:
            return predictor.predict_record(image, name)
        finally:
            self.pool.put(predictor)


_STATIC = "static"


def _folder_name(path) -> str | None:
    # Only the last component: the folder's absolute path would tell every client the
    # user name and layout of this computer.
    if path is None:
        return None
    name = str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name or None


def _static_dir():
    return resources.files("classicfer.serve").joinpath(_STATIC)


def create_app(predictor=None, *, model=None, detector: str = "blazeface",
               limits: ServeLimits | None = None, rate: float = 5.0, allowed_hosts=None,
               **limit_kwargs):
    """Build the ASGI app.

    Parameters
    ----------
    predictor : object or list of objects, optional
        Anything with ``predict_record(image, path) -> dict`` (a
        :class:`classicfer.runtime.Predictor`). A list gives one predictor per worker;
        a single object, or a list shorter than ``limits.workers``, is shared between
        workers (it must then be thread-safe, as ``Predictor`` is). By default
        ``limits.workers`` predictors are built from ``model`` and ``detector``.
    model : str or Path, optional
        Model folder (default: the bundled model or ``$CLASSICFER_MODEL``).
    detector : str
        Face detector method (``blazeface``, ``haar``, ``dlib-hog``, ``dlib-cnn``,
        ``mtcnn``).
    limits : ServeLimits, optional
        Request limits; keyword arguments (``max_upload_bytes=...``) override fields.
    rate : float
        Default frames per second the kiosk page sends (changeable on the page).
    allowed_hosts : iterable of str, optional
        Host names (``Host`` header, port ignored) the app answers; any other gets a
        JSON 421, which stops DNS-rebinding pages. An IP address equal to the address
        the connection arrived on is always accepted; ``"*"`` accepts any host. None
        (the default, for embedding and tests) checks nothing; ``classicfer serve``
        passes :func:`allowed_hosts_for` its ``--host`` and ``--allowed-host``.

    Raises
    ------
    ModelError, ConfigError
        The model cannot be loaded or an option is invalid (before any request).
    """
    from ..exceptions import ConfigError

    limits = limits or ServeLimits()
    if limit_kwargs:
        limits = ServeLimits(**{**asdict(limits), **limit_kwargs})
    if not (isinstance(rate, (int, float)) and 0 < rate <= 30):
        raise ConfigError(f"rate must be a number of frames per second in (0, 30], got {rate!r}")
    if predictor is None:
        from ..runtime import Predictor

        predictors = [Predictor(model=model, detector=detector) for _ in range(limits.workers)]
    elif isinstance(predictor, (list, tuple)):
        if not predictor:
            raise ConfigError("predictor list is empty")
        predictors = list(predictor)
    else:
        predictors = [predictor]
    # Predictors are thread-safe (per-thread detectors, one onnxruntime session), so a
    # shorter list is repeated to give every worker one.
    predictors = (predictors * limits.workers)[:max(len(predictors), limits.workers)]
    service = _Service(predictors, limits)

    async def predict(request: Request):
        if service.in_flight >= limits.max_pending:
            raise ApiError(503, "busy", f"{service.in_flight} requests are already in flight "
                           f"(limit {limits.max_pending}); retry shortly",
                           headers={"Retry-After": "1"})
        service.in_flight += 1
        try:
            ctype = _media_type(request.headers.get("content-type"))
            if ctype == "multipart/form-data":
                body = await _read_body(request, limits)
                data, filename, ptype = _parse_multipart(body, request.headers["content-type"])
                del body
                if not _is_image_type(ptype):
                    raise ApiError(415, "unsupported_type",
                                   f"the uploaded part is {ptype!r}, expected an image "
                                   f"(image/jpeg, image/png, ...)")
                name = filename or "upload"
            elif ctype and _is_image_type(ctype):
                data = await _read_body(request, limits)
                name = "upload"
            else:
                raise ApiError(415, "unsupported_type",
                               f"Content-Type {ctype or '(none)'!r} is not accepted; send the "
                               f"image bytes with Content-Type image/jpeg (or image/png, "
                               f"application/octet-stream), or a multipart form with field "
                               f"'image'")
            if not data:
                raise ApiError(400, "empty", "the request carries no image (0 bytes)")
            t0 = time.perf_counter()
            record = await anyio.to_thread.run_sync(service.predict, data, name,
                                                    limiter=service.limiter)
            dt = time.perf_counter() - t0
            service.served += 1
            return JSON(record, headers={"Cache-Control": "no-store",
                                         "Server-Timing": f"predict;dur={dt * 1000:.1f}"})
        finally:
            service.in_flight -= 1

    async def health(request: Request):
        return JSON({"status": "ok", "uptime_s": round(time.time() - service.started, 1),
                     "in_flight": service.in_flight, "served": service.served,
                     "workers": limits.workers}, headers={"Cache-Control": "no-store"})

    async def model_info(request: Request):
        return JSON({**service.info, "limits": asdict(limits), "versions": service.versions})

    index_html = _static_dir().joinpath("index.html").read_text(encoding="utf-8")
    index_html = index_html.replace("__RATE__", f"{float(rate):g}")

    async def index(request: Request):
        return HTMLResponse(index_html, headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/model", model_info, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(_static_dir())), name="static"),
    ]
    app = _App(routes=routes, exception_handlers=_EXCEPTION_HANDLERS)
    app.allowed_hosts = _host_set(allowed_hosts)
    app.state.service = service
    app.state.limits = limits
    return app


async def _api_error(request: Request, exc: ApiError):
    return _error_response(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(request: Request, exc: HTTPException):
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _classicfer_error(request: Request, exc: ClassicferError):
    return _error_response(400, "bad_input", str(exc))


async def _client_gone(request: Request, exc: ClientDisconnect):
    # Nobody is left to answer: one line, no traceback (it is not a server fault).
    log.info("a client disconnected before its request was complete; request dropped")
    return Response(status_code=400)


async def _server_error(request: Request, exc: Exception):
    # The traceback goes to the log (it holds no request data); the client gets a line.
    log.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(500, "internal", "internal server error (see the server log)")


_EXCEPTION_HANDLERS = {ApiError: _api_error, HTTPException: _http_error,
                       ClassicferError: _classicfer_error, ClientDisconnect: _client_gone,
                       Exception: _server_error}


# --------------------------------------------------------------------------- hosts
def _bare_host(value: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"Example.com.:80"`` -> ``"example.com"``."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host_set(hosts) -> frozenset | None:
    if hosts is None:
        return None
    if isinstance(hosts, str):
        hosts = [hosts]
    return frozenset(_bare_host(h) for h in hosts if h.strip())


def allowed_hosts_for(bind_host: str, extra=()) -> list[str]:
    """The ``Host`` names a server bound to ``bind_host`` should answer.

    Parameters
    ----------
    bind_host : str
        The address the server listens on (``--host``).
    extra : iterable of str
        More names to accept (``--allowed-host``), e.g. this computer's name on the
        network; ``"*"`` accepts any.

    Returns
    -------
    list of str
        The bound host itself; for a loopback (``127.0.0.1``, ``localhost``, ``::1``)
        or wildcard (``0.0.0.0``, ``::``) bind also ``localhost``, ``127.0.0.1`` and
        ``::1``; then ``extra``. (Requests by IP address to the address they arrived on
        are accepted by the app in any case.)
    """
    host = _bare_host(bind_host)
    names = [host]
    if host == "localhost" or host in ("0.0.0.0", "::") or (
            _is_ip(host) and ipaddress.ip_address(host).is_loopback):
        names += LOOPBACK_NAMES
    names += [_bare_host(h) for h in extra if h.strip()]
    return list(dict.fromkeys(n for n in names if n not in ("0.0.0.0", "::")))


def _host_allowed(scope, allowed: frozenset | None) -> tuple[bool, str]:
    if allowed is None or "*" in allowed:
        return True, ""
    raw = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"")
    host = _bare_host(raw.decode("latin-1"))
    if host in allowed:
        return True, host
    server = scope.get("server") or (None,)
    return bool(host) and _is_ip(host) and host == _bare_host(str(server[0])), host


# --------------------------------------------------------------------------- outer layer
class _App(Starlette):
    """Starlette with :class:`_Guard` outside everything, its error middleware included."""

    allowed_hosts: frozenset | None = None

    def build_middleware_stack(self):
        return _Guard(super().build_middleware_stack(), self.allowed_hosts)


class _Guard:
    """Outermost ASGI layer: Host check, security headers on every answer, JSON 500s.

    Starlette's error middleware answers an unhandled exception (through
    ``_server_error``, which logs it once) and then re-raises it for the server to log
    again; here it ends, so one traceback is logged and the client gets JSON.
    """

    def __init__(self, app, allowed_hosts: frozenset | None):
        self.app, self.allowed = app, allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_wrapper(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *_SEC_RAW]}
            await send(message)

        ok, host = _host_allowed(scope, self.allowed)
        if not ok:
            shown = repr(host[:100]) if host else "(none)"
            return await _error_response(
                421, "bad_host", f"Host {shown} is not served here; open this server by the "
                f"address it was started on, or start it with --allowed-host NAME",
                {"Connection": "close"})(scope, receive, send_wrapper)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:  # noqa: BLE001 (answered and logged once by _server_error)
            if not started:
                await _error_response(500, "internal", "internal server error (see the "
                                      "server log)")(scope, receive, send_wrapper)


_SEC_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]


__all__ = ["ApiError", "ServeLimits", "allowed_hosts_for", "create_app", "error_app",
           "error_body"]
