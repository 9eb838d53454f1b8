"""``classicfer serve``: the HTTP API with an in-process client and the real runtime.

The model is a tiny random linear model (``classicfer.export._testing``) run by the
real :class:`classicfer.runtime.Predictor` (default detector, onnxruntime), so every
request goes through decode -> detect -> crop -> classify as in production.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("python_multipart")
from starlette.testclient import TestClient

from classicfer.serve import ServeLimits, create_app

STATIC = Path(__file__).resolve().parents[1] / "classicfer" / "serve" / "static"


def _jpeg(arr, quality=90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from classicfer.export._testing import make_linear_model

    return make_linear_model(tmp_path_factory.mktemp("serve") / "linear")


@pytest.fixture(scope="module")
def predictor(model_dir):
    from classicfer.runtime import Predictor

    return Predictor(model_dir)  # the default detector, as `classicfer predict`


@pytest.fixture(scope="module")
def client(predictor):
    app = create_app([predictor, predictor], max_upload_bytes=2_000_000, max_pixels=3_000_000)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def face_jpeg():
    from skimage.data import astronaut

    return _jpeg(astronaut())


def _assert_error(r, status, code, pattern):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and body["error"] == code
    assert re.search(pattern, body["message"]), body["message"]
    assert "\n" not in body["message"]


# ----------------------------------------------------------------- valid images
def test_predict_raw_jpeg_matches_the_predictor_record(client, predictor, face_jpeg):
    from classicfer.imageio import read_image

    r = client.post("/predict", content=face_jpeg, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec == json.loads(json.dumps(predictor.predict_record(read_image(face_jpeg),
                                                                 "upload")))
    assert len(rec["faces"]) == 1
    face = rec["faces"][0]
    x, y, w, h = face["box"]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 180  # the astronaut's face
    assert set(face["probabilities"]) == set(predictor.labels)
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-4
    assert r.headers["cache-control"] == "no-store"


def test_predict_multipart_upload_same_as_predict_json_cli(client, model_dir, face_jpeg,
                                                           tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    path = tmp_path / "face.jpg"
    path.write_bytes(face_jpeg)
    res = CliRunner().invoke(cli, ["predict", "--json", "--model", str(model_dir), str(path)])
    assert res.exit_code == 0, res.output
    cli_rec = json.loads(res.stdout)[0]
    r = client.post("/predict", files={"image": ("face.jpg", face_jpeg, "image/jpeg")})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["path"] == "face.jpg"
    rec.pop("path"), cli_rec.pop("path")
    assert rec == cli_rec


def test_predict_png_and_octet_stream(client, face_jpeg):
    from classicfer.imageio import read_image

    png = _png(read_image(face_jpeg))
    r = client.post("/predict", content=png, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    r = client.post("/predict", files={"file": ("x.png", png, "image/png")})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1


def test_predict_no_face_is_an_empty_list_not_an_error(client):
    rng = np.random.default_rng(0)
    noise = (rng.random((240, 320)) * 40 + 100).astype(np.uint8)
    r = client.post("/predict", content=_png(noise), headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["faces"] == [] and rec["width"] == 320 and rec["height"] == 240


# ----------------------------------------------------------------- bad requests
def test_corrupt_file_is_400(client, face_jpeg):
    r = client.post("/predict", content=b"this is not an image at all",
                    headers={"Content-Type": "image/jpeg"})
    _assert_error(r, 400, "not_an_image", r"not a readable image.*send a JPEG")
    truncated = face_jpeg[: len(face_jpeg) // 3]
    r = client.post("/predict", files={"image": ("t.jpg", truncated, "image/jpeg")})
    _assert_error(r, 400, "not_an_image", "upload")


def test_header_a_decoder_cannot_handle_is_400(client):
    """Pillow's DDS plugin raises NotImplementedError on an unknown pixel format (a
    corrupt AVIF makes libavif raise RuntimeError): still a 400, not a 500.
    """
    import struct

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "DDS")
    dds = bytearray(buf.getvalue())
    struct.pack_into("<4I", dds, 76, 32, 0x4, int.from_bytes(b"XYZW", "little"), 0)
    r = client.post("/predict", content=bytes(dds), headers={"Content-Type": "image/png"})
    _assert_error(r, 400, "not_an_image", r"cannot decode image \(Unimplemented pixel format")


def test_empty_body_is_400(client):
    r = client.post("/predict", content=b"", headers={"Content-Type": "image/png"})
    _assert_error(r, 400, "empty", "0 bytes")


def test_oversize_body_is_413(client):
    big = b"\xff\xd8" + bytes(2_100_000)
    r = client.post("/predict", content=big, headers={"Content-Type": "image/jpeg"})
    _assert_error(r, 413, "too_large", r"above the limit of 2,000,000 bytes")
    r = client.post("/predict", files={"image": ("big.jpg", big, "image/jpeg")})
    _assert_error(r, 413, "too_large", "limit")


def test_too_many_pixels_is_413_before_decoding(client):
    # 2000 x 2000 = 4 Mpx > 3 Mpx limit, but a tiny PNG (decompression-bomb shape).
    r = client.post("/predict", content=_png(np.zeros((2000, 2000), np.uint8)),
                    headers={"Content-Type": "image/png"})
    _assert_error(r, 413, "too_many_pixels", r"2000x2000 = 4,000,000 pixels")


@pytest.mark.parametrize("ctype", ["text/plain", "application/json",
                                   "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client, face_jpeg, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.post("/predict", content=face_jpeg, headers=headers)
    _assert_error(r, 415, "unsupported_type", r"Content-Type .* not accepted.*image/jpeg")


def test_multipart_part_of_wrong_type_is_415(client):
    r = client.post("/predict", files={"image": ("notes.txt", b"hello", "text/plain")})
    _assert_error(r, 415, "unsupported_type", "'text/plain', expected an image")


def test_multipart_without_file_is_400(client):
    r = client.post("/predict", files={"comment": (None, b"hi")})
    _assert_error(r, 400, "no_image", r"field 'image'")
    r = client.post("/predict", content=b"--x\r\n",
                    headers={"Content-Type": "multipart/form-data"})
    _assert_error(r, 400, "bad_multipart", "boundary")


def test_unknown_route_and_method_are_json(client):
    _assert_error(client.get("/nope"), 404, "not_found", "Not Found")
    _assert_error(client.get("/predict"), 405, "method_not_allowed", "Method Not Allowed")


# ----------------------------------------------------------------- health, model, page
def test_health_and_model(client, predictor, model_dir):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["workers"] == 2
    m = client.get("/model").json()
    assert m["labels"] == list(predictor.labels)
    assert m["model"]["name"] == "linear-test" and m["model"]["kind"] == "cnn"
    assert len(m["model"]["sha256"]) == 64
    assert m["detector"] == "blazeface" and m["thresholds"]["min_confidence"] == pytest.approx(0.3)
    assert m["limits"]["max_upload_bytes"] == 2_000_000
    for pkg in ("classicfer", "onnxruntime", "starlette", "python"):
        assert pkg in m["versions"]


def test_model_shows_the_folder_name_not_its_path(client, model_dir):
    r = client.get("/model")
    assert r.json()["folder"] == model_dir.name == "linear"
    assert str(model_dir.parent) not in r.text and "path" not in r.json()


def test_kiosk_page_and_assets_are_local(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Emotion recognition is running" in r.text
    assert 'data-rate="5"' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert refs and all(ref.startswith("/static/") for ref in refs)
    for ref in refs:
        assert client.get(ref).status_code == 200
    # No asset refers to another host (works offline; no CDN).
    for f in STATIC.iterdir():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!localhost\b)|//cdn|@import|url\(", text), f.name
    js = (STATIC / "kiosk.js").read_text()
    assert "getUserMedia" in js
    for api in ("localStorage.", "sessionStorage.", "indexedDB.", "document.cookie", "caches."):
        assert api not in js  # nothing is stored in the browser


# ----------------------------------------------------------------- limits and safety
class _Gate:
    """Wraps a predictor; blocks every call until released."""

    def __init__(self, inner):
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()
        self.model = inner.model

    def predict_record(self, image, path=None):
        self.entered.set()
        assert self.release.wait(30)
        return self.inner.predict_record(image, path)


def test_burst_beyond_max_pending_gets_503_and_work_stays_bounded(predictor, face_jpeg):
    gate = _Gate(predictor)
    app = create_app([gate], limits=ServeLimits(workers=1, max_pending=2))
    results = []
    with TestClient(app) as c:
        def post():
            results.append(c.post("/predict", content=face_jpeg,
                                  headers={"Content-Type": "image/jpeg"}))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        assert gate.entered.wait(30)
        deadline = time.monotonic() + 30
        while app.state.service.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.service.in_flight == 2  # one in the worker, one waiting for it
        r = c.post("/predict", content=face_jpeg, headers={"Content-Type": "image/jpeg"})
        _assert_error(r, 503, "busy", "retry")
        assert r.headers["retry-after"] == "1"
        gate.release.set()
        for t in threads:
            t.join(30)
        assert [x.status_code for x in results] == [200, 200]
        assert app.state.service.in_flight == 0


def test_concurrent_requests_give_the_same_answer(client, predictor, face_jpeg):
    from concurrent.futures import ThreadPoolExecutor

    from classicfer.imageio import read_image

    small = _jpeg(read_image(face_jpeg)[::2, ::2])
    want = {face_jpeg: client.post("/predict", content=face_jpeg,
                                   headers={"Content-Type": "image/jpeg"}).json(),
            small: client.post("/predict", content=small,
                               headers={"Content-Type": "image/jpeg"}).json()}
    jobs = [face_jpeg, small] * 8
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda b: client.post(
            "/predict", content=b, headers={"Content-Type": "image/jpeg"}).json(), jobs))
    assert got == [want[b] for b in jobs]


def test_nothing_about_requests_is_logged(predictor, face_jpeg, caplog):
    app = create_app([predictor])
    with caplog.at_level("DEBUG"), TestClient(app) as c:
        c.post("/predict", files={"image": ("secret-name.jpg", face_jpeg, "image/jpeg")})
        c.post("/predict", content=b"junk", headers={"Content-Type": "image/png"})
    assert "secret-name" not in caplog.text


def test_multipart_parser_diagnostics_do_not_reach_the_log(client, caplog):
    # A broken boundary makes python-multipart log a warning that quotes a body byte.
    body = b"--xyQ\r\nContent-Disposition: form-data; name=image\r\n\r\nsecret\r\n--xyz--\r\n"
    with caplog.at_level("DEBUG"):
        r = client.post("/predict", content=body,
                        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    _assert_error(r, 400, "bad_multipart", "malformed")
    assert not [rec for rec in caplog.records if "multipart" in rec.name], caplog.text
    assert "'Q'" not in caplog.text and "secret" not in caplog.text


class _Broken:
    def __init__(self, inner):
        self.model = inner.model

    def predict_record(self, image, path=None):
        raise RuntimeError("predictor fault")


def test_internal_error_is_json_with_security_headers_and_one_traceback(predictor, face_jpeg,
                                                                        caplog):
    app = create_app([_Broken(predictor)])
    with caplog.at_level("INFO"), TestClient(app) as c:
        r = c.post("/predict", content=face_jpeg, headers={"Content-Type": "image/jpeg"})
    _assert_error(r, 500, "internal", "internal server error")
    for h in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert h in r.headers
    assert len([rec for rec in caplog.records if rec.exc_info]) == 1


def test_errors_outside_routes_carry_security_headers(client):
    for r in (client.get("/nope"), client.get("/predict"),
              client.post("/predict", content=b"", headers={"Content-Type": "image/png"})):
        assert r.headers["content-type"].startswith("application/json")
        assert "default-src 'self'" in r.headers["content-security-policy"]


def test_body_trickle_below_the_minimum_rate_is_408(predictor):
    import anyio

    app = create_app([predictor], workers=1, max_pending=1, min_body_rate=1024)
    messages = []

    async def receive():
        await anyio.sleep(0.1)  # 10 bytes/s, far below 1 KiB/s
        return {"type": "http.request", "body": b"\x00", "more_body": True}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5000), "headers": [(b"content-type", b"image/jpeg")]}
    t0 = time.monotonic()
    anyio.run(app, scope, receive, send)
    assert time.monotonic() - t0 < 4  # BODY_GRACE (2 s) + a little, not body_timeout (15 s)
    body = json.loads(b"".join(m.get("body", b"") for m in messages
                               if m["type"] == "http.response.body"))
    assert body["error"] == "timeout" and "1,024 bytes/s" in body["message"]
    assert app.state.service.in_flight == 0


def test_bad_limits_and_rate_are_config_errors(predictor):
    from classicfer.exceptions import ConfigError

    with pytest.raises(ConfigError, match="max_pending"):
        create_app([predictor], workers=4, max_pending=2)
    with pytest.raises(ConfigError, match="positive integer"):
        create_app([predictor], max_upload_bytes=0)
    with pytest.raises(ConfigError, match="rate"):
        create_app([predictor], rate=0)
    with pytest.raises(ConfigError, match="min_body_rate"):
        create_app([predictor], min_body_rate=-1)


def test_missing_model_is_a_model_error(tmp_path):
    from classicfer.exceptions import ModelError

    with pytest.raises(ModelError, match="no such model folder"):
        create_app(model=tmp_path / "nope")


def test_serve_command_help_and_bad_model(tmp_path):
    from click.testing import CliRunner

    from classicfer.cli import cli

    res = CliRunner().invoke(cli, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in ("--host", "--port", "--model", "--detector", "--max-upload-mb", "--rate"):
        assert opt in res.output
    assert "127.0.0.1" in res.output and "--blur-faces" not in res.output
    res = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "nope")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("Error: ")
    assert "no such model folder" in res.output


def test_serve_command_passes_its_limits_to_the_server(model_dir, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    from click.testing import CliRunner

    from classicfer.cli import cli

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.setdefault("config", self.config))
    res = CliRunner().invoke(cli, [
        "serve", "--model", str(model_dir), "--port", "0", "--header-timeout", "2",
        "--body-timeout", "3", "--min-body-rate", "4", "--max-connections", "32",
        "--allowed-host", "kiosk.lan", "--allowed-host", "pc.example"])
    assert res.exit_code == 0, res.output
    config = seen["config"]
    assert config.limit_concurrency is None  # admission is the app's (JSON 503)
    assert config.http.header_timeout == 2 and config.http.max_connections == 32
    assert config.http.body_timeout == 3
    limits = config.app.state.limits
    assert limits.body_timeout == 3 and limits.min_body_rate == 4096
    assert {"kiosk.lan", "pc.example", "localhost", "127.0.0.1", "::1"} == \
        set(config.app.allowed_hosts)
    res = CliRunner().invoke(cli, ["serve", "--help"])
    for opt in ("--header-timeout", "--body-timeout", "--min-body-rate", "--max-connections",
                "--allowed-host"):
        assert opt in res.output


def test_slow_body_is_408_and_frees_its_slot(predictor):
    import anyio

    app = create_app([predictor], body_timeout=0.3, workers=1, max_pending=1)
    sent = []

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"\xff\xd8", "more_body": True}
        await anyio.sleep(5)  # the rest never comes in time
        return {"type": "http.disconnect"}

    messages = []

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"content-type", b"image/jpeg"), (b"content-length", b"1000")]}
    t0 = time.monotonic()
    anyio.run(app, scope, receive, send)
    assert time.monotonic() - t0 < 3
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in messages
                               if m["type"] == "http.response.body"))
    assert start["status"] == 408 and body["error"] == "timeout"
    assert app.state.service.in_flight == 0


def test_serve_names_a_missing_extra_but_not_a_broken_module(monkeypatch):
    """Only the optional packages are reported as a missing extra; an import error inside
    classicfer's own serve modules is raised as it is.
    """
    import importlib.util
    import sys

    from click.testing import CliRunner

    from classicfer.cli import cli

    real = importlib.util.find_spec
    with monkeypatch.context() as m:
        m.setattr(importlib.util, "find_spec",
                  lambda name, *a: None if name == "uvicorn" else real(name, *a))
        r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code == 1 and "needs the serve extra (uvicorn is not installed)" in r.output
    monkeypatch.setitem(sys.modules, "classicfer.serve.server", None)
    r = CliRunner().invoke(cli, ["serve"])
    assert isinstance(r.exception, ImportError) and "serve extra" not in r.output
