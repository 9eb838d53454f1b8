"""classicfer.imageio: every image kind decodes; every bad file gives one clear line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from classicfer import imageio
from classicfer.exceptions import ImageError
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
