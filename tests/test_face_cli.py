"""``classicfer detect``: outputs, batches, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.data import astronaut

from classicfer.cli import cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    a = astronaut()
    Image.fromarray(a).save(d / "a_face.jpg")
    Image.fromarray(np.full((120, 160), 90, np.uint8)).save(d / "b_blank.png")
    (d / "c_text.png").write_text("not an image")
    data = (d / "a_face.jpg").read_bytes()
    (d / "d_trunc.jpg").write_bytes(data[: len(data) // 3])
    rgba = np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "e_rgba.png")
    Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "f_palette.png")
    g16 = np.asarray(Image.fromarray(a).convert("L")).astype(np.uint16) * 257
    Image.fromarray(g16).save(d / "g_16bit.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(a, 1))).save(d / "h_exif.jpg", exif=exif)
    return d


def run(*args, **kw):
    return CliRunner().invoke(cli, ["detect", *args], **kw)


def test_help():
    r = run("--help")
    assert r.exit_code == 0 and "Example:" in r.output


def test_single_image_json_and_out(folder, tmp_path):
    out = tmp_path / "annotated.png"
    r = run(str(folder / "a_face.jpg"), "--method", "dlib-hog", "--landmarks", "5", "--json",
            "--out", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["faces"]) == 1
    face = doc["faces"][0]
    assert face["method"] == "dlib-hog" and len(face["box"]) == 4
    assert np.asarray(face["landmarks"]).shape == (5, 2) and face["layout"] == "dlib5"
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (512, 512, 3)
    assert not np.array_equal(drawn, astronaut())    # something was drawn


def test_batch_continues_past_bad_files(folder, tmp_path):
    outdir = tmp_path / "annotated"
    r = run(str(folder), "--out", str(outdir), "--json", "--landmarks", "68")
    assert r.exit_code == 1
    err = r.stderr
    assert "Error: " + str(folder / "c_text.png") + ": not a readable image" in err
    assert "Error: " + str(folder / "d_trunc.jpg") + ": cannot decode image" in err
    assert str(folder / "b_blank.png") + ": no face found" in err
    assert "2 of 8 inputs failed" in err
    assert "Traceback" not in r.output
    recs = {rec["path"].rsplit("/", 1)[-1]: rec for rec in json.loads(r.stdout)}
    for name in ("a_face.jpg", "e_rgba.png", "f_palette.png", "g_16bit.png", "h_exif.jpg"):
        assert len(recs[name]["faces"]) == 1, name
    assert recs["h_exif.jpg"]["width"] == 512
    assert recs["b_blank.png"]["faces"] == [] and "error" not in recs["b_blank.png"]
    assert sorted(p.name for p in outdir.iterdir()) == [
        "a_face.png", "b_blank.png", "e_rgba.png", "f_palette.png", "g_16bit.png",
        "h_exif.png"]


def test_pixel_limit(folder, monkeypatch):
    from classicfer import imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 100_000)
    r = run(str(folder / "a_face.jpg"))
    assert r.exit_code == 1
    assert "a_face.jpg: 512x512 = 262,144 pixels is above the limit of 100,000" in r.stderr


def test_no_face_is_not_an_error(folder):
    r = run(str(folder / "b_blank.png"), "--method", "mtcnn")
    assert r.exit_code == 0
    assert "no face found" in r.stderr


def test_bad_method_and_no_input():
    assert run("--demo", "--method", "hog").exit_code == 2
    r = run()
    assert r.exit_code == 1 and "Error: no input images" in r.output


def test_demo_text_output():
    r = run("--demo", "--method", "mtcnn")
    assert r.exit_code == 0
    assert r.stdout.startswith("<astronaut>: face 1 box=(") and "landmarks=5" in r.stdout


def test_several_inputs_refuse_an_image_file_name_as_out(folder, tmp_path):
    out = tmp_path / "x.png"
    r = run(str(folder / "a_face.jpg"), str(folder / "e_rgba.png"), "--out", str(out))
    assert r.exit_code == 1
    assert f"Error: --out {out} looks like an image file name, but 2 inputs" in r.output
    assert "pass a folder" in r.output
    assert not out.exists()
    existing = tmp_path / "taken.txt"
    existing.write_text("keep")
    r = run(str(folder / "a_face.jpg"), str(folder / "e_rgba.png"), "--out", str(existing))
    assert r.exit_code == 1 and f"Error: --out {existing} is a file" in r.output
    assert existing.read_text() == "keep"


def test_one_input_may_go_to_an_existing_folder(folder, tmp_path):
    r = run(str(folder / "a_face.jpg"), "--out", str(tmp_path), "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a_face.png").is_file()


def test_result_lines_do_not_share_a_line_with_the_progress_bar(folder):
    images = [str(folder / n) for n in ("a_face.jpg", "e_rgba.png", "f_palette.png")]
    r = run(*images)  # several inputs: the progress bar is on (stderr)
    assert r.exit_code == 0, r.output
    assert "detect:" in r.stderr  # the bar was drawn
    results = [ln for ln in r.output.splitlines() if "box=(" in ln]  # splits at \r too
    assert len(results) == 3
    for line in results:
        assert line.startswith(tuple(images)), repr(line)
    assert r.stdout.splitlines() == results
