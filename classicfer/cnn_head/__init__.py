"""The small CNN head: compact networks for 48x48 (or 64x64) grayscale face crops.

Three families (:data:`ARCHITECTURES`, see :mod:`classicfer.cnn_head.model`): ``vgg``
(the default), ``resnet`` (basic blocks) and ``mobilenet`` (inverted residuals), all
trained, checkpointed and exported the same way.

Training and export need torch (``pip install classicfer[cnn]``; the export is
:func:`classicfer.export.export_model`); inference of an exported model needs only
onnxruntime (see :mod:`classicfer.runtime`). This module imports nothing heavy: use
``classicfer.cnn_head.model`` and ``.train``.
"""

from __future__ import annotations

#: Network families of the CNN head (``arch`` of a model configuration).
ARCHITECTURES = ("vgg", "resnet", "mobilenet")


def torch_available() -> bool:
    """Whether torch is installed (found without importing it)."""
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


__all__ = ["ARCHITECTURES", "require_torch", "torch_available"]
