"""Tiny deployable models built without training, for tests and examples.

:func:`make_linear_model` writes a valid ``kind="cnn"`` model folder whose ONNX
graph is ``Flatten -> MatMul -> Add`` (random weights, logits out). It exercises
the whole runtime path (sidecar, checksum, normalisation, softmax) in
milliseconds; its predictions are meaningless. :func:`make_conv_model` does the
same with two convolution layers (the operators a quantiser rewrites).
"""

from __future__ import annotations

import numpy as np

from ..labels import EMOTIONS
from ._folder import write_model_dir


def make_linear_model(out_dir, *, labels=EMOTIONS[:7], size=48, color="gray", seed=0,
                      name="linear-test", crop="whole"):
    """Write a random linear ``cnn``-kind model folder to ``out_dir``; return its path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c = 1 if color == "gray" else 3
    d = c * size * size
    k = len(labels)
    w = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "W"], ["mm"]),
         helper.make_node("Add", ["mm", "b"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sidecar = {
        "kind": "cnn", "name": name, "labels": list(labels),
        "input": {"size": [size, size], "color": color, "crop": crop,
                  "scale": 1 / 255.0, "mean": 0.5, "std": 0.25},
        "onnx": {"input": "input", "output": "logits", "output_kind": "logits"},
        "training": {"note": "random weights, for tests only"}, "metrics": {},
    }
    return write_model_dir(out_dir, model.SerializeToString(), sidecar)


def make_conv_model(out_dir, *, labels=EMOTIONS[:7], size=32, seed=0, name="conv-test"):
    """Write a random two-layer convolutional ``cnn``-kind model folder; return its path.

    ``Conv(16) -> Relu -> MaxPool -> Conv(32) -> Relu -> MaxPool -> Flatten -> Gemm`` on a
    ``size`` x ``size`` gray input (``size`` a multiple of 4), logits out: the operators
    of a real CNN head (e.g. for :func:`classicfer.export.quantize_model`), in a few
    kilobytes.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    k = len(labels)
    flat = 32 * (size // 4) ** 2

    def he(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    weights = {"W1": he(16, 1, 3, 3), "B1": np.zeros(16, np.float32),
               "W2": he(32, 16, 3, 3), "B2": np.zeros(32, np.float32),
               "W3": he(k, flat), "B3": np.zeros(k, np.float32)}
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("MaxPool", ["r1"], ["p1"], **pool),
         helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c2"], ["r2"]),
         helper.make_node("MaxPool", ["r2"], ["p2"], **pool),
         helper.make_node("Flatten", ["p2"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W3", "B3"], ["logits"], transB=1)],
        "conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
        initializer=[numpy_helper.from_array(v, n) for n, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sidecar = {
        "kind": "cnn", "name": name, "labels": list(labels),
        "input": {"size": [size, size], "color": "gray", "crop": "whole",
                  "scale": 1 / 255.0, "mean": 0.5, "std": 0.25},
        "onnx": {"input": "input", "output": "logits", "output_kind": "logits"},
        "training": {"note": "random weights, for tests only"},
        "metrics": {"accuracy": 0.25, "split": "val"},
    }
    return write_model_dir(out_dir, model.SerializeToString(), sidecar)
