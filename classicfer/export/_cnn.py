"""Export a trained CNN head to ONNX (needs torch).

Any family of :mod:`classicfer.cnn_head.model`.

``export_model`` writes ``model.onnx`` (input ``input`` NCHW float32 with a
dynamic batch axis, output ``logits``) and ``model.json`` (see
:mod:`classicfer.runtime._format`) with :func:`classicfer.export.write_model_dir`.
``cnn_parity`` runs torch and onnxruntime on the same inputs and compares their
logits with :func:`classicfer.export.parity`.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch

from ..cnn_head.model import count_flops, count_params
from ..exceptions import ModelError
from ..runtime._format import read_sidecar
from ._folder import write_model_dir
from ._parity import parity

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class FlipAverage(torch.nn.Module):
    """``net`` with test-time flip averaging.

    The mean of the logits of each crop and its mirror image, both run in one batch.
    Exported like the bare network, so the deployed graph (and its parity check)
    includes the averaging.
    """

    def __init__(self, net):
        super().__init__()
        self.net = net

    @property
    def config(self):
        return self.net.config

    def forward(self, x):
        lo = self.net(torch.cat([x, torch.flip(x, dims=[3])], 0))
        return lo.reshape(2, -1, lo.shape[1]).mean(0)


def onnx_bytes(model, size=(48, 48), opset: int = 17) -> bytes:
    """The ONNX graph of ``model`` (eval mode, dynamic batch) as bytes."""
    import copy

    m = copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()
    dummy = torch.zeros(1, m.config["in_channels"], *size)
    buf = io.BytesIO()
    torch.onnx.export(m, (dummy,), buf, dynamo=False, opset_version=opset,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                      do_constant_folding=True)
    return buf.getvalue()


def export_model(model, out_dir, *, classes, mean: float, std: float, size=(48, 48),
                 name: str = "fer2013-cnn", training: dict | None = None,
                 metrics: dict | None = None, tta_flip: bool = False) -> Path:
    """Write ``out_dir/model.onnx`` + ``out_dir/model.json`` for a trained model.

    ``tta_flip=True`` exports :class:`FlipAverage` of the model (twice the compute per
    face); the sidecar records it under ``test_time``.
    """
    if len(classes) != model.config["n_classes"]:
        raise ModelError(f"{len(classes)} class names for a model with "
                         f"{model.config['n_classes']} outputs")
    data = onnx_bytes(FlipAverage(model) if tta_flip else model, size)
    train_meta = dict(training or {})
    arch = {"arch": model.config.get("arch", "vgg"), **model.config}
    train_meta.setdefault("architecture", {k: list(v) if isinstance(v, tuple) else v
                                           for k, v in arch.items()})
    train_meta.setdefault("parameters", count_params(model))
    train_meta.setdefault("multiply_adds", count_flops(model, tuple(size)))
    sidecar = {
        "kind": "cnn",
        "name": name,
        "labels": list(classes),
        "input": {"size": [int(size[0]), int(size[1])], "color": "gray", "crop": "whole",
                  "scale": 1.0 / 255.0, "mean": float(mean), "std": float(std)},
        "onnx": {"input": INPUT_NAME, "output": OUTPUT_NAME, "output_kind": "logits"},
        "temperature": 1.0,
        "test_time": "flip-average" if tta_flip else "none",
        "training": train_meta,
        "metrics": dict(metrics or {}),
    }
    return write_model_dir(out_dir, data, sidecar)


def onnx_session(model_dir, threads: int = 1):
    """(onnxruntime session, sidecar) after verifying the sidecar's sha256."""
    import onnxruntime as ort

    meta, path = read_sidecar(model_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]), meta


def preprocess(images, meta) -> np.ndarray:
    """(N, H, W) uint8 crops -> the normalised NCHW float32 input described by the sidecar."""
    inp = meta["input"]
    x = np.asarray(images, dtype=np.float32)[:, None] * float(inp["scale"])
    return ((x - float(inp["mean"])) / float(inp["std"])).astype(np.float32)


def cnn_parity(model, model_dir, images=None, *, n: int = 64, seed: int = 0) -> dict:
    """:func:`~classicfer.export.parity` of torch's and onnxruntime's logits.

    Parameters
    ----------
    model : torch.nn.Module
        The network that was exported (eval mode is set).
    model_dir : str or Path
        Its exported folder.
    images : (N, H, W) uint8 ndarray, optional
        Face crops at the model's input size; ``n`` random crops (``seed``) if None.

    Returns
    -------
    dict
        ``n``, ``agreement`` (same argmax) and ``max_abs_diff`` (largest
        |logit_onnxruntime - logit_torch|).
    """
    sess, meta = onnx_session(model_dir)
    h, w = meta["input"]["size"]
    if images is None:
        images = np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)
    x = preprocess(images, meta)
    got = sess.run([meta["onnx"]["output"]], {meta["onnx"]["input"]: x})[0]
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    return parity(want, got)


def latency_ms(model_dir, *, repeats: int = 500, warmup: int = 50) -> dict:
    """Onnxruntime single-thread latency of one face (batch 1): median and p90 in ms."""
    sess, meta = onnx_session(model_dir, threads=1)
    h, w = meta["input"]["size"]
    x = np.random.default_rng(0).standard_normal((1, 1, h, w)).astype(np.float32)
    feed = {meta["onnx"]["input"]: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    t = np.array(times)
    return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "min_ms": float(t.min()), "repeats": repeats}


__all__ = ["FlipAverage", "cnn_parity", "export_model", "latency_ms", "onnx_bytes",
           "onnx_session", "preprocess"]
