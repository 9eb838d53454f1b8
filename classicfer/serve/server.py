"""Run the serve app under uvicorn with connection-level limits.

uvicorn on its own keeps a connection that never sends a request open for ever, and
its ``limit_concurrency`` counts such connections: a few dozen idle sockets then get
every request, ``/health`` included, a plain-text 503. :class:`GuardedH11Protocol`
(uvicorn's h11 protocol, subclassed) replaces that with:

- a deadline for the request line and headers (``header_timeout`` s from the
  connection or from the first byte of a kept-alive request): idle or slow
  connections are closed, with a JSON 408 when part of a request had arrived;
- a backstop for request bodies the app does not read (``body_timeout`` + 1 s);
- a cap on open connections (``max_connections``): a new connection over the cap
  closes the longest-idle connection (one with no request in the app); only when
  every connection has a request in progress does the newcomer get a JSON 503;
- JSON answers, with the app's security headers, for malformed HTTP (400) as for
  every other error.

Admission of ``/predict`` work is the app's (``ServeLimits.max_pending``), so
uvicorn's ``limit_concurrency`` is not used.
"""

from __future__ import annotations

import copy
import http

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import SECURITY_HEADERS, error_app, error_body

#: Defaults of ``classicfer serve``.
HEADER_TIMEOUT = 5.0
MAX_CONNECTIONS = 256


def raw_error(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 JSON error answer that closes the connection.

    Parameters
    ----------
    status : int
        HTTP status.
    code, message : str
        The ``error`` code and the one-line ``message`` of the JSON body.

    Returns
    -------
    bytes
        Status line, headers (security headers included) and body.
    """
    body = error_body(status, code, message)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)),
               "Cache-Control": "no-store", "Connection": "close", **SECURITY_HEADERS}
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a connection cap and JSON errors.

    The class attributes are set by :func:`protocol_class`.
    """

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = 16.0
    max_connections: int = MAX_CONNECTIONS
    busy_app = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._timer = None
        self._phase = None  # "headers", "body" or None (the app or keep-alive rules)
        self._got_bytes = False
        self._idle_since = self.loop.time()

    # -- connection life
    def connection_made(self, transport):
        """Start the header deadline; past the cap, shed an idle connection or answer busy."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._shed_idle():
            self.app = self.busy_app  # every request in the app: this one is told to retry
        self._start("headers")

    def connection_lost(self, exc):
        """Cancel the deadline, then let uvicorn clean up."""
        self._stop()
        super().connection_lost(exc)

    def data_received(self, data):
        """Pass the bytes on; the next request on a kept-alive connection gets a new deadline."""
        if self._phase is None and self.conn.their_state is h11.IDLE:
            self._start("headers")  # first bytes of the next request on a kept-alive connection
        self._got_bytes = True
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self):
        """Record when the connection went idle (shedding picks idle ones); re-check deadlines."""
        self._idle_since = self.loop.time()
        super().on_response_complete()
        self._follow_state()

    def _should_upgrade(self):
        return False  # no WebSocket endpoint: an Upgrade request is answered as plain HTTP

    def send_400_response(self, msg):
        """Answer a malformed request with a JSON 400 and close the connection."""
        # uvicorn's own is text/plain; ``msg`` is uvicorn's fixed text, never request data.
        self.transport.write(raw_error(400, "bad_request", "invalid HTTP request; send a "
                                       "well-formed HTTP/1.1 request"))
        self.transport.close()

    # -- deadlines
    def _follow_state(self):
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._start("body")
        elif state is not h11.IDLE:
            self._stop()  # request complete: the app and uvicorn's keep-alive take over

    def _start(self, phase):
        self._stop()
        self._phase = phase
        if phase == "headers":
            self._got_bytes = False
        delay = self.header_timeout if phase == "headers" else self.body_timeout + 1.0
        self._timer = self.loop.call_later(delay, self._expired)

    def _stop(self):
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _expired(self):
        phase, got_bytes = self._phase, self._got_bytes
        self._timer, self._phase = None, None
        if self.transport.is_closing():
            return
        if phase == "headers" and got_bytes and self.conn.our_state is h11.IDLE:
            self.transport.write(raw_error(
                408, "timeout", f"the request headers did not arrive within "
                f"{self.header_timeout:g} s"))
        self.transport.close()

    # -- connection cap
    def _sheddable(self) -> bool:
        return (not self.transport.is_closing()
                and (self.cycle is None or self.cycle.response_complete))

    def _shed_idle(self) -> bool:
        idle = [c for c in self.connections
                if c is not self and isinstance(c, GuardedH11Protocol) and c._sheddable()]
        if not idle:
            return False
        min(idle, key=lambda c: c._idle_since).transport.close()
        return True


def protocol_class(*, header_timeout: float = HEADER_TIMEOUT, body_timeout: float = 15.0,
                   max_connections: int = MAX_CONNECTIONS) -> type:
    """A :class:`GuardedH11Protocol` subclass with these limits, for ``uvicorn.Config(http=)``.

    Parameters
    ----------
    header_timeout : float
        Seconds a connection may take to send a request's line and headers.
    body_timeout : float
        The app's ``ServeLimits.body_timeout``; bodies the app does not read are cut
        1 s after it.
    max_connections : int
        Open connections at most (see the module docstring).

    Returns
    -------
    type
        The protocol class.
    """
    busy = error_app(503, "busy", f"the server has {max_connections} connections with "
                     f"requests in progress; retry shortly", {"Retry-After": "1"})
    return type("ClassicferH11Protocol", (GuardedH11Protocol,), {
        "header_timeout": float(header_timeout), "body_timeout": float(body_timeout),
        "max_connections": int(max_connections), "busy_app": busy})


def logging_config() -> dict:
    """Uvicorn's logging setup plus the ``classicfer.serve`` logger (one line per event)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["classicfer.serve"] = {"handlers": ["default"], "level": "INFO",
                                             "propagate": False}
    return config


_DEFAULT = object()


def make_config(app, host: str = "127.0.0.1", port: int = 8000, *,
                header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                access_log: bool = False, log_level: str = "info",
                log_config=_DEFAULT) -> uvicorn.Config:
    """The uvicorn configuration ``classicfer serve`` runs ``app`` with.

    Parameters
    ----------
    app : ASGI app
        From :func:`classicfer.serve.create_app` (its ``state.limits.body_timeout`` sets
        the body backstop).
    host, port :
        Address to bind.
    header_timeout, max_connections :
        See :func:`protocol_class`.
    access_log : bool
        One line per request (method, path, status).
    log_level : str
        uvicorn's log level.
    log_config : dict or None, optional
        Logging setup (default :func:`logging_config`; None leaves logging as it is).

    Returns
    -------
    uvicorn.Config
    """
    limits = getattr(getattr(app, "state", None), "limits", None)
    body_timeout = getattr(limits, "body_timeout", 15.0)
    http_class = protocol_class(header_timeout=header_timeout, body_timeout=body_timeout,
                                max_connections=max_connections)
    return uvicorn.Config(
        app, host=host, port=port, http=http_class, ws="none", access_log=access_log,
        log_level=log_level, log_config=logging_config() if log_config is _DEFAULT else log_config,
        server_header=False, limit_concurrency=None, timeout_keep_alive=5,
        timeout_graceful_shutdown=5)


__all__ = ["GuardedH11Protocol", "logging_config", "make_config", "protocol_class", "raw_error"]
