"""classicfer.imageio: every image kind decodes; every bad file gives one clear line."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features
from skimage.data import astronaut

from classicfer import imageio
from classicfer.exceptions import ConfigError, ImageError
from classicfer.imageio import as_uint8_image, read_image


@pytest.fixture(scope="module")
def rgb():
    return astronaut()[::4, ::4].copy()   # 128x128


def _png(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


def test_gray_png(tmp_path, rgb):
    p = _png(Image.fromarray(rgb).convert("L"), tmp_path / "g.png")
    assert read_image(p).shape == (128, 128, 3)
    assert read_image(p, gray=True).shape == (128, 128)


def test_rgba_png(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    p = _png(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")
    out = read_image(p)
    assert out.shape == (128, 128, 3) and np.array_equal(out, rgb)


def test_16bit_png(tmp_path, rgb):
    g16 = (np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257)
    p = _png(Image.fromarray(g16), tmp_path / "g16.png")
    assert Image.open(p).mode.startswith("I")
    out = read_image(p, gray=True)
    assert out.dtype == np.uint8 and abs(int(out.max()) - int(g16.max() // 257)) <= 1


def test_palette_png(tmp_path, rgb):
    p = _png(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE), tmp_path / "p.png")
    assert Image.open(p).mode == "P"
    out = read_image(p)
    assert out.shape == (128, 128, 3) and np.abs(out.astype(int) - rgb).mean() < 12


def test_exif_rotated_jpeg(tmp_path, rgb):
    raw = np.rot90(rgb, 1)                 # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6                       # "rotate 90 CW to display"
    p = tmp_path / "exif.jpg"
    Image.fromarray(np.ascontiguousarray(raw)).save(p, exif=exif, quality=95)
    out = read_image(p)
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 8


def test_bytes_and_file_object(tmp_path, rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    assert np.array_equal(read_image(buf.getvalue()), rgb)
    buf.seek(0)
    assert np.array_equal(read_image(buf), rgb)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, not a picture")
    with pytest.raises(ImageError, match=r"notes.png: not a readable image"):
        read_image(p)


def test_truncated(tmp_path, rgb):
    p = tmp_path / "t.jpg"
    Image.fromarray(rgb).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"t.jpg: cannot decode image"):
        read_image(p)


def test_too_many_pixels(tmp_path, rgb, monkeypatch):
    p = _png(Image.fromarray(rgb), tmp_path / "big.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageError, match=r"128x128 = 16,384 pixels is above the limit of 10,000"):
        read_image(p)
    with pytest.raises(ImageError, match="above the limit"):
        as_uint8_image(rgb)


def _empty(path):
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(("setup", "match"), [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: _empty(d / "empty.png"), "empty file"),
    (lambda d: 42, "expected a path, bytes or a binary file object, got int"),
])
def test_path_problems(tmp_path, setup, match):
    with pytest.raises(ImageError, match=match):
        read_image(setup(tmp_path))


@pytest.mark.parametrize(("arr", "shape"), [
    (np.zeros((5, 6), np.uint16) + 1000, (5, 6, 3)),
    (np.zeros((5, 6, 4), np.float64) + 0.5, (5, 6, 3)),
    (np.ones((5, 6, 1), bool), (5, 6, 3)),
])
def test_as_uint8_image(arr, shape):
    out = as_uint8_image(arr)
    assert out.dtype == np.uint8 and out.shape == shape


@pytest.mark.parametrize("arr", [np.zeros((5,)), np.zeros((5, 6, 2)), np.zeros((0, 4))])
def test_as_uint8_image_bad_shapes(arr):
    with pytest.raises(ImageError):
        as_uint8_image(arr)


# ------------------------------------------------------------- corrupt files, any decoder error
def _bmff_boxes(data: bytes):
    """(offset, size, type) of the top-level boxes of an ISO-BMFF (AVIF) file."""
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        yield i, size, kind
        if size < 8:
            return
        i += size


def _dds_with_pixel_format(rgb, fourcc: bytes, extra: bytes = b"") -> bytes:
    """A DDS written by Pillow whose pixel format is rewritten to ``fourcc`` (+ a DX10 header)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "DDS")
    data = bytearray(buf.getvalue())
    # DDS_PIXELFORMAT: 4 (magic) + 72 bytes into the header: size, flags, fourcc, bit count
    struct.pack_into("<4I", data, 76, 32, 0x4, int.from_bytes(fourcc, "little"), 0)
    return bytes(data[:128]) + extra + bytes(data[128:])


def _corrupt_files(rgb) -> dict[str, bytes]:
    """Files whose decoders raise something other than OSError/ValueError/SyntaxError:
    RuntimeError (libavif) and NotImplementedError (Pillow's DDS plugin).
    """
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 600, dtype=np.uint8).tobytes()
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"avif", 0, b"avif", b"mif1")
    out = {
        "ftyp-garbage.avif": ftyp + garbage,
        "fourcc.dds": _dds_with_pixel_format(rgb, b"XYZW"),
        "dx10.dds": _dds_with_pixel_format(rgb, b"DX10", struct.pack("<5I", 9999, 3, 0, 1, 0)),
        "header-garbage.dds": _dds_with_pixel_format(rgb, b"DXT1")[:128] + garbage,
    }
    if features.check("avif"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "AVIF")
        avif = buf.getvalue()
        off, size, _ = next(b for b in _bmff_boxes(avif) if b[2] == b"mdat")
        out["pixels.avif"] = avif[:off + 8] + bytes(size - 8)       # valid boxes, zeroed AV1
        out["items.avif"] = avif.replace(b"iloc", b"xxxx", 1)       # no item locations
    return out


@pytest.fixture(scope="module")
def corrupt(rgb):
    return _corrupt_files(rgb)


def test_corrupt_files_raise_what_the_decoder_raises(corrupt):
    """The fixture really exercises decoder errors outside OSError/ValueError/SyntaxError."""
    def raw_error(data):
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except Exception as e:  # noqa: BLE001
            return type(e)
        return None

    kinds = {name: raw_error(data) for name, data in corrupt.items()}
    assert kinds["fourcc.dds"] is NotImplementedError
    assert kinds["dx10.dds"] is NotImplementedError
    if "pixels.avif" in kinds:
        assert kinds["pixels.avif"] is RuntimeError and kinds["items.avif"] is RuntimeError


@pytest.mark.parametrize("name", ["ftyp-garbage.avif", "pixels.avif", "items.avif",
                                  "fourcc.dds", "dx10.dds", "header-garbage.dds"])
def test_corrupt_avif_and_dds_are_image_errors(tmp_path, corrupt, name):
    from classicfer.runtime._decode import decode_image

    if name not in corrupt:
        pytest.skip("this Pillow cannot write AVIF")
    path = tmp_path / name
    path.write_bytes(corrupt[name])
    for call, arg in [(read_image, path), (read_image, corrupt[name]), (decode_image, path),
                      (decode_image, corrupt[name]), (read_image, io.BytesIO(corrupt[name]))]:
        with pytest.raises(ImageError) as err:
            call(arg)
        msg = str(err.value)
        assert "\n" not in msg and len(msg) < 300
        assert msg.startswith(f"{path}: " if arg is path else "<bytes>: ")


def test_predict_batch_goes_on_past_corrupt_files(tmp_path, corrupt):
    import json

    from click.testing import CliRunner

    from classicfer.cli import cli
    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "model")
    face = tmp_path / "a.jpg"
    Image.fromarray(astronaut()).save(face)
    other = tmp_path / "b.png"
    Image.fromarray(astronaut()).save(other)
    bad = []
    for name in ("items.avif", "pixels.avif", "fourcc.dds", "ftyp-garbage.avif"):
        if name in corrupt:
            bad.append(tmp_path / name)
            bad[-1].write_bytes(corrupt[name])
    args = [str(face), *map(str, bad), str(other)]
    r = CliRunner().invoke(cli, ["predict", "--model", str(model), "--json", *args],
                           catch_exceptions=False)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == len(bad)
    for path in bad:
        assert sum(f"{path}: cannot decode image" in ln or f"{path}: not a readable image" in ln
                   for ln in errors) == 1
    recs = json.loads(r.stdout)
    assert [rec["path"] for rec in recs] == args
    assert len(recs[0]["faces"]) == 1 and len(recs[-1]["faces"]) == 1
    assert recs[0]["faces"][0]["probabilities"] and "error" not in recs[-1]


# ------------------------------------------------------------------ the pixel limit and its knob
def _png_header_only(w, h) -> bytes:
    """A PNG whose header claims w x h pixels (a decompression-bomb lookalike)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("w", "h", "match"), [
    # Pillow refuses these itself (DecompressionBombError, above twice its own limit) ...
    (30000, 30000, (r"<bytes>: 900,000,000 pixels is above the limit of 40,000,000 "
                    r"\(set CLASSICFER_MAX_PIXELS to raise it\)")),
    # ... and only warns about these (DecompressionBombWarning): our own limit decides
    (12000, 10000, (r"<bytes>: 12000x10000 = 120,000,000 pixels is above the limit of "
                    r"40,000,000 \(set CLASSICFER_MAX_PIXELS to raise it\)")),
])
def test_decompression_bombs_say_pixels_limit_and_knob(w, h, match):
    from classicfer.runtime._decode import decode_image

    data = _png_header_only(w, h)
    with pytest.raises(ImageError, match=match):
        read_image(data)
    with pytest.raises(ImageError, match=match):
        decode_image(data)


def test_bomb_above_pillows_own_limit_names_it(monkeypatch):
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10**12)
    with pytest.raises(ImageError, match=r"900,000,000 pixels is above Pillow's "
                                         r"decompression-bomb limit of [\d,]+ "
                                         r"\(raise PIL.Image.MAX_IMAGE_PIXELS"):
        read_image(_png_header_only(30000, 30000))


def test_max_pixels_from_the_environment(tmp_path, rgb, monkeypatch):
    p = _png(Image.fromarray(rgb), tmp_path / "img.png")
    monkeypatch.setenv("CLASSICFER_MAX_PIXELS", "10000")
    assert imageio.max_pixels() == 10_000
    with pytest.raises(ImageError, match=r"16,384 pixels is above the limit of 10,000"):
        read_image(p)
    monkeypatch.delenv("CLASSICFER_MAX_PIXELS")
    assert imageio.max_pixels() == imageio.DEFAULT_MAX_PIXELS
    assert read_image(p).shape == (128, 128, 3)
    for bad in ("abc", "0", "-5", "1e9"):
        monkeypatch.setenv("CLASSICFER_MAX_PIXELS", bad)
        with pytest.raises(ConfigError, match=rf"CLASSICFER_MAX_PIXELS must be a positive "
                                              rf"whole number .*got '{bad}'"):
            read_image(p)


def test_bad_max_pixels_is_an_error_line_not_a_traceback(tmp_path, rgb):
    import os
    import subprocess
    import sys

    from classicfer.export._testing import make_linear_model

    model = make_linear_model(tmp_path / "model")
    p = _png(Image.fromarray(rgb), tmp_path / "img.png")
    env = {**os.environ, "CLASSICFER_MAX_PIXELS": "abc"}
    run = [sys.executable, "-m", "classicfer.cli"]
    r = subprocess.run([*run, "--help"], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    r = subprocess.run([*run, "predict", "--model", str(model), str(p)], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "Error: CLASSICFER_MAX_PIXELS must be a positive whole number" in r.stderr


def test_arrays_of_other_dtypes():
    assert as_uint8_image(np.full((4, 5), np.nan)).tolist() == np.zeros((4, 5, 3)).tolist()
    assert as_uint8_image(np.full((2, 3), 7, dtype=object), gray=True).tolist() == [[7] * 3] * 2
    for arr in (np.array([["a"]]), np.zeros((4, 4), complex), np.array([["a", 1]], object)):
        with pytest.raises(ImageError, match="expected an image of numbers"):
            as_uint8_image(arr)
