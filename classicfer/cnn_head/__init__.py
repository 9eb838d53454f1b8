"""The small CNN head: a compact VGG-style network for 48x48 grayscale crops.

Training and export need torch (``pip install classicfer[cnn]``); inference of an
exported model needs only onnxruntime (see :mod:`classicfer.runtime`). This module
imports nothing heavy: use ``classicfer.cnn_head.model``, ``.train`` and ``.export``.
"""

from __future__ import annotations


def torch_available() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


def require_torch():
    """Import torch or raise a one-line :class:`ConfigError` telling how to install it."""
    try:
        import torch
    except ImportError:
        from ..exceptions import ConfigError

        raise ConfigError("the CNN head needs torch; install it with "
                          "`pip install 'classicfer[cnn]'`") from None
    return torch


__all__ = ["require_torch", "torch_available"]
