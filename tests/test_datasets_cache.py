"""The dataset cache, manifests and the inspect report."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

import classicfer.datasets as cds
from classicfer.datasets import (
    _cache,
    cache_file,
    dataset_manifest,
    find_duplicates,
    inspect_dataset,
    load_dataset,
    manifest_hash,
    write_manifest,
)


def _cached_files(tmp):
    d = tmp / "datasets"
    return sorted(p.name for p in d.glob("*.npz")) if d.exists() else []


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("CLASSICFER_CACHE", str(d))
    return d


def _forbid_loading(monkeypatch, formats=("fer2013-folder", "ckplus48", "imagefolder")):
    """Replace the loaders by ones that fail (same signature, so options still validate)."""
    import functools

    for fmt in formats:
        @functools.wraps(cds.LOADERS[fmt])
        def boom(*a, **k):
            raise AssertionError("loader called: the cache was not used")
        monkeypatch.setitem(cds.LOADERS, fmt, boom)


def _same(a, b):
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.images, b.images)
    for f in ("labels", "splits", "paths", "sha256"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert (a.subjects is None) == (b.subjects is None)
    if a.subjects is not None:
        np.testing.assert_array_equal(a.subjects, b.subjects)
    assert (a.name, a.format, a.root, a.skipped) == (b.name, b.format, b.root, b.skipped)


def test_second_load_comes_from_the_cache(tiny_ckplus48, cache_dir, monkeypatch):
    (tiny_ckplus48 / "anger" / "S999_001_00000001.png").write_bytes(b"")  # a skipped file
    first = load_dataset(tiny_ckplus48)
    assert len(_cached_files(cache_dir)) == 1
    _forbid_loading(monkeypatch)
    second = load_dataset(tiny_ckplus48)
    _same(first, second)
    assert second.skipped and second.skipped[0][0].endswith("S999_001_00000001.png")


def test_cache_key_follows_the_files(tiny_fer_folder, cache_dir):
    a = load_dataset(tiny_fer_folder)
    key_a = cache_file(tiny_fer_folder, "fer2013-folder", {})
    victim = tiny_fer_folder / "train" / "happy" / min(os.listdir(
        tiny_fer_folder / "train" / "happy"))
    # same size, new content and mtime: a new key, a fresh load, the old file removed
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0xFF
    victim.write_bytes(bytes(data))
    t = time.time() + 5
    os.utime(victim, (t, t))
    key_b = cache_file(tiny_fer_folder, "fer2013-folder", {})
    assert key_b != key_a
    b = load_dataset(tiny_fer_folder)
    i = list(a.paths).index(str(victim))
    assert a.sha256[i] != b.sha256[i]
    assert _cached_files(cache_dir) == [key_b.name]
    # a removed file: new key again, one image fewer
    victim.unlink()
    assert len(load_dataset(tiny_fer_folder)) == len(a) - 1
    # loader options are part of the key
    assert cache_file(tiny_fer_folder, "fer2013-folder", {"size": (32, 32)}) != \
        cache_file(tiny_fer_folder, "fer2013-folder", {})


def test_ragged_images_round_trip(tmp_path, cache_dir, monkeypatch):
    import cv2

    for i, shape in enumerate([(30, 40), (50, 20), (30, 40)]):
        d = tmp_path / "faces" / ("happy" if i else "sad")
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), np.full(shape, 40 * i, np.uint8))
    first = load_dataset(tmp_path / "faces")
    assert isinstance(first.images, list)
    _forbid_loading(monkeypatch)
    second = load_dataset(tmp_path / "faces")
    assert [im.shape for im in second.images] == [im.shape for im in first.images]
    for x, y in zip(first.images, second.images, strict=True):
        np.testing.assert_array_equal(x, y)


def test_cache_can_be_disabled(tiny_ckplus48, cache_dir, monkeypatch):
    load_dataset(tiny_ckplus48, cache=False)
    assert _cached_files(cache_dir) == []
    monkeypatch.setenv("CLASSICFER_CACHE", "off")
    assert _cache.cache_root() is None
    load_dataset(tiny_ckplus48)
    assert _cached_files(cache_dir) == []


def test_default_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("CLASSICFER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_root() == tmp_path / "xdg" / "classicfer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert str(_cache.cache_root()).endswith(os.path.join(".cache", "classicfer"))


def test_cache_never_written_inside_the_source_tree(tiny_ckplus48, monkeypatch):
    src = os.path.dirname(os.path.dirname(cds.__file__))
    repo = os.path.dirname(src)
    if not os.path.exists(os.path.join(repo, "pyproject.toml")):
        pytest.skip("installed package, not a checkout")
    inside = os.path.join(repo, ".test-cache-must-not-exist")
    monkeypatch.setenv("CLASSICFER_CACHE", inside)
    with pytest.warns(UserWarning, match="not caching datasets inside the source tree"):
        load_dataset(tiny_ckplus48)
    assert not os.path.exists(inside)


def test_corrupt_cache_file_is_ignored(tiny_ckplus48, cache_dir):
    first = load_dataset(tiny_ckplus48)
    (f,) = (cache_dir / "datasets").glob("*.npz")
    f.write_bytes(b"garbage")
    _same(first, load_dataset(tiny_ckplus48))
    assert f.stat().st_size > 1000  # rewritten


# --------------------------------------------------------------------------- manifests

def test_manifest_contents(tiny_ckplus48):
    import hashlib

    ds = load_dataset(tiny_ckplus48)
    man = dataset_manifest(ds)
    assert man["n_images"] == len(ds) == len(man["files"])
    assert man["manifest_hash"] == manifest_hash(ds)
    e = man["files"][0]
    assert set(e) == {"path", "sha256", "label", "split", "subject"}
    assert not os.path.isabs(e["path"]) and e["path"].startswith(("anger/", "contempt/"))
    assert e["sha256"] == hashlib.sha256((tiny_ckplus48 / e["path"]).read_bytes()).hexdigest()
    assert e["subject"] == e["path"].split("/")[1].split("_")[0]
    assert sum(man["counts"]["all"].values()) == len(ds)


def test_manifest_hash_identity(tiny_fer_folder, tmp_path):
    ds = load_dataset(tiny_fer_folder)
    h = manifest_hash(ds)
    # independent of the location on disk and of row order
    moved = shutil.copytree(tiny_fer_folder, tmp_path / "elsewhere" / "fer")
    assert manifest_hash(load_dataset(moved)) == h
    assert manifest_hash(ds.subset(np.arange(len(ds))[::-1])) == h
    # without recorded sha256 it is recomputed from the files: same answer
    ds2 = ds.subset(np.arange(len(ds)))
    ds2.sha256 = None
    assert manifest_hash(ds2) == h
    # changes with a subset, a label, or a file's bytes
    assert manifest_hash(ds.split("train")) != h
    relabel = ds.subset(np.arange(len(ds)))
    relabel.labels = relabel.labels.copy()
    relabel.labels[0] = "contempt"
    assert manifest_hash(relabel) != h
    victim = moved / "test" / "sad" / min(os.listdir(moved / "test" / "sad"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert manifest_hash(load_dataset(moved)) != h


def test_write_manifest(tiny_fer_folder, tmp_path):
    ds = load_dataset(tiny_fer_folder)
    out = tmp_path / "m.json"
    write_manifest(ds, out)
    man = json.loads(out.read_text())
    assert man["manifest_hash"] == manifest_hash(ds) and man["format"] == "fer2013-folder"
    assert {f["split"] for f in man["files"]} == {"train", "val", "test"}
    assert all(f["subject"] is None for f in man["files"])


# --------------------------------------------------------------------------- inspect

def test_duplicates_across_splits(tiny_fer_folder):
    train = tiny_fer_folder / "train" / "happy"
    src = train / min(os.listdir(train))
    shutil.copy(src, tiny_fer_folder / "test" / "happy" / "PrivateTest_9001.jpg")
    shutil.copy(src, tiny_fer_folder / "test" / "sad" / "PublicTest_9002.jpg")   # wrong label
    shutil.copy(src, tiny_fer_folder / "train" / "fear" / "Training_9003.jpg")
    ds = load_dataset(tiny_fer_folder)
    d = find_duplicates(ds)
    assert d["groups"] == 1 and d["images_in_groups"] == 4 and d["redundant"] == 3
    assert d["cross_split_groups"] == 1 and d["label_conflicts"] == 1
    assert d["leaks"] == {"test": 1, "val": 1, "val&test": 1}
    assert len(d["examples"][0]) == 4


def test_inspect_report(tiny_fer_folder):
    (tiny_fer_folder / "train" / "sad" / "Training_bad.jpg").write_bytes(b"\xff\xd8junk")
    ds = load_dataset(tiny_fer_folder)
    rep = inspect_dataset(ds)
    assert rep["n_images"] == 56 and rep["sizes"] == {"48x48": 56}
    assert rep["counts"]["happy"] == {"train": 4, "val": 2, "test": 2}
    assert rep["modes"] == {"JPEG L": 56} and rep["sampled"] == 56
    assert rep["skipped"]["count"] == 1 and "Training_bad.jpg" in rep["skipped"]["first"][0][
        "path"]
    assert rep["n_subjects"] is None and rep["duplicates"]["groups"] == 0
    json.dumps(rep)  # JSON-ready
    text = cds.format_report(rep)
    assert "total" in text and "duplicates 0 groups" in text and "skipped    1" in text


def test_entries_of_vanished_datasets_are_pruned(tmp_path, cache_dir):
    from conftest import make_tiny_ckplus48

    gone = make_tiny_ckplus48(tmp_path / "gone")
    load_dataset(gone)
    shutil.rmtree(gone)
    (cache_dir / "datasets" / "junk-x-y-z.npz").write_bytes(b"not a cache entry")
    kept = make_tiny_ckplus48(tmp_path / "kept")
    load_dataset(kept)
    names = sorted(p.name for p in (cache_dir / "datasets").iterdir())
    assert len(names) == 2 and all(n.startswith("kept-") for n in names)
