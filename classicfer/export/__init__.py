"""Writing model folders: export, parity check, model cards.

A model folder is ``model.onnx`` + ``model.json`` (+ ``model_card.md``), the
format :mod:`classicfer.runtime` reads (:mod:`classicfer.runtime._format`).
Everything that writes one lives here:

- :func:`write_model_dir`: write the ONNX bytes and the sidecar (checksum filled
  in, validated against the runtime's schema) and a card;
- :func:`save_model`: a fitted classical pipeline (head in ONNX, features rebuilt
  from the sidecar); :func:`export_model`: a trained CNN (needs torch);
- :func:`export` (``classicfer export``): a joblib pipeline or CNN checkpoint ->
  a folder, checked through the runtime;
- :func:`parity`: the one parity check used by all three (original vs export on
  the same inputs);
- :func:`quantize_model` (``classicfer quantize``): a CNN folder -> an int8 folder,
  kept only if its accuracy on a validation split holds (needs onnxruntime's
  quantisation tools, loaded on first use);
- :mod:`classicfer.export.cards`: ``model_card.md`` from the sidecar and the
  evaluation reports the caller names (:func:`write_model_card`).

``classicfer.export(...)`` (the facade verb) is :func:`export`: this module is
callable.
"""

import sys as _sys
import types as _types

from ._export import check_crops, check_inputs, export, find_source
from ._folder import sidecar_text, write_model_dir
from ._parity import parity
from ._quantize import quantization_splits, quantize_model
from .cards import CARD_FILE, find_evaluations, model_card, read_evaluation, write_model_card

#: Names loaded on first use: their modules import scikit-learn (classical) or torch (CNN).
_CLASSICAL = ("head_parity", "save_model")
_CNN = ("FlipAverage", "cnn_parity", "export_model", "latency_ms", "onnx_session")

__all__ = [
    "CARD_FILE",
    "FlipAverage",
    "check_crops",
    "check_inputs",
    "cnn_parity",
    "export",
    "export_model",
    "find_evaluations",
    "find_source",
    "head_parity",
    "latency_ms",
    "model_card",
    "onnx_session",
    "parity",
    "quantization_splits",
    "quantize_model",
    "read_evaluation",
    "save_model",
    "sidecar_text",
    "write_model_card",
    "write_model_dir",
]


def __getattr__(name):
    if name in _CLASSICAL:
        from . import _classical as module
    elif name in _CNN:
        from . import _cnn as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


class _CallableModule(_types.ModuleType):
    """The package, callable as :func:`export` (``classicfer.export`` is both)."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
