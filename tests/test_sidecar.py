"""The model folder's safety: ``model.json`` schema and values, ``onnx.file`` confinement,
folder digests (``--model-digest``, ``$CLASSICFER_MODEL_DIGEST``, the bundled models'
recorded digests) and graphs with external data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.exceptions import ConfigError, ModelError
from classicfer.export._testing import make_linear_model
from classicfer.runtime import _model, load_model, read_sidecar
from classicfer.runtime._digests import (
    DIGEST_ENV,
    DIGESTS_FILE,
    bundled_digests,
    model_digest,
    record_bundled_digests,
    recorded_digests,
)
from classicfer.runtime._format import folder_digest

# ---------------------------------------------------------------- helpers
_OPENED: list | None = None


def _audit(event, args):
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def recording_opens():
    """Every path opened (``open``/``os.open``) inside the block."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    return make_linear_model(tmp_path_factory.mktemp("models") / "linear")


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit(d, change):
    side = d / "model.json"
    meta = json.loads(side.read_text())
    out = change(meta)
    side.write_text(json.dumps(meta if out is None else out))
    return d


def _one_line_error(d, match):
    with pytest.raises(ModelError, match=match) as e:
        load_model(d, cache=False)
    assert "\n" not in str(e.value)
    return str(e.value)


def _set(path, value):
    keys = path.split(".")

    def change(meta):
        node = meta
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return change


# ------------------------------------------------------------- malformed sidecars
@pytest.mark.parametrize("change, match", [
    (lambda m: [m], r"the document must be a JSON object, got \["),
    (_set("format_version", None), r"format_version must be an integer >= 1, got null"),
    (_set("format_version", "one"), r'format_version must be an integer >= 1, got "one"'),
    (_set("format_version", 2), r"format_version must be <= 1 .*upgrade classicfer"),
    (_set("onnx", "model.onnx"), r'onnx must be an object, got "model.onnx"'),
    (_set("onnx.file", ["model.onnx"]), r"onnx.file must be a plain file name"),
    (_set("onnx.sha256", 12345), r"onnx.sha256 must be the ONNX file's sha256"),
    (_set("input.size", []), r"input.size must be \[height, width\]"),
    (_set("input.size", "48"), r"input.size must be \[height, width\]"),
    (_set("input.size", [10**6, 10**6]), r"input.size must be \[height, width\]"),
    (_set("input.mean", [0.5, 0.5, 0.5]), r"input.mean must be one value \(gray input\)"),
    (_set("input.std", 0), r"input.std must be a finite number > 0"),
    (_set("input.mean", 1e308), r"input.mean must be a finite number"),  # inf in float32
    (_set("input.color", "grey"), r'input.color must be "gray" or "rgb"'),
    (_set("temperature", "1.0"), r"temperature must be a finite number > 0"),
    (_set("kind", "svm"), r'kind must be "cnn" or "classical"'),
    (_set("labels", []), r"labels must be a non-empty array"),
    (lambda m: m.pop("input") and None, r"input is missing"),
    (lambda m: m.__setitem__("kind", "classical"), r"features is missing"),
])
def test_malformed_sidecar_is_a_one_line_error_naming_the_key(tmp_path, linear, change, match):
    d = _edit(_copy(linear, tmp_path / "m"), change)
    msg = _one_line_error(d, match)
    assert msg.startswith(str(d / "model.json"))


@pytest.mark.parametrize("raw, match", [
    (b"[" * 100_000, "invalid JSON"),
    (b"\xff\xfe{}", "invalid JSON"),
    (b'{"format": "classicfer-model", "format_version": 1e999}', "format_version"),
])
def test_unparseable_sidecar_is_a_one_line_error(tmp_path, linear, raw, match):
    d = _copy(linear, tmp_path / "m")
    (d / "model.json").write_bytes(raw)
    _one_line_error(d, match)


def test_oversized_sidecar_is_refused_unread(tmp_path, linear, monkeypatch):
    from classicfer.runtime import _format

    monkeypatch.setattr(_format, "MAX_SIDECAR_BYTES", 100)
    _one_line_error(_copy(linear, tmp_path / "m"), "more than the 100 allowed")


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("temperature", [-1, 0, float("nan"), float("inf"), 1e-300])
def test_temperature_must_be_finite_and_positive(tmp_path, linear, temperature):
    d = _edit(_copy(linear, tmp_path / "m"), _set("temperature", temperature))
    _one_line_error(d, "temperature must be a finite number > 0")


def test_input_size_the_graph_rejects_is_refused_at_load(tmp_path, linear):
    d = _edit(_copy(linear, tmp_path / "m"), _set("input.size", [7, 48]))
    _one_line_error(d, r"the graph does not run on the input the sidecar describes \(1, 1, 7, 48\)")


def test_labels_must_be_canonical_and_unique(tmp_path, linear):
    def rename(meta):
        meta["labels"][3] = "joy"

    def dup(meta):
        meta["labels"][5] = "happy"

    _one_line_error(_edit(_copy(linear, tmp_path / "a"), rename),
                    r'labels\[3\] must be a canonical emotion name .*got "joy"')
    _one_line_error(_edit(_copy(linear, tmp_path / "b"), dup),
                    r'labels\[5\] must be a label not listed before .*got "happy"')


def test_valid_sidecar_still_loads_and_write_refuses_a_bad_one(tmp_path, linear):
    from classicfer.export import write_model_dir

    meta, _ = read_sidecar(linear)
    assert load_model(linear, cache=False).temperature == 1.0
    bad = {k: v for k, v in meta.items() if k != "onnx"}
    bad["labels"] = ["happy", "happy"]
    with pytest.raises(ModelError, match=r"not written: labels\[1\]"):
        write_model_dir(tmp_path / "w", b"graph", bad, card=False)
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------- onnx.file confinement
@pytest.mark.parametrize("name", ["../outside.onnx", "{abs}", "sub/model.onnx", "..",
                                  "model.json"])
def test_onnx_file_outside_the_folder_is_refused_before_it_is_opened(tmp_path, linear, name):
    d = _copy(linear, tmp_path / "m")
    (d / "sub").mkdir()
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((linear / "model.onnx").read_bytes())  # a valid graph, same sha256
    shutil.copy(linear / "model.onnx", d / "sub" / "model.onnx")
    _edit(d, _set("onnx.file", name.format(abs=outside)))
    with recording_opens() as opened:
        _one_line_error(d, "onnx.file must be a plain file name inside the model folder")
    assert opened == [str(d / "model.json")]


def test_onnx_symlink_leading_out_of_the_folder_is_refused_unread(tmp_path, linear):
    d = _copy(linear, tmp_path / "m")
    outside = tmp_path / "elsewhere.onnx"
    (d / "model.onnx").rename(outside)
    (d / "model.onnx").symlink_to(outside)
    with recording_opens() as opened:
        _one_line_error(d, "leads outside the model folder")
    assert str(outside) not in opened and str(d / "model.onnx") not in opened


def test_onnx_file_that_is_not_a_regular_file_is_refused(tmp_path, linear):
    d = _copy(linear, tmp_path / "m")
    (d / "model.onnx").unlink()
    os.mkfifo(d / "model.onnx")  # reading it would block
    _one_line_error(d, "not a regular file")


def test_graph_with_external_data_is_refused(tmp_path, linear):
    import onnx

    d = _copy(linear, tmp_path / "m")
    model = onnx.load(str(d / "model.onnx"))
    onnx.save_model(model, str(d / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    sha = hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()
    _edit(d, _set("onnx.sha256", sha))
    _one_line_error(d, "external data files")


def test_non_finite_graph_output_is_an_error_not_a_probability(tmp_path, linear):
    import onnx
    from onnx import numpy_helper

    d = _copy(linear, tmp_path / "m")
    model = onnx.load(str(d / "model.onnx"))
    b = next(t for t in model.graph.initializer if t.name == "b")
    b.CopyFrom(numpy_helper.from_array(np.full(7, np.inf, np.float32), "b"))
    (d / "model.onnx").write_bytes(model.SerializeToString())
    _edit(d, _set("onnx.sha256", hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()))
    m = load_model(d, cache=False)
    with pytest.raises(ModelError, match="non-finite values"):
        m.predict_proba(np.zeros((48, 48), np.uint8))


# ------------------------------------------------------------------ digests
def test_folder_digest_is_the_documented_construction(linear):
    side, graph = (linear / "model.json").read_bytes(), (linear / "model.onnx").read_bytes()
    h = hashlib.sha256()
    for name, data in (("model.json", side), ("model.onnx", graph)):
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    assert model_digest(linear) == h.hexdigest() == folder_digest(
        {"model.onnx": graph, "model.json": side})
    assert load_model(linear, cache=False).digest == h.hexdigest()


def test_swapped_labels_change_the_digest_and_a_pin_refuses_them(tmp_path, linear):
    pin = model_digest(linear)
    d = _copy(linear, tmp_path / "swapped")

    def swap(meta):
        lab = meta["labels"]
        lab[3], lab[5] = lab[5], lab[3]  # happy <-> sad: passes every other check
    _edit(d, swap)
    assert load_model(d, cache=False).labels[3] == "sad"  # unpinned: a valid model
    assert model_digest(d) != pin
    _ = load_model(linear, cache=False, digest=pin.upper())  # the original passes
    with pytest.raises(ModelError, match="is not the pinned") as e:
        load_model(d, cache=False, digest=pin)
    assert "\n" not in str(e.value)


def test_pin_is_checked_on_a_cached_model_too(tmp_path, linear):
    d = _copy(linear, tmp_path / "cached")
    load_model(d)
    with pytest.raises(ModelError, match="is not the pinned"):
        load_model(d, digest="0" * 64)


def test_environment_pins_the_model(tmp_path, linear, monkeypatch):
    d = _copy(linear, tmp_path / "env")
    monkeypatch.setenv(DIGEST_ENV, model_digest(d))
    assert load_model(d, cache=False).labels
    _edit(d, _set("temperature", 0.5))
    with pytest.raises(ModelError, match="is not the pinned"):
        load_model(d, cache=False)
    monkeypatch.setenv(DIGEST_ENV, "not-hex")
    with pytest.raises(ConfigError, match=f"\\${DIGEST_ENV} must be 64 hex digits"):
        load_model(linear, cache=False)


def _crop_png(tmp_path):
    from PIL import Image

    p = tmp_path / "crop.png"
    Image.fromarray(np.full((48, 48), 120, np.uint8)).save(p)
    return str(p)


def test_cli_model_digest_and_pinned_predict(tmp_path, linear, monkeypatch):
    monkeypatch.delenv(DIGEST_ENV, raising=False)
    r = CliRunner().invoke(cli, ["model-digest", str(linear)])
    assert r.exit_code == 0, r.output
    pin = r.output.strip()
    assert pin == model_digest(linear)
    crop = _crop_png(tmp_path)
    base = ["predict", crop, "--no-detect", "--model"]
    ok = CliRunner().invoke(cli, [*base, str(linear), "--model-digest", pin])
    assert ok.exit_code == 0, ok.output
    d = _edit(_copy(linear, tmp_path / "t"), _set("temperature", 3.0))
    bad = CliRunner().invoke(cli, [*base, str(d), "--model-digest", pin])
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: ") and "is not the pinned" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    monkeypatch.setenv(DIGEST_ENV, pin)
    env = CliRunner().invoke(cli, [*base, str(d)])
    assert env.exit_code == 1 and "is not the pinned" in env.output
    usage = CliRunner().invoke(cli, [*base, str(linear), "--model-digest", "abc"])
    assert usage.exit_code == 2 and "64 hex digits" in usage.output


def test_model_digest_command_refuses_an_invalid_folder(tmp_path, linear):
    d = _edit(_copy(linear, tmp_path / "m"), _set("temperature", -1))
    r = CliRunner().invoke(cli, ["model-digest", str(d)])
    assert r.exit_code == 1 and "temperature must be" in r.output


# ------------------------------------------------------------- bundled models
def test_recorded_bundled_digests_match_the_files():
    """Regenerate with `classicfer model-digest --record-bundled` after changing a bundled
    model on purpose.
    """
    computed = bundled_digests()
    if not computed:
        pytest.skip("no model bundled in classicfer/bundled_models/")
    assert recorded_digests() == computed


@pytest.fixture
def bundled_copy(tmp_path, monkeypatch):
    """The default bundled model and DIGESTS.json copied to a stand-in models folder."""
    real = _model.bundled_models_dir()
    src = next(iter(_model.list_models()), None)
    if src is None:
        pytest.skip("no model bundled in classicfer/bundled_models/")
    root = tmp_path / "models"
    root.mkdir()
    for f in ("model.json", "model.onnx"):
        (root / src.name).mkdir(exist_ok=True)
        shutil.copy(src / f, root / src.name / f)
    shutil.copy(real / DIGESTS_FILE, root / DIGESTS_FILE)
    monkeypatch.setattr(_model, "bundled_models_dir", lambda: root)
    return root / src.name


def test_tampered_copy_of_a_bundled_model_is_refused(bundled_copy):
    assert load_model(bundled_copy.name, cache=False).labels  # the intact copy loads

    original = read_sidecar(bundled_copy)[0]["labels"]

    def swap(meta):
        meta["labels"] = meta["labels"][::-1]
    _edit(bundled_copy, swap)
    assert read_sidecar(bundled_copy)[0]["labels"] == original[::-1]  # valid on its own
    msg = _one_line_error(bundled_copy, "does not match its recorded digest")
    assert "model-digest --record-bundled" in msg


def test_bundled_model_without_a_recorded_digest_is_refused(bundled_copy):
    (bundled_copy.parent / DIGESTS_FILE).write_text('{"digests": {}}')
    _one_line_error(bundled_copy, "has no digest in")
    assert record_bundled_digests(bundled_copy.parent) == {
        bundled_copy.name: model_digest(bundled_copy)}
    assert load_model(bundled_copy, cache=False).labels  # recorded again: loads
