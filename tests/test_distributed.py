"""Dask backend (grid, fit), streaming manifests and sharded feature extraction."""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from classicfer.cli import cli
from classicfer.datasets import load_dataset, write_manifest
from classicfer.distributed import (
    extract_features_sharded,
    iter_manifest_chunks,
    iter_shards,
    load_shards,
    stream_manifest,
)
from classicfer.evaluation import run_grid
from classicfer.exceptions import ConfigError, DataError
from classicfer.features import make_features


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cl = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0", silence_logs=40)
    client = distributed.Client(cl)
    yield client
    client.close()
    cl.close()


def _metrics(summary):
    keys = [k for k in summary[0] if k.startswith(("mean_test", "std_test", "rank_test"))]
    return sorted((r["features"], r["classifier"], r["params"],
                   tuple(round(r[k], 12) for k in keys)) for r in summary)


def test_grid_on_dask_equals_local(cluster, tiny_ckplus48):
    from distributed import get_task_stream

    from classicfer.distributed import backend_context

    ds = load_dataset(tiny_ckplus48)
    kw = {"features": ["hog"], "classifiers": ["linear-svm", "knn"],
              "params": {"C": [0.1, 1.0], "n_neighbors": [1, 3]}, "cv": "group:3",
              "groups": ds.subjects, "cache": True, "seed": 0}
    local, lfolds, _ = run_grid(ds.images, ds.labels, **kw)  # fills the (per-test) cache
    with backend_context("dask", scheduler=cluster.scheduler.address) as client, \
            get_task_stream(client) as ts:
        remote, rfolds, _ = run_grid(ds.images, ds.labels, **kw)
    assert len(ts.data) >= 2  # the fits really ran on the workers (one search per classifier)
    workers = {t["worker"] for t in ts.data}
    assert workers <= set(cluster.scheduler_info()["workers"])
    assert _metrics(remote) == _metrics(local)
    assert sorted(map(str, rfolds)) == sorted(map(str, lfolds))


def test_cli_grid_backend_dask_starts_a_local_cluster(tiny_ckplus48, tmp_path):
    pytest.importorskip("distributed")
    runner = CliRunner()
    base = ["grid", "--data", str(tiny_ckplus48), "--features", "hog", "--classifier",
            "linear-svm", "--param", "C=0.1,1", "--cv", "3", "-q"]
    r1 = runner.invoke(cli, base + ["--out", str(tmp_path / "local")])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(cli, base + ["--out", str(tmp_path / "dask"), "--backend", "dask",
                                    "--dask-workers", "2"])
    assert r2.exit_code == 0, r2.output

    def rows(d):
        with open(tmp_path / d / "summary.csv") as fh:
            return [{k: v for k, v in row.items() if "time" not in k}
                    for row in csv.DictReader(fh)]

    assert rows("dask") == rows("local") and len(rows("local")) == 2
    run = json.loads((tmp_path / "dask" / "run.json").read_text())
    assert run["backend"] == "dask"


def test_cli_bad_backend_input(tiny_ckplus48, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import classicfer.distributed as D

    runner = CliRunner()
    base = ["grid", "--data", str(tiny_ckplus48), "--features", "hog", "--classifier",
            "linear-svm", "--cv", "3", "-q", "--out", str(tmp_path / "r")]
    monkeypatch.setattr(D, "CONNECT_TIMEOUT", 2.0)
    r = runner.invoke(cli, base + ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code == 1
    assert "tcp://127.0.0.1:9" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(cli, base + ["--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code == 1 and "--backend dask" in r.output
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    r = runner.invoke(cli, base + ["--backend", "dask"])
    assert r.exit_code == 1 and "pip install" in r.output and "dask" in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.fixture(params=["silent", "http"])
def not_a_scheduler(request):
    """``tcp://127.0.0.1:PORT`` of a server that accepts and then says nothing, or answers
    like an HTTP server (bytes a Dask client would read as a 3 EiB message).
    """
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    stop, conns = threading.Event(), []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conns.append(conn)
            if request.param == "http":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for c in conns:
        c.close()
    srv.close()


def _invoke_within(args, seconds):
    """CliRunner result of ``classicfer ARGS``, or None if it is still running after ``seconds``."""
    import threading

    out = []
    t = threading.Thread(target=lambda: out.append(CliRunner().invoke(cli, args)), daemon=True)
    t.start()
    t.join(seconds)
    return out[0] if out else None


@pytest.mark.parametrize("command", ["fit", "grid"])
def test_scheduler_that_is_not_dask_fails_fast_in_one_line(not_a_scheduler, command,
                                                            tiny_ckplus48, tmp_path):
    pytest.importorskip("distributed")
    extra = ["--cv", "3"] if command == "grid" else []
    args = [command, "--data", str(tiny_ckplus48), "--features", "hog", "--classifier",
            "logreg", "--out", str(tmp_path / "out"), "-q", *extra, "--backend", "dask",
            "--scheduler", not_a_scheduler, "--scheduler-timeout", "1"]
    r = _invoke_within(args, 30)
    assert r is not None, "still waiting for the scheduler after 30 s"
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and not_a_scheduler in r.output
    assert "Dask scheduler" in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists()


def test_check_scheduler_accepts_a_scheduler_and_refuses_a_worker(cluster):
    from classicfer.distributed import check_scheduler

    check_scheduler(cluster.scheduler.address, 5)
    worker = next(iter(cluster.scheduler_info()["workers"]))
    with pytest.raises(ConfigError, match="not a Dask scheduler"):
        check_scheduler(worker, 5)


def _in_memory(root, spec="hog+lbp"):
    ds = load_dataset(root)
    F = make_features(spec).transform(ds.images)
    man = stream_manifest(ds)
    return dict(zip(man.paths, F, strict=True)), ds


def test_stream_manifest_and_chunks_match_the_loader(tiny_fer_folder):
    ds = load_dataset(tiny_fer_folder)
    man = stream_manifest(tiny_fer_folder)  # a folder scan: nothing decoded
    assert len(man) == len(ds) and man.sha256 is None
    by_path = dict(zip(stream_manifest(ds).paths, ds.images, strict=True))
    labels = dict(zip(stream_manifest(ds).paths, ds.labels, strict=True))
    splits = dict(zip(stream_manifest(ds).paths, ds.splits, strict=True))
    seen = 0
    for ch in iter_manifest_chunks(tiny_fer_folder, chunk_size=7):
        assert len(ch.images) <= 7
        for p, img, lab, i in zip(ch.paths, ch.images, ch.labels, range(ch.start, ch.stop),
                                  strict=True):
            np.testing.assert_array_equal(img, by_path[p])
            assert lab == labels[p] and man.splits[i] == splits[p]
            seen += 1
    assert seen == len(ds)


def test_sharded_extraction_on_dask_equals_in_memory(cluster, tiny_ckplus48, tmp_path):
    ref, ds = _in_memory(tiny_ckplus48)
    man_path = tmp_path / "manifest.json"
    write_manifest(ds, man_path)  # sha256 per file: every chunk is checked against it
    out = tmp_path / "shards"
    info = extract_features_sharded(man_path, "hog+lbp", {}, out, chunk_size=16, client=cluster)
    assert info["n_shards"] == -(-len(ds) // 16) and info["computed"] == info["n_shards"]
    X, y, paths = load_shards(out)
    assert X.dtype == np.float32 and len(X) == len(ds) == len(set(paths))
    np.testing.assert_array_equal(X, np.stack([ref[p] for p in paths]))
    expected = dict(zip(stream_manifest(ds).paths, ds.labels, strict=True))
    assert dict(zip(paths, y, strict=True)) == expected
    # a second run reuses every shard
    again = extract_features_sharded(man_path, "hog+lbp", {}, out, chunk_size=16, client=cluster)
    assert again["computed"] == 0 and again["reused"] == info["n_shards"]


def test_partial_shard_set_resumes_without_duplication(tiny_ckplus48, tmp_path):
    out = tmp_path / "shards"
    first = extract_features_sharded(tiny_ckplus48, "hog", {}, out, chunk_size=10)
    X0, y0, p0 = load_shards(out)
    n = first["n_shards"]
    assert n >= 4
    os.remove(out / "shard-00001.json")  # died before committing
    with open(out / "shard-00002.npy", "r+b") as fh:  # torn / corrupted array
        fh.seek(-8, 2)
        fh.write(b"\0" * 8)
    (out / "shard-00003.npy.tmp-deadbeef").write_bytes(b"partial")  # a killed writer's temp
    with pytest.raises(DataError, match="shard-00001"):
        list(iter_shards(out))
    second = extract_features_sharded(tiny_ckplus48, "hog", {}, out, chunk_size=10)
    assert second["computed"] == 2 and second["reused"] == n - 2
    X1, y1, p1 = load_shards(out)
    np.testing.assert_array_equal(X1, X0)
    assert list(y1) == list(y0) and list(p1) == list(p0)
    assert sorted(f for f in os.listdir(out) if f.startswith("shard")) == sorted(
        [f"shard-{i:05d}.npy" for i in range(n)] + [f"shard-{i:05d}.json" for i in range(n)])
    # other work in the same folder is refused, not mixed
    with pytest.raises(ConfigError, match="other work"):
        extract_features_sharded(tiny_ckplus48, "lbp", {}, out, chunk_size=10)


def test_stream_bad_input(tmp_path, tiny_ckplus48):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        stream_manifest(tmp_path / "empty")
    with pytest.raises(DataError, match="not a classicfer manifest"):
        stream_manifest({"x": 1})
    ds = load_dataset(tiny_ckplus48)
    man = json.loads(json.dumps(write_manifest(ds, tmp_path / "m.json")))
    man["files"][0]["sha256"] = "0" * 64
    with pytest.raises(DataError, match="sha256 differs"):
        extract_features_sharded(man, "hog", {}, tmp_path / "s", chunk_size=8)
    with pytest.raises(ConfigError, match="chunk_size"):
        list(iter_manifest_chunks(tiny_ckplus48, chunk_size=0))
