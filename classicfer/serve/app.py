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
    Labels, a model card summary and library versions.
``GET /``
    The kiosk page (camera -> ``/predict`` -> boxes, labels, probability bars).
    Every asset is served from ``/static``; nothing is fetched from the internet.

Errors are JSON, ``{"error": <code>, "message": <one line>, "status": <int>}``:
400 not an image / malformed request, 413 body or image too large, 415 wrong
content type, 503 too many requests in flight (retry later).

Safety
------
- Request bodies are read into memory up to ``max_upload_bytes`` and never
  written to disk (multipart forms are parsed in memory too); nothing about a
  request is logged.
- Decoded images are limited to ``max_pixels`` (checked from the header,
  before decoding).
- At most ``workers`` images are decoded and classified at once (one predictor
  per worker thread) and at most ``max_pending`` requests are admitted at once;
  the rest get 503, so a burst cannot exhaust memory.
"""

from __future__ import annotations

import io
import json
import logging
import math
import platform
import queue
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import resources

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..exceptions import ClassicferError, ImageError

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
    """

    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    workers: int = 2
    max_pending: int = 16
    body_timeout: float = 15.0

    def __post_init__(self):
        from ..exceptions import ConfigError

        if not isinstance(self.body_timeout, (int, float)) or not self.body_timeout > 0:
            raise ConfigError(f"body_timeout must be a positive number of seconds, got "
                              f"{self.body_timeout!r}")
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
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
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


def _error_response(status: int, code: str, message: str, headers=None) -> JSON:
    h = {"Cache-Control": "no-store"}
    h.update(headers or {})
    return JSON({"error": code, "message": message, "status": status}, status_code=status,
                headers=h)


# --------------------------------------------------------------------------- helpers
def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _is_image_type(mt: str) -> bool:
    return mt.startswith("image/") or mt in RAW_TYPES


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    try:
        with anyio.fail_after(timeout):
            return await _read_body_now(request, limit)
    except TimeoutError:
        raise ApiError(408, "timeout", f"the request body did not arrive within {timeout:g} s; "
                       f"send the whole image at once", headers={"Connection": "close"}) from None


async def _read_body_now(request: Request, limit: int) -> bytes:
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length is not a number: {cl!r}") from None
        if n > limit:
            raise ApiError(413, "too_large", f"request body is {n:,} bytes, above the limit of "
                           f"{limit:,} bytes; send a smaller image (e.g. a 640x480 JPEG)")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, "too_large", f"request body is above the limit of {limit:,} "
                           f"bytes; send a smaller image (e.g. a 640x480 JPEG)")
    return bytes(buf)


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


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("classicfer", "numpy", "onnxruntime", "opencv-contrib-python-headless",
                 "pillow", "starlette", "uvicorn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


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
    path = getattr(model, "path", None)
    detector = getattr(predictor, "detector", None)
    if detector is not None and not isinstance(detector, str):
        detector = getattr(detector, "method", None) or type(detector).__name__
    thresholds = {k: getattr(predictor, k) for k in ("min_confidence", "min_face", "min_size")
                  if isinstance(getattr(predictor, k, None), (int, float))}
    return {"labels": [str(x) for x in labels],
            "model": {k: v for k, v in card.items() if v is not None},
            "path": str(path) if path is not None else None,
            "detector": detector, "thresholds": thresholds}


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
        self.versions = _versions()

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
        except (OSError, ValueError, SyntaxError, EOFError):
            return  # not an image at all: read_image says so in its own words
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


def _static_dir():
    return resources.files("classicfer.serve").joinpath(_STATIC)


def create_app(predictor=None, *, model=None, detector: str = "blazeface",
               limits: ServeLimits | None = None, rate: float = 5.0, **limit_kwargs):
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
                body = await _read_body(request, limits.max_upload_bytes, limits.body_timeout)
                data, filename, ptype = _parse_multipart(body, request.headers["content-type"])
                del body
                if not _is_image_type(ptype):
                    raise ApiError(415, "unsupported_type",
                                   f"the uploaded part is {ptype!r}, expected an image "
                                   f"(image/jpeg, image/png, ...)")
                name = filename or "upload"
            elif ctype and _is_image_type(ctype):
                data = await _read_body(request, limits.max_upload_bytes, limits.body_timeout)
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

    async def api_error(request: Request, exc: ApiError):
        return _error_response(exc.status, exc.code, exc.message, exc.headers)

    async def http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def classicfer_error(request: Request, exc: ClassicferError):
        return _error_response(400, "bad_input", str(exc))

    async def server_error(request: Request, exc: Exception):
        # The traceback goes to the log (it holds no request data); the client gets a line.
        log.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(500, "internal", "internal server error (see the server log)")

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/model", model_info, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(_static_dir())), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={
        ApiError: api_error, HTTPException: http_error, ClassicferError: classicfer_error,
        Exception: server_error})
    app.add_middleware(_SecurityHeaders)
    app.state.service = service
    app.state.limits = limits
    return app


class _SecurityHeaders:
    """Pure ASGI middleware: no third-party content, no sniffing, camera for this origin."""

    CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
           "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
           "base-uri 'none'; frame-ancestors 'none'")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", self.CSP.encode()),
                            (b"permissions-policy", b"camera=(self), microphone=()")]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_wrapper)


__all__ = ["ApiError", "ServeLimits", "create_app"]
