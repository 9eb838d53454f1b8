"""``classicfer predict``: table/JSON/CSV output, annotated images, bad inputs in a batch."""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from classicfer.cli import cli
from classicfer.export._testing import make_linear_model
from classicfer.labels import EMOTIONS

ASTRONAUT = Path(__file__).resolve().parents[1] / "classicfer" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(make_linear_model(tmp_path_factory.mktemp("m") / "linear"))


def run(args):
    r = CliRunner().invoke(cli, ["predict", *args], catch_exceptions=False)
    return r


def _png_header_only(path, w, h):
    """A PNG whose header claims w x h pixels (a decompression-bomb lookalike)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_demo_table(model):
    r = run(["--demo", "--model", model])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].split()[:2] == ["file", "box"]
    assert len(lines) == 2
    assert "astronaut.jpg" in lines[1]
    assert any(lab in lines[1] for lab in (*EMOTIONS, "uncertain"))


def test_json_schema(model):
    r = run([str(ASTRONAUT), "--model", model, "--json"])
    assert r.exit_code == 0, r.output
    recs = json.loads(r.output)
    assert isinstance(recs, list) and len(recs) == 1
    rec = recs[0]
    assert rec["path"] == str(ASTRONAUT)
    assert {"path", "faces", "width", "height", "model", "detector"} <= set(rec)
    (face,) = rec["faces"]
    assert {"box", "label", "confidence", "probabilities", "top3", "status"} <= set(face)
    assert len(face["box"]) == 4
    assert face["status"] in ("ok", "uncertain", "too_small")
    assert face["label"] is None or face["label"] in EMOTIONS
    assert set(face["probabilities"]) <= set(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert face["confidence"] == pytest.approx(max(face["probabilities"].values()), abs=1e-6)


def test_csv_has_labels_and_boxes_not_pixels(model):
    r = run([str(ASTRONAUT), "--model", model, "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert len(rows) == 1
    assert set(rows[0]) == {"path", "face", "x", "y", "w", "h", "label", "confidence", "status",
                            "error"} | {f"p_{lab}" for lab in EMOTIONS[:7]}


def test_a_cat_gets_no_expression(model, tmp_path):
    """The default detector reports no face (so no label) on scikit-image's cat photo."""
    from skimage.data import chelsea

    cat = tmp_path / "chelsea.png"
    Image.fromarray(chelsea()).save(cat)
    r = run([str(cat), "--model", model, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["faces"] == []


def test_out_writes_annotated_images_only_when_asked(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run([str(ASTRONAUT), "--model", model])
    assert r.exit_code == 0
    assert list(tmp_path.iterdir()) == []  # nothing written unless asked
    out = tmp_path / "ann"
    r = run([str(ASTRONAUT), "--model", model, "--out", str(out)])
    assert r.exit_code == 0, r.output
    (f,) = list(out.iterdir())
    img = np.asarray(Image.open(f))
    assert img.shape == (512, 512, 3)
    orig = np.asarray(Image.open(ASTRONAUT))
    assert np.abs(img.astype(int) - orig).mean() > 0.5  # something drawn


def test_blur_faces_hides_the_face(model, tmp_path):
    out = tmp_path / "blur"
    r = run([str(ASTRONAUT), "--model", model, "--out", str(out), "--blur-faces", "--json"])
    assert r.exit_code == 0, r.output
    x, y, w, h = json.loads(r.output)[0]["faces"][0]["box"]
    img = np.asarray(Image.open(next(out.iterdir())).convert("L"), float)
    orig = np.asarray(Image.open(ASTRONAUT).convert("L"), float)
    # inner face region: fine detail (high-frequency energy) is gone
    cx, cy = x + w // 2, y + h // 2
    a = img[cy - h // 4: cy + h // 4, cx - w // 4: cx + w // 4]
    b = orig[cy - h // 4: cy + h // 4, cx - w // 4: cx + w // 4]
    assert np.abs(np.diff(a, axis=1)).mean() < 0.3 * np.abs(np.diff(b, axis=1)).mean()


def test_no_detect_on_crops(model, tmp_path):
    d = tmp_path / "crops"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(d / f"c{i}.png")
    r = run([str(d), "--model", model, "--no-detect", "--json"])
    assert r.exit_code == 0, r.output
    recs = json.loads(r.output)
    assert len(recs) == 3
    assert all(len(rec["faces"]) == 1 and rec["faces"][0]["box"] == [0, 0, 48, 48]
               for rec in recs)


def test_bad_inputs_give_one_line_errors_and_the_batch_goes_on(model, tmp_path):
    bad = {}
    bad["text"] = tmp_path / "notes.jpg"
    bad["text"].write_text("this is not an image")
    bad["empty"] = tmp_path / "empty.png"
    bad["empty"].write_bytes(b"")
    data = ASTRONAUT.read_bytes()
    bad["truncated"] = tmp_path / "truncated.jpg"
    bad["truncated"].write_bytes(data[: len(data) // 3])
    bad["huge"] = _png_header_only(tmp_path / "huge.png", 8000, 6000)
    bad["bomb"] = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    bad["missing"] = tmp_path / "missing.jpg"
    r = CliRunner().invoke(cli, ["predict", "--model", model, "--json",
                                 *map(str, bad.values()), str(ASTRONAUT)],
                           catch_exceptions=False)
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == len(bad)
    assert "Traceback" not in r.output
    for name, path in bad.items():
        line = next(ln for ln in errors if str(path) in ln)
        assert len(line) < 300, (name, line)
    assert "above the limit" in next(ln for ln in errors if "huge.png" in ln)
    assert "no such file" in next(ln for ln in errors if "missing.jpg" in ln)
    recs = json.loads(r.stdout)
    assert [rec["path"] for rec in recs][-1] == str(ASTRONAUT)
    assert len(recs[-1]["faces"]) == 1  # the good image after the bad ones was processed
    assert all(rec.get("error") for rec in recs[:-1])


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "1", "I;16", "RGBA", "F"])
def test_odd_image_modes_are_handled(model, tmp_path, mode):
    src = Image.open(ASTRONAUT)
    if mode == "I;16":
        arr = (np.asarray(src.convert("L"), np.uint16) * 257)
        im = Image.fromarray(arr)
        path = tmp_path / "img16.png"
    elif mode == "F":
        im = src.convert("F")
        path = tmp_path / "imgf.tif"
    else:
        im = src.convert(mode)
        path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    im.save(path)
    r = CliRunner().invoke(cli, ["predict", "--model", model, "--json", str(path)],
                           catch_exceptions=False)
    assert "Traceback" not in r.output
    if r.exit_code == 0:
        rec = json.loads(r.stdout)[0]
        assert rec["path"] == str(path)
        if mode not in ("1",):  # a 1-bit image may lose the face
            assert len(rec["faces"]) == 1
    else:
        assert r.exit_code == 1
        assert r.stderr.startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1


def test_empty_folder_is_an_error_line(model, tmp_path):
    r = run([str(tmp_path), "--model", model])
    assert r.exit_code == 1
    assert "holds no image files" in r.stderr


def test_tampered_model_is_refused(model, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    for f in ("model.onnx", "model.json"):
        (d / f).write_bytes((Path(model) / f).read_bytes())
    with open(d / "model.onnx", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x00\x01\x02\x03")
    r = CliRunner().invoke(cli, ["predict", "--demo", "--model", str(d)])
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and "checksum mismatch" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_no_input_is_a_usage_error(model):
    r = CliRunner().invoke(cli, ["predict", "--model", model])
    assert r.exit_code == 2
    assert "IMAGE" in r.output


def test_demo_with_the_default_model():
    """README's first command: ``classicfer predict --demo`` with the bundled model."""
    from classicfer.runtime import list_models

    if not list_models():
        pytest.skip("no model bundled in classicfer/bundled_models/ yet")
    r = CliRunner().invoke(cli, ["predict", "--demo", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (face,) = json.loads(r.stdout)[0]["faces"]
    assert max(face["probabilities"], key=face["probabilities"].get) in EMOTIONS
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_quiet_drops_notes_but_keeps_results_and_errors(model, tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160), 90, np.uint8)).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    args = ["--model", model, "--json", str(ASTRONAUT), str(blank)]
    loud = run(args)
    assert loud.exit_code == 0 and "no face found" in loud.stderr
    for flag in ("-q", "--quiet"):
        r = run([*args, flag])
        assert r.exit_code == 0
        assert r.stderr == ""
        assert r.stdout == loud.stdout  # the same records
    r = run([*args, str(broken), "-q"])
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {broken}") and len(r.stderr.splitlines()) == 1
