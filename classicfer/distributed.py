"""Scaling out: run grids and feature extraction on Dask, stream datasets in chunks.

Nothing here is a scheduler of its own: parallel work goes through joblib's
Dask backend (``dask.distributed``) or ``Client.map``; Dask is an optional extra
(``pip install "classicfer[dask]"``). Without it only ``backend="local"`` works.

Pieces
------
:func:`backend_context`
    ``with backend_context("dask", scheduler="tcp://host:8786"):`` routes every
    joblib ``Parallel`` inside (``GridSearchCV`` fits, feature chunks) to the Dask
    cluster; without an address a ``LocalCluster`` is started and closed.
:func:`stream_manifest` / :func:`iter_manifest_chunks`
    The manifest (relative path, label, split, sha256 of every image) is the unit
    of work: it is listed without decoding any image, and chunks of it are read
    from disk one at a time, so memory does not grow with the dataset.
:func:`extract_features_sharded`
    Features of each chunk are written to ``out_dir/shard-00000.npy`` (+ a
    ``shard-00000.json`` record with the rows' paths, labels and the array's
    sha256). Writes are atomic (temporary file, then rename) and idempotent: a
    shard that exists and verifies is skipped, so a rerun after a crash, or a
    chunk retried after its worker died, produces each shard exactly once and
    the same bytes as an uninterrupted run.
:func:`load_shards` / :func:`iter_shards`
    Memory-map the shards back (one at a time, or concatenated).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass

import numpy as np

from .config import is_image_file
from .exceptions import ConfigError, DataError
from .runtime._format import sha256_file

BACKENDS = ("local", "dask")
DASK_INSTALL = 'pip install "classicfer[dask]"  (or: pip install "dask[distributed]")'
SHARD_VERSION = 1
#: seconds to wait for a --scheduler address before giving up
CONNECT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------
def require_dask():
    """Import ``distributed``; a :class:`ConfigError` naming the install command if absent."""
    try:
        import distributed
        from joblib import parallel_config  # noqa: F401
    except ImportError:
        raise ConfigError(f"--backend dask needs dask.distributed, which is not installed; "
                          f"install it with: {DASK_INSTALL}") from None
    return distributed


def connect(scheduler: str | None = None, *, n_workers: int | None = None,
            threads_per_worker: int = 1, timeout: float | None = None, processes: bool = True):
    """A ``distributed.Client``: to ``scheduler`` when given, else to a new LocalCluster.

    Returns ``(client, cluster)``; ``cluster`` is None for a remote scheduler. An
    unreachable address, or one where no Dask scheduler answers (see
    :func:`check_scheduler`), raises :class:`ConfigError` naming it (after at
    most ``timeout`` s, default :data:`CONNECT_TIMEOUT`).
    """
    distributed = require_dask()
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    if timeout <= 0:
        raise ConfigError(f"the scheduler timeout must be > 0 seconds, got {timeout:g}")
    if scheduler:
        check_scheduler(scheduler, timeout)
        try:
            client = distributed.Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} within "
                              f"{timeout:g} s ({type(e).__name__}); {_START_HINT}") from None
        return client, None
    n_workers = n_workers or min(2, os.cpu_count() or 1)
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                       processes=processes, dashboard_address=":0",
                                       silence_logs=40)
    return distributed.Client(cluster), cluster


_START_HINT = "start one with `dask scheduler` or omit --scheduler for a local cluster"


async def _identify(address: str, timeout: float) -> object:
    """Open a Dask comm to ``address`` and ask the server's identity."""
    from distributed.comm import connect as comm_connect
    from distributed.security import Security

    args = Security().get_connection_args("client")
    comm = await comm_connect(address, timeout=timeout, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _identify_within(address: str, timeout: float) -> object:
    """:func:`_identify` on a private event loop and thread, cut off after ``timeout`` s."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    pool = ThreadPoolExecutor(1, thread_name_prefix="classicfer-scheduler-check")
    try:
        fut = pool.submit(asyncio.run, asyncio.wait_for(_identify(address, timeout), timeout))
        try:
            return fut.result(timeout + 5)
        except (FutureTimeout, asyncio.TimeoutError):  # distinct from TimeoutError before 3.11
            raise TimeoutError from None
    finally:
        pool.shutdown(wait=False)


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Check that ``address`` is a Dask scheduler that answers within ``timeout`` seconds.

    ``distributed.Client`` waits for the server's handshake without a time limit
    and decodes whatever arrives as a message, so a port held by another service
    would hang it or make it allocate absurd buffers. This asks the server who it
    is over a connection of its own, bounded in time.

    Raises
    ------
    ConfigError
        One line naming the address: nothing listens, no answer in time, not the
        Dask protocol, or a Dask server that is not a scheduler (a worker).
    """
    if str(address).startswith("inproc://"):
        return  # in-process: nothing on the network to be wrong about
    try:
        reply = _identify_within(address, timeout)
    except TimeoutError:
        raise ConfigError(f"no Dask scheduler answered at {address} within {timeout:g} s "
                          f"(is it a Dask scheduler address?); {_START_HINT}") from None
    except OSError as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} within "
                          f"{timeout:g} s ({type(e).__name__}); {_START_HINT}") from None
    except Exception as e:  # noqa: BLE001 (whatever a foreign service's bytes decode to)
        raise ConfigError(f"{address} is not a Dask scheduler: it does not speak the Dask "
                          f"protocol ({type(e).__name__}); {_START_HINT}") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        what = f"a Dask {kind}" if isinstance(kind, str) else "another Dask service"
        raise ConfigError(f"{address} is {what}, not a Dask scheduler; give the scheduler's "
                          "address (`dask scheduler` prints it)")


@contextlib.contextmanager
def backend_context(backend: str = "local", scheduler: str | None = None,
                    n_workers: int | None = None, *, timeout: float | None = None):
    """Route joblib's parallel work to ``backend`` for the duration of the block.

    Parameters
    ----------
    backend : ``"local"`` or ``"dask"``
        ``local`` changes nothing (joblib's default processes); ``dask`` sets
        ``joblib.parallel_config(backend="dask", n_jobs=-1)`` with a client.
    scheduler : str, optional
        ``tcp://host:8786`` of a running ``dask scheduler``; without it a
        LocalCluster of ``n_workers`` single-thread worker processes is started
        and shut down on exit.
    timeout : float, optional
        Seconds to wait for ``scheduler`` to answer as a Dask scheduler
        (default :data:`CONNECT_TIMEOUT`); a silent or foreign service at that
        address raises :class:`ConfigError` instead of hanging.

    Yields
    ------
    distributed.Client or None
    """
    backend = str(backend).lower()
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "local":
        if scheduler:
            raise ConfigError("--scheduler needs --backend dask")
        yield None
        return
    from joblib import parallel_config

    client, cluster = connect(scheduler, n_workers=n_workers, timeout=timeout)
    try:
        with parallel_config(backend="dask", n_jobs=-1):
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------
# streaming manifests
# ---------------------------------------------------------------------------
@dataclass
class StreamManifest:
    """The images of a dataset named but not loaded: the unit of work for streaming.

    ``paths`` are relative to ``root`` (numpy arrays keep the per-image overhead
    to a few dozen bytes); ``sha256`` is None when unknown (a folder scan does
    not hash files; a JSON manifest or a loaded Dataset does).
    """

    root: str
    paths: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    sha256: np.ndarray | None = None
    name: str = "dataset"

    def __len__(self) -> int:
        return len(self.paths)

    def digest(self) -> str:
        """sha256 over the ordered rows (path, label, split, sha256): names this work."""
        h = hashlib.sha256(b"classicfer-stream-v1\n")
        sha = self.sha256 if self.sha256 is not None else [""] * len(self)
        for p, lab, sp, s in zip(self.paths, self.labels, self.splits, sha, strict=True):
            h.update(f"{p}\t{lab}\t{sp}\t{s}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def repeat(self, k: int) -> StreamManifest:
        """The manifest listed ``k`` times (for memory-scaling benchmarks)."""
        return StreamManifest(self.root, np.tile(self.paths, k), np.tile(self.labels, k),
                              np.tile(self.splits, k),
                              None if self.sha256 is None else np.tile(self.sha256, k),
                              self.name)

    def subset(self, index) -> StreamManifest:
        """The rows at ``index`` (integer indices or a boolean mask), as a new manifest."""
        idx = np.asarray(index)
        return StreamManifest(self.root, self.paths[idx], self.labels[idx], self.splits[idx],
                              None if self.sha256 is None else self.sha256[idx], self.name)


def _scan_folder(root: str) -> StreamManifest:
    from .datasets._base import folder_label
    from .datasets._fer2013 import FOLDER_SPLITS, _usage_of, list_dirs, list_files

    dirs = list_dirs(root)
    split_dirs = [d for d in dirs if d.lower() in FOLDER_SPLITS]
    parts = [(d, FOLDER_SPLITS[d.lower()]) for d in split_dirs] if split_dirs else [("", "")]
    paths, labels, splits = [], [], []
    for part, part_split in parts:
        pdir = os.path.join(root, part) if part else root
        for cls in list_dirs(pdir):
            cdir = os.path.join(pdir, cls)
            label = folder_label(cdir, cls)
            for fn in list_files(cdir):
                if not is_image_file(fn):
                    continue
                paths.append(f"{part}/{cls}/{fn}" if part else f"{cls}/{fn}")
                labels.append(label)
                splits.append(_usage_of(fn) or part_split)
    if not paths:
        raise DataError(f"{root}: no images found under <class>/ or <split>/<class>/ folders; "
                        "give a dataset folder or a manifest JSON")
    name = os.path.basename(os.path.normpath(root)) or "dataset"
    return StreamManifest(root, np.array(paths), np.array(labels), np.array(splits), None, name)


def _from_manifest_dict(man: dict, source="manifest") -> StreamManifest:
    try:
        files = man["files"]
        root = man["root"]
    except (KeyError, TypeError):
        raise DataError(f"{source}: not a classicfer manifest (expected 'root' and 'files' "
                        "keys, as written by classicfer.datasets.write_manifest)") from None
    return StreamManifest(
        root, np.array([f["path"] for f in files]), np.array([f["label"] for f in files]),
        np.array([f.get("split") or "" for f in files]),
        np.array([f.get("sha256") or "" for f in files]), man.get("name", "dataset"))


def stream_manifest(source) -> StreamManifest:
    """List the images of ``source`` without decoding them.

    ``source``: a :class:`StreamManifest`; a dataset folder (``<split>/<class>/*``
    as FER-2013, or ``<class>/*`` as CK+48); a manifest JSON file or dict from
    :func:`classicfer.datasets.dataset_manifest`; or a loaded
    :class:`~classicfer.datasets.Dataset` (its source files are re-read per chunk).
    """
    from .datasets import Dataset

    if isinstance(source, StreamManifest):
        return source
    if isinstance(source, dict):
        return _from_manifest_dict(source)
    if isinstance(source, Dataset):
        from .datasets.manifest import _relative_paths

        rel = _relative_paths(source)
        root = os.path.abspath(source.root) if source.root else ""
        root = root if os.path.isdir(root) else os.path.dirname(root)
        return StreamManifest(root, np.array(rel), np.asarray(source.labels),
                              np.asarray(source.splits),
                              None if source.sha256 is None else np.asarray(source.sha256),
                              source.name)
    path = os.fspath(source)
    if os.path.isdir(path):
        return _scan_folder(path)
    if os.path.isfile(path) and path.lower().endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                man = json.load(fh)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read the manifest JSON ({e})") from None
        return _from_manifest_dict(man, path)
    raise DataError(f"{path}: expected a dataset folder or a manifest .json file")


def read_chunk(root: str, paths, sha256=None, size=(48, 48)) -> np.ndarray:
    """Decode ``paths`` (relative to ``root``) as an (n, H, W) uint8 array.

    When ``sha256`` is given each file's bytes must match it (the manifest
    names exactly these images); a mismatch or an unreadable file raises
    :class:`DataError` naming the file.
    """
    from .datasets._read import _fit, read_file
    from .exceptions import ImageError

    out = []
    for i, rel in enumerate(paths):
        full = os.path.join(root, str(rel))
        try:
            img, digest = read_file(full)
        except ImageError as e:
            raise DataError(f"{e}; the manifest lists it, so the chunk cannot be built") from None
        if sha256 is not None and sha256[i] and sha256[i] != digest:
            raise DataError(f"{full}: sha256 differs from the manifest (file changed since the "
                            "manifest was written); rewrite the manifest")
        img = _fit(img, size)
        out.append(img)
    shapes = {im.shape for im in out}
    if len(shapes) > 1:
        raise DataError(f"{root}: images of different sizes {sorted(shapes)[:3]} in one chunk; "
                        "pass size=(H, W)")
    return np.stack(out) if out else np.zeros((0,) + tuple(size or (48, 48)), np.uint8)


@dataclass
class Chunk:
    """Rows ``start:stop`` of a manifest (chunk number ``index``), with their decoded images."""

    index: int
    start: int
    stop: int
    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    if int(chunk_size) < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return [(a, min(a + int(chunk_size), n)) for a in range(0, n, int(chunk_size))]


def iter_manifest_chunks(source, chunk_size: int = 4096, *, size=(48, 48)):
    """Yield :class:`Chunk` s of ``chunk_size`` images, read from disk one chunk at a time.

    Memory holds one chunk of pixels plus the manifest's names, whatever the
    dataset's size.
    """
    man = stream_manifest(source)
    for i, (a, b) in enumerate(chunk_bounds(len(man), chunk_size)):
        sha = None if man.sha256 is None else man.sha256[a:b]
        yield Chunk(i, a, b, read_chunk(man.root, man.paths[a:b], sha, size),
                    man.labels[a:b], man.paths[a:b])


# ---------------------------------------------------------------------------
# sharded feature extraction
# ---------------------------------------------------------------------------
def _atomic_write(path: str, write) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def verify_shard(out_dir, i: int, work_id: str | None = None) -> dict | None:
    """The record of shard ``i`` when it is complete and valid, else None.

    Valid: ``shard-i.npy`` + ``.json`` exist, belong to ``work_id`` and the array's
    sha256 matches. None means the shard must be (re)computed.
    """
    base = os.path.join(os.fspath(out_dir), shard_name(i))
    try:
        with open(base + ".json", encoding="utf-8") as fh:
            rec = json.load(fh)
        if work_id is not None and rec.get("work_id") != work_id:
            return None
        if sha256_file(base + ".npy") != rec.get("sha256"):
            return None
    except (OSError, ValueError):
        return None
    return rec


def _extract_one(root, paths, sha256, labels, config_json, out_dir, i, start, work_id, size):
    """Compute and atomically write one shard (runs on a worker). Returns its record."""
    import time

    rec = verify_shard(out_dir, i, work_id)
    if rec is not None:
        return {**rec, "reused": True}
    from .features import features_from_config

    t0 = time.perf_counter()
    images = read_chunk(root, paths, sha256, size)
    feats = np.ascontiguousarray(
        features_from_config(json.loads(config_json)).transform(images), np.float32)
    base = os.path.join(out_dir, shard_name(i))
    _atomic_write(base + ".npy", lambda fh: np.save(fh, feats))
    rec = {"shard_version": SHARD_VERSION, "work_id": work_id, "index": i, "start": start,
           "stop": start + len(paths), "shape": list(feats.shape),
           "sha256": sha256_file(base + ".npy"), "labels": [str(v) for v in labels],
           "paths": [str(p) for p in paths], "seconds": round(time.perf_counter() - t0, 3),
           "pid": os.getpid()}
    # the .json is written last: it commits the shard
    _atomic_write(base + ".json", lambda fh: fh.write(json.dumps(rec).encode()))
    return {**rec, "reused": False}


def extract_features_sharded(source, features_spec: str, params: dict | None, out_dir, *,
                             chunk_size: int = 4096, client=None, n_jobs=None, size=(48, 48),
                             retries: int = 3, progress: bool = False) -> dict:
    """Extract features of every image in ``source`` into ``.npy`` shards under ``out_dir``.

    Parameters
    ----------
    source
        Anything :func:`stream_manifest` accepts (folder, manifest JSON, Dataset).
    features_spec, params
        As :func:`classicfer.features.make_features` (``"hog+lbp"``, ``{}``).
    out_dir
        Folder of ``plan.json`` + ``shard-00000.npy``/``.json``...; an existing
        folder of the same work (same rows, features, params, chunk size) is
        resumed: verified shards are kept, missing or corrupt ones recomputed.
        A folder of other work is refused.
    client : distributed.Client, optional
        Map chunks over the Dask cluster (``retries`` per chunk; a chunk whose
        worker died is rerun, and its atomic write makes the rerun harmless).
        Without it, chunks run through joblib (``n_jobs`` processes) or in turn.

    Returns
    -------
    dict
        ``n_images``, ``n_shards``, ``computed``, ``reused``, ``work_id``, ``out_dir``.
    """
    from .features import feature_config, make_features

    man = stream_manifest(source)
    if not len(man):
        raise DataError("the manifest lists no images")
    config = feature_config(make_features(features_spec, params))  # validates them
    spec = config["spec"]
    config_json = json.dumps(config, sort_keys=True)
    bounds = chunk_bounds(len(man), chunk_size)
    plan = {"shard_version": SHARD_VERSION, "features": spec, "params": config["params"],
            "manifest_digest": man.digest(), "n_images": len(man), "chunk_size": int(chunk_size),
            "n_shards": len(bounds), "size": list(size) if size else None, "root": man.root,
            "name": man.name}
    if "align" in config:  # the alignment step: other features, other work
        plan["align"] = config["align"]
    work_id = hashlib.sha256(json.dumps({k: v for k, v in plan.items() if k != "root"},
                                        sort_keys=True).encode()).hexdigest()
    plan["work_id"] = work_id
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    plan_path = os.path.join(out_dir, "plan.json")
    if os.path.exists(plan_path):
        try:
            with open(plan_path, encoding="utf-8") as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = {}
        if old.get("work_id") != work_id:
            raise ConfigError(f"{out_dir} holds shards of other work (features "
                              f"{old.get('features')!r}, {old.get('n_images')} images); use "
                              "another --out folder or delete it")
    else:
        _atomic_write(plan_path, lambda fh: fh.write(json.dumps(plan, indent=1).encode()))
    # stale temporaries from a killed writer are never read; tidy them
    for fn in os.listdir(out_dir):
        if ".tmp-" in fn:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out_dir, fn))

    def args(i, a, b):
        sha = None if man.sha256 is None else man.sha256[a:b]
        return (man.root, man.paths[a:b], sha, man.labels[a:b], config_json, out_dir, i,
                a, work_id, size)

    todo = [(i, a, b) for i, (a, b) in enumerate(bounds) if verify_shard(out_dir, i, work_id)
            is None]
    reused = len(bounds) - len(todo)
    records = []
    if client is not None:
        from distributed import as_completed

        futs = [client.submit(_extract_one, *args(i, a, b), key=f"classicfer-shard-{work_id[:12]}"
                              f"-{i}", retries=retries, pure=False)
                for i, a, b in todo]
        for fut in as_completed(futs):
            records.append(fut.result())
            fut.release()
    elif n_jobs not in (None, 1):
        from joblib import Parallel, delayed

        records = Parallel(n_jobs=n_jobs)(delayed(_extract_one)(*args(i, a, b))
                                          for i, a, b in todo)
    else:
        it = todo
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(todo, desc="shards", unit="shard")
        records = [_extract_one(*args(i, a, b)) for i, a, b in it]
    bad = [i for i in range(len(bounds)) if verify_shard(out_dir, i, work_id) is None]
    if bad:
        raise DataError(f"{out_dir}: shards {bad[:5]} did not verify after extraction; rerun "
                        "to recompute them")
    computed = sum(not r.get("reused") for r in records)
    return {"out_dir": out_dir, "work_id": work_id, "n_images": len(man),
            "n_shards": len(bounds), "computed": computed, "reused": reused + len(records)
            - computed, "features": spec, "pids": sorted({r["pid"] for r in records
                                                          if not r.get("reused")})}


def _plan(out_dir) -> dict:
    path = os.path.join(os.fspath(out_dir), "plan.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        raise DataError(f"{out_dir}: no readable plan.json; not a shard folder written by "
                        "extract_features_sharded") from None


def iter_shards(out_dir, *, mmap: bool = True):
    """Yield ``(features, labels, paths)`` per shard, in row order (memory-mapped)."""
    plan = _plan(out_dir)
    for i in range(plan["n_shards"]):
        rec = verify_shard(out_dir, i, plan["work_id"])
        if rec is None:
            raise DataError(f"{out_dir}: {shard_name(i)} is missing or corrupt; rerun the "
                            "extraction to complete it")
        X = np.load(os.path.join(os.fspath(out_dir), shard_name(i) + ".npy"),
                    mmap_mode="r" if mmap else None)
        yield X, np.array(rec["labels"]), np.array(rec["paths"])


def load_shards(out_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All shards concatenated: ``(X (N, F) float32, labels (N,), paths (N,))``."""
    parts = list(iter_shards(out_dir))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


__all__ = [
    "BACKENDS",
    "Chunk",
    "StreamManifest",
    "backend_context",
    "check_scheduler",
    "connect",
    "extract_features_sharded",
    "iter_manifest_chunks",
    "iter_shards",
    "load_shards",
    "read_chunk",
    "require_dask",
    "stream_manifest",
    "verify_shard",
]
