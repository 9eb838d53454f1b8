"""Loading a deployed model and running it with onnxruntime (no torch, no pickles).

A :class:`DeployedModel` wraps one ``model.onnx`` + ``model.json`` folder:

- ``kind == "cnn"``: crops are normalised as the sidecar says and the ONNX graph
  runs end to end (logits or probabilities out);
- ``kind == "classical"``: the feature step the ``features`` block describes (the
  descriptors of ``spec`` with their ``params``, behind the eye-alignment step when
  it has ``align``) runs in Python (``classicfer.features.features_from_config``)
  and only the classifier runs in ONNX (probabilities out).

Loading reads each file once (``model.json`` validated against its schema, the ONNX
checksum verified), checks the folder digest (a bundled model against
``classicfer/bundled_models/DIGESTS.json``; any model against ``--model-digest`` /
``$CLASSICFER_MODEL_DIGEST`` when given) and builds the onnxruntime session from
the very bytes that were checked. A graph that would read external data files is
refused. The number of labels must equal the graph's output width.

Sessions are cached per process (one per model folder and thread count).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, ModelError
from ._digests import DIGEST_ENV, bundled_models_dir, check_digests, check_pinned, pinned_digest
from ._format import SIDECAR, is_model_dir, normalise_digest, read_model_files

#: Environment variable naming the default model folder.
MODEL_ENV = "CLASSICFER_MODEL"
#: Environment variable for onnxruntime's intra-op threads (default 1).
THREADS_ENV = "CLASSICFER_THREADS"
#: Bundled model folders, in order of preference, under ``classicfer/bundled_models/``.
PREFERRED = ("ferplus-cnn", "fer2013-cnn")

_CACHE: dict = {}
_LOCK = threading.Lock()


def list_models() -> list[Path]:
    """Model folders shipped in ``classicfer/bundled_models/``, best first.

    Preference: the folders in :data:`PREFERRED`, then CNN models, then classical
    models by their recorded accuracy (``metrics["accuracy"]``, older names read too),
    then by name.
    """
    root = bundled_models_dir()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_model_dir(p)]

    def key(p):
        import json

        try:
            meta = json.loads((p / SIDECAR).read_text())
        except (OSError, ValueError, RecursionError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        pref = PREFERRED.index(p.name) if p.name in PREFERRED else len(PREFERRED)
        kind = 0 if meta.get("kind") == "cnn" else 1
        score = _headline_metric(meta.get("metrics") or {})
        return (pref, kind, -score, p.name)

    return sorted(found, key=key)


#: Metric names of older sidecars -> the names every result uses now (``accuracy``,
#: ``balanced_accuracy``, ``macro_f1``, ``per_class``, with ``split`` saying which rows).
LEGACY_METRICS = {
    "test_accuracy": ("test", "accuracy"),
    "test_balanced_accuracy": ("test", "balanced_accuracy"),
    "test_macro_f1": ("test", "macro_f1"),
    "test_per_class_f1": ("test", "per_class"),
    "privatetest_accuracy": ("test", "accuracy"),
    "privatetest_macro_f1": ("test", "macro_f1"),
    "privatetest_per_class_f1": ("test", "per_class"),
    "f1_macro": (None, "macro_f1"),
}


def sidecar_metrics(metrics) -> dict:
    """A sidecar's ``metrics`` under the current names.

    Sidecars written before the names were shared say ``test_accuracy``,
    ``privatetest_macro_f1``, ``f1_macro``...; those are renamed (a per-class F1 table
    becomes ``per_class: {label: {"f1": ...}}``) unless the current name is present.
    Other keys are kept as they are.
    """
    if not isinstance(metrics, dict):
        return {}
    out = dict(metrics)
    for old, (split, new) in LEGACY_METRICS.items():
        if old not in metrics or new in metrics:
            continue
        value = metrics[old]
        if new == "per_class" and isinstance(value, dict):
            value = {c: {"f1": f} for c, f in value.items()}
        out.setdefault(new, value)
        if split is not None:
            out.setdefault("split", split)
    return out


def _headline_metric(metrics: dict) -> float:
    """The recorded ``accuracy`` of a sidecar's metrics (0 when it records none)."""
    v = sidecar_metrics(metrics).get("accuracy")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def default_model_dir() -> Path:
    """The model used when none is given: ``$CLASSICFER_MODEL``, else the best bundled one."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    models = list_models()
    if not models:
        raise ModelError(
            f"no model found: {bundled_models_dir()} holds no model folder; pass --model DIR "
            f"(a folder with model.onnx + model.json) or set {MODEL_ENV}"
        )
    return models[0]


def resolve_model_dir(path=None) -> Path:
    """``None`` -> default; a bundled model's name (e.g. ``fer2013-cnn``) -> its folder."""
    if path is None:
        return default_model_dir()
    p = Path(path)
    if not p.exists() and not p.is_absolute() and len(p.parts) == 1:
        cand = bundled_models_dir() / p.name
        if cand.is_dir():
            return cand
    return p


def _threads(threads) -> int:
    if threads is None:
        threads = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise ConfigError(f"threads must be an integer >= 0, got {threads!r}") from None
    if n < 0:
        raise ConfigError(f"threads must be >= 0 (0 = onnxruntime's default), got {n}")
    return n


def _session(data: bytes, where, threads: int):
    """An onnxruntime session built from the checked bytes of the ONNX file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (onnxruntime raises its own types)
        raise ModelError(f"{where}: onnxruntime cannot load it ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0][:200]})") from None


def _graph_tensors(graph):
    """Every tensor stored in ``graph`` and its subgraphs (initializers, attributes)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes):
    for node in nodes:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for g in a.graphs:
                yield from _graph_tensors(g)


def _refuse_external_data(data: bytes, where) -> None:
    """Refuse a graph whose tensors live in other files (the loader reads only checked bytes)."""
    if b"location" not in data:  # an external tensor names its file under this key
        return
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # noqa: BLE001 (not parseable: onnxruntime reports it)
        return
    tensors = list(_graph_tensors(model.graph))
    for f in model.functions:
        tensors += list(_node_tensors(f.node))
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
        raise ModelError(f"{where}: the graph keeps tensors in external data files; "
                         f"a deployed model must be one self-contained ONNX file")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DeployedModel:
    """A model folder ready to run.

    Parameters
    ----------
    path : str or Path
        Folder with ``model.onnx`` and ``model.json``.
    threads : int, optional
        onnxruntime intra-op threads (default ``$CLASSICFER_THREADS`` or 1; 0 lets
        onnxruntime choose).
    digest : str, optional
        Refuse the folder unless its digest (``classicfer model-digest``) is this one.
        Unlike :func:`load_model`, ``$CLASSICFER_MODEL_DIGEST`` is not read here.

    Attributes
    ----------
    labels : list of str
        Output order of :meth:`predict_proba`.
    sidecar : dict
        The parsed ``model.json``.
    digest : str
        The folder digest of the files loaded.
    kind : {"cnn", "classical"}
    input_size : (H, W)
    color : {"gray", "rgb"}
    """

    def __init__(self, path, *, threads=None, digest=None):
        self.path = Path(path)
        files = read_model_files(self.path)
        pinned = None if digest is None else normalise_digest(digest, "the model digest")
        self.digest = check_digests(files, pinned, bundled_models_dir())
        self._configure(files.sidecar)
        self.threads = _threads(threads)
        _refuse_external_data(files.onnx_bytes, files.onnx_path)
        self.session = _session(files.onnx_bytes, files.onnx_path, self.threads)
        self._bind_io(files.sidecar.get("onnx") or {})
        self._features = None
        self._check_graph_fits()

    def _configure(self, meta: dict) -> None:
        """Attributes from a sidecar already validated by :func:`read_model_files`."""
        self.sidecar = meta
        self.name = meta.get("name") or self.path.name
        self.kind = meta["kind"]
        self.labels = list(meta["labels"])
        inp = meta["input"]
        size = inp.get("size", [48, 48])
        if isinstance(size, int):
            size = [size, size]
        self.input_size = (int(size[0]), int(size[1]))
        self.color = inp.get("color", "gray")
        self.crop = inp.get("crop", "whole")
        self.scale = float(inp.get("scale", 1.0 / 255.0))
        self.mean = np.asarray(inp.get("mean", 0.0), dtype=np.float32)
        self.std = np.asarray(inp.get("std", 1.0), dtype=np.float32)
        self.temperature = float(meta.get("temperature", 1.0))
        self.output_kind = (meta.get("onnx") or {}).get(
            "output_kind", "logits" if self.kind == "cnn" else "probabilities")
        if self.kind == "classical":
            self.feature_spec = meta["features"]["spec"]
            self.feature_params = dict(meta["features"].get("params") or {})
            self.feature_align = meta["features"].get("align")  # the alignment step

    def _bind_io(self, onnx_meta: dict) -> None:
        inputs = self.session.get_inputs()
        self.input_name = onnx_meta.get("input") or inputs[0].name
        if self.input_name not in {i.name for i in inputs}:
            raise ModelError(f"{self.path}: sidecar input {self.input_name!r} is not in the graph "
                             f"(inputs: {[i.name for i in inputs]})")
        outputs = [o.name for o in self.session.get_outputs()]
        want = onnx_meta.get("output")
        if want and want not in outputs:
            raise ModelError(f"{self.path}: sidecar output {want!r} is not in the graph "
                             f"(outputs: {outputs})")
        if not want:
            # skl2onnx classifiers output (label, probabilities): take the probabilities.
            want = next((o for o in outputs if "prob" in o.lower()), outputs[-1])
        self.output_name = want
        self._n_features = onnx_meta.get("n_features")

    def _probe_input(self):
        """A zero input of the shape the sidecar describes, or None when it is unknown."""
        if self.kind == "cnn":
            c = 1 if self.color == "gray" else 3
            return np.zeros((1, c, *self.input_size), np.float32)
        n = self._n_features
        if n is None:
            shape = next(i.shape for i in self.session.get_inputs() if i.name == self.input_name)
            n = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        return None if n is None else np.zeros((1, n), np.float32)

    def _check_graph_fits(self) -> None:
        """Run the graph once on the input the sidecar describes.

        Refuse a sidecar whose input shape the graph rejects or whose label count
        differs from its output width.
        """
        x = self._probe_input()
        if x is None:  # a classical graph of unknown width: its static output shape
            out = next(o for o in self.session.get_outputs() if o.name == self.output_name)
            shape = out.shape if isinstance(out.shape, list) else []
            width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
            if width is None:
                return  # checked on the first prediction (_finish)
        else:
            try:
                width = self._run(x).shape[1]
            except Exception as e:  # noqa: BLE001 (onnxruntime raises its own types)
                raise ModelError(f"{self.path}: the graph does not run on the input the sidecar "
                                 f"describes {x.shape} ({e.__class__.__name__}: "
                                 f"{str(e).splitlines()[0][:160]})") from None
        if width != len(self.labels):
            raise ModelError(f"{self.path}: the graph outputs {width} values per face but "
                             f"the sidecar lists {len(self.labels)} labels")

    # ------------------------------------------------------------------ helpers
    def __repr__(self):
        return (f"DeployedModel({str(self.path)!r}, kind={self.kind!r}, "
                f"labels={self.labels}, input={self.input_size})")

    def _feature_transformer(self, sample):
        if self._features is None:
            from ..features import features_from_config

            t = features_from_config({"spec": self.feature_spec, "params": self.feature_params,
                                      "align": self.feature_align})
            # Feature transformers are stateless descriptors; fit only records shapes.
            t.fit(sample)
            self._features = t
        return self._features

    def prepare(self, crops) -> np.ndarray:
        """Coerce crops to ``(N, H, W)`` (gray) or ``(N, H, W, 3)`` uint8 at the input size."""
        import cv2

        h, w = self.input_size
        if isinstance(crops, np.ndarray) and (
                crops.ndim == 2 or (crops.ndim == 3 and crops.shape[-1] in (3, 4)
                                    and crops.shape[0] > 4)):
            crops = crops[None]  # one crop: (H, W) gray or (H, W, 3) RGB
        out = []
        for c in crops:
            c = np.asarray(c)
            if c.dtype != np.uint8:
                from ..imageio import as_uint8_image

                c = as_uint8_image(c)
            if self.color == "gray" and c.ndim == 3:
                c = cv2.cvtColor(np.ascontiguousarray(c[..., :3]), cv2.COLOR_RGB2GRAY)
            elif self.color == "rgb" and c.ndim == 2:
                c = np.repeat(c[:, :, None], 3, axis=2)
            if c.shape[:2] != (h, w):
                interp = cv2.INTER_AREA if c.shape[0] > h else cv2.INTER_LINEAR
                c = cv2.resize(c, (w, h), interpolation=interp)
            out.append(c)
        if not out:
            shape = (0, h, w) if self.color == "gray" else (0, h, w, 3)
            return np.zeros(shape, np.uint8)
        return np.stack(out)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        if isinstance(out, list):  # a ZipMap: list of {label: p}
            keys = list(out[0].keys()) if out else []
            out = np.array([[d[k] for k in keys] for d in out], dtype=np.float32)
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)

    #: Crops per onnxruntime run in :meth:`predict_proba`. A CNN's activations grow with
    #: the batch (about 0.4 MB per 48x48 crop for the bundled model) and onnxruntime keeps
    #: its largest allocation, so long inputs are run in slices of this size.
    batch_size = 64

    def predict_proba(self, crops, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities, shape ``(N, len(labels))``, rows summing to 1.

        Parameters
        ----------
        crops : array or sequence of arrays
            One crop or a sequence of crops (any size; resized to the model's
            input size), uint8 grayscale or RGB.
        batch_size : int, optional
            Crops per graph run (default :attr:`batch_size`); bounds the memory
            used, whatever the number of crops.

        Returns
        -------
        numpy.ndarray
            float32 probabilities in the order of :attr:`labels`.
        """
        step = self.batch_size if batch_size is None else int(batch_size)
        if step < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        crops = self.prepare(crops)
        n = len(crops)
        out = np.zeros((n, len(self.labels)), np.float32)
        for i in range(0, n, step):
            out[i:i + step] = self._proba_batch(crops[i:i + step])
        return out

    def _proba_batch(self, crops: np.ndarray) -> np.ndarray:
        if self.kind == "cnn":
            return self._finish(self._run(self._normalise(crops)))
        return self.classify_features(self.features(crops))

    def _normalise(self, crops: np.ndarray) -> np.ndarray:
        """Prepared uint8 crops -> ``(pixels * scale - mean) / std``, NCHW float32."""
        x = crops.astype(np.float32) * np.float32(self.scale)
        x = (x - self.mean) / self.std
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def cnn_input(self, crops) -> np.ndarray:
        """CNN models: the graph input for ``crops``, exactly as :meth:`predict_proba` feeds it.

        Parameters
        ----------
        crops : array or sequence of arrays
            As for :meth:`predict_proba` (resized with :meth:`prepare`).

        Returns
        -------
        numpy.ndarray
            ``(N, C, H, W)`` float32, normalised as the sidecar's ``input`` block says.
        """
        if self.kind != "cnn":
            raise ModelError(f"{self.path}: a {self.kind} model takes feature vectors, "
                             f"not an image tensor")
        return self._normalise(self.prepare(crops))

    def features(self, crops) -> np.ndarray:
        """Classical models: the feature vectors of ``crops`` (computed in Python)."""
        if self.kind != "classical":
            raise ModelError(f"{self.path}: a {self.kind} model has no separate feature stage")
        crops = self.prepare(crops)
        t = self._feature_transformer(crops)
        # a DescriptorUnion runs its parts in turn, without joblib's dispatch (~2 ms per
        # kiosk crop for 5 parts), and the alignment step once before them
        return np.asarray(t.transform(crops), dtype=np.float32)

    def classify_features(self, feats) -> np.ndarray:
        """Classical models: probabilities from feature vectors (the ONNX classifier)."""
        feats = np.asarray(feats, dtype=np.float32)
        if len(feats) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self._finish(self._run(np.ascontiguousarray(feats)))

    def _finish(self, out: np.ndarray) -> np.ndarray:
        if out.shape[1] != len(self.labels):
            raise ModelError(f"{self.path}: the graph outputs {out.shape[1]} values per face but "
                             f"the sidecar lists {len(self.labels)} labels")
        if not np.isfinite(out).all():
            raise ModelError(f"{self.path}: the graph output non-finite values (inf or NaN); "
                             f"the model is broken")
        t = self.temperature
        if self.output_kind == "logits":
            p = _softmax(out.astype(np.float64) / t)
        else:
            p = np.clip(out.astype(np.float64), 0, None)
            if t != 1.0:
                p = _softmax(np.log(np.clip(p, 1e-12, None)) / t)
            s = p.sum(axis=1, keepdims=True)
            p = np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / p.shape[1])
        return p.astype(np.float32)


def _stamp(d: Path) -> list:
    """(name, mtime, size, inode) of the files in a model folder, to notice a change."""
    folder = d.parent if d.name == SIDECAR and d.is_file() else d
    try:
        with os.scandir(folder) as it:
            return sorted((e.name, st.st_mtime_ns, st.st_size, st.st_ino)
                          for e in it if e.is_file() for st in (e.stat(),))
    except OSError:
        return []


def load_model(path=None, *, threads=None, cache: bool = True, digest=None) -> DeployedModel:
    """Load (and verify) a deployed model folder.

    Parameters
    ----------
    path : str or Path, optional
        A model folder, the name of a bundled model, or ``None`` for the default
        (``$CLASSICFER_MODEL``, else the best model in ``classicfer/bundled_models/``).
    threads : int, optional
        onnxruntime intra-op threads (default 1).
    cache : bool
        Reuse one session per folder and thread count in this process. The files
        are read and verified again whenever one of them changed (size, mtime).
    digest : str, optional
        Pin the model: refuse it unless its folder digest (``classicfer model-digest``)
        is this one. Default: ``$CLASSICFER_MODEL_DIGEST`` when set, else no pin (a
        bundled model is always checked against its recorded digest).

    Raises
    ------
    ModelError
        Missing folder, bad sidecar, checksum or digest mismatch, unloadable graph.
    ConfigError
        ``digest`` (or ``$CLASSICFER_MODEL_DIGEST``) is not 64 hex digits.
    """
    d = resolve_model_dir(path)
    n = _threads(threads)
    pinned = pinned_digest(digest)
    if not cache:
        return DeployedModel(d, threads=n, digest=pinned)
    st = _stamp(d)
    key = (str(d.resolve()) if d.exists() else str(d), n)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == st:
        check_pinned(hit[1].digest, pinned, d)
        return hit[1]
    m = DeployedModel(d, threads=n, digest=pinned)
    with _LOCK:
        _CACHE[key] = (st, m)
    return m


__all__ = [
    "DIGEST_ENV",
    "MODEL_ENV",
    "THREADS_ENV",
    "DeployedModel",
    "bundled_models_dir",
    "default_model_dir",
    "list_models",
    "load_model",
    "resolve_model_dir",
]
