"""``classicfer serve`` against misbehaving clients, on a real uvicorn server.

Each test starts the server as ``classicfer serve`` configures it
(:func:`classicfer.serve.server.make_config`) on 127.0.0.1 with a free port, in a
thread, and talks to it over raw sockets. Only loopback is contacted; socket counts
are bounded (at most 100), every wait has a deadline, and every test stops by itself
within seconds. The predictor is a stub: these tests are about connections.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import time
from contextlib import ExitStack, contextmanager

import numpy as np
import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("python_multipart")

from classicfer.serve import allowed_hosts_for, create_app  # noqa: E402 (needs starlette)
from classicfer.serve.server import make_config  # noqa: E402 (needs uvicorn)

HOST = "127.0.0.1"
SECURITY = ("x-content-type-options", "content-security-policy", "referrer-policy",
            "permissions-policy")


class _Stub:
    """Answers at once with no face."""

    labels = ("happy", "sad")

    def predict_record(self, image, path=None):
        return {"path": path, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "faces": []}


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _tiny_jpeg()


@contextmanager
def running(app, **kwargs):
    """The app under uvicorn on 127.0.0.1:<free port>; yields the port."""
    config = make_config(app, HOST, 0, log_config=None, log_level="warning", **kwargs)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def _app(**kwargs):
    return create_app([_Stub()], **kwargs)


def _get(port, path="/health", *, host=None, timeout=5.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _post_jpeg(port, timeout=5.0):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", "/predict", body=JPEG, headers={"Content-Type": "image/jpeg"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _connect(port, stack: ExitStack) -> socket.socket:
    return stack.enter_context(socket.create_connection((HOST, port), timeout=5))


def _read_all(s: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes (or ``timeout`` passes)."""
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _closed(s: socket.socket) -> bool:
    s.settimeout(0.001)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _parse(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def _assert_json_error(status, headers, body, want_status, want_code):
    assert status == want_status, body
    assert headers["content-type"].startswith("application/json")
    for h in SECURITY:
        assert h in headers, h
    doc = json.loads(body)
    assert doc["status"] == want_status and doc["error"] == want_code
    return doc


def _slow_upload(port, stack, path="/predict", length=100_000) -> socket.socket:
    s = _connect(port, stack)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\n"
              f"Content-Length: {length}\r\n\r\n\xff".encode("latin-1"))
    return s


def _wait(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ----------------------------------------------------------------- idle connections
def test_hundred_idle_connections_do_not_lock_out_health():
    app = _app()
    with running(app) as port, ExitStack() as stack:
        idle = [_connect(port, stack) for _ in range(100)]
        time.sleep(0.2)  # all accepted by the server
        t0 = time.monotonic()
        status, _, body = _get(port, timeout=2)
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert time.monotonic() - t0 < 2
        assert _post_jpeg(port, timeout=2)[0] == 200
        assert not any(_closed(s) for s in idle[-10:])  # under the cap: nobody was cut


def test_connections_over_the_cap_shed_the_longest_idle():
    app = _app()
    with running(app, max_connections=16, header_timeout=30) as port, ExitStack() as stack:
        idle = [_connect(port, stack) for _ in range(100)]
        assert _wait(lambda: sum(_closed(s) for s in idle[:84]) == 84, 5)
        t0 = time.monotonic()
        status, _, _ = _get(port, timeout=2)
        assert status == 200 and time.monotonic() - t0 < 2


def test_idle_connection_is_closed_after_the_header_timeout():
    with running(_app(), header_timeout=0.5) as port, ExitStack() as stack:
        silent = _connect(port, stack)
        partial = _connect(port, stack)
        partial.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        kept = _connect(port, stack)  # one full request, then half of the next
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        t0 = time.monotonic()
        assert _read_all(silent, 5) == b""  # closed without a word
        assert time.monotonic() - t0 < 3
        _assert_json_error(*_parse(_read_all(partial, 5)), 408, "timeout")
        first = b""
        while b'"status":"ok"' not in first:
            first += kept.recv(4096)
        kept.sendall(b"GET /hea")
        _assert_json_error(*_parse(_read_all(kept, 5)), 408, "timeout")


# ----------------------------------------------------------------- slow bodies
def test_slow_uploads_lose_their_admission_slots_within_seconds():
    app = _app(workers=1, max_pending=16)
    service = app.state.service
    with running(app) as port, ExitStack() as stack:
        slow = [_slow_upload(port, stack) for _ in range(16)]
        stop = threading.Event()

        def trickle():  # 2 bytes/s each, for at most 8 s
            for _ in range(16):
                if stop.wait(0.5):
                    return
                for s in slow:
                    try:
                        s.sendall(b"\x00")
                    except OSError:
                        pass

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        t0 = time.monotonic()
        try:
            assert _wait(lambda: service.in_flight == 16, 2)
            status, body = _post_jpeg(port)
            assert status == 503 and json.loads(body)["error"] == "busy"
            while _post_jpeg(port)[0] != 200:
                assert time.monotonic() - t0 < 5, "slow senders still hold every slot"
                time.sleep(0.1)
            for s in slow:
                doc = _assert_json_error(*_parse(_read_all(s, 3)), 408, "timeout")
                assert "bytes/s" in doc["message"]
        finally:
            stop.set()
            t.join(5)


def test_unread_body_is_cut_after_the_body_timeout():
    with running(_app(body_timeout=0.5)) as port, ExitStack() as stack:
        s = _slow_upload(port, stack, path="/health")  # 405 at once, body never read
        t0 = time.monotonic()
        raw = _read_all(s, 5)
        assert _parse(raw)[0] == 405 and time.monotonic() - t0 < 3


def test_client_leaving_mid_upload_is_one_log_line(caplog):
    app = _app()
    caplog.set_level(logging.INFO)
    with running(app) as port, ExitStack() as stack:
        s = _slow_upload(port, stack)
        s.sendall(b"\x00" * 1000)
        assert _wait(lambda: app.state.service.in_flight == 1, 2)
        s.close()
        assert _wait(lambda: app.state.service.in_flight == 0, 3)
        time.sleep(0.2)
    mine = [r for r in caplog.records if r.name == "classicfer.serve"]
    assert len(mine) == 1 and "disconnected" in mine[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# ----------------------------------------------------------------- JSON everywhere
def test_malformed_http_and_over_capacity_answer_json_with_security_headers():
    app = _app()
    with running(app, max_connections=2) as port, ExitStack() as stack:
        bad = _connect(port, stack)
        bad.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        doc = _assert_json_error(*_parse(_read_all(bad, 5)), 400, "bad_request")
        assert "invalid HTTP request" in doc["message"]
        assert _wait(lambda: _closed(bad), 2)
        # two requests in progress (bodies still coming) fill the cap: no one to shed
        busy = [_slow_upload(port, stack) for _ in range(2)]
        assert _wait(lambda: app.state.service.in_flight == 2, 2)
        late = _connect(port, stack)
        late.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = _parse(_read_all(late, 5))
        _assert_json_error(status, headers, body, 503, "busy")
        assert headers["retry-after"] == "1"
        assert not any(_closed(s) for s in busy)


# ----------------------------------------------------------------- Host header
def test_requests_for_other_hosts_are_refused():
    app = _app(allowed_hosts=allowed_hosts_for("127.0.0.1", ["kiosk.lan"]))
    with running(app) as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "kiosk.lan",
                     "KIOSK.LAN.:80"):
            assert _get(port, host=host)[0] == 200, host
        for host in ("evil.example", f"evil.example:{port}", "localhost.evil.example",
                     "127.0.0.2"):
            status, headers, body = _get(port, "/model", host=host)
            doc = _assert_json_error(status, headers, body, 421, "bad_host")
            assert "--allowed-host" in doc["message"]
        assert _post_jpeg(port)[0] == 200


def test_a_request_by_ip_to_the_address_it_arrived_on_is_accepted():
    # e.g. a 0.0.0.0 server opened as http://192.168.1.5:8000/: no name, no rebinding
    app = _app(allowed_hosts=["kiosk.lan"])
    with running(app) as port:
        assert _get(port, host=f"127.0.0.1:{port}")[0] == 200
        assert _get(port, host=f"localhost:{port}")[0] == 421


def test_allowed_hosts_for_binds():
    assert set(allowed_hosts_for("127.0.0.1")) == {"127.0.0.1", "localhost", "::1"}
    assert set(allowed_hosts_for("::1")) == {"127.0.0.1", "localhost", "::1"}
    assert set(allowed_hosts_for("0.0.0.0", ["Kiosk.LAN"])) == {"127.0.0.1", "localhost",
                                                                "::1", "kiosk.lan"}
    assert allowed_hosts_for("192.168.1.5") == ["192.168.1.5"]
