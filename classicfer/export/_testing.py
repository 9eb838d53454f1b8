"""Tiny deployable models built without training, for tests and examples.

:func:`make_linear_model` writes a valid ``kind="cnn"`` model folder whose ONNX
graph is ``Flatten -> MatMul -> Add`` (random weights, logits out). It exercises
the whole runtime path (sidecar, checksum, normalisation, softmax) in
milliseconds; its predictions are meaningless.
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
