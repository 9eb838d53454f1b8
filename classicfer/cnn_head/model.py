"""The CNN head's networks for small grayscale face crops (48x48 or 64x64).

Three families share one interface (a ``features`` body, global average pooling,
dropout and a linear ``head`` that outputs logits; a ``config`` dict that rebuilds the
network through :func:`build_model`):

* ``vgg`` -- :class:`FerNet`: a stem convolution at full resolution, then double-conv
  stages (each: 2x2 max-pool, two 3x3 conv + batch norm + ReLU), an optional
  squeeze-excitation (SE) block after each stage;
* ``resnet`` -- :class:`ResFerNet`: the ResNet-18 layout (He et al., 2016) narrowed for
  small crops: a 3x3 stem convolution and a 2x2 max-pool, then stages of basic blocks
  (two 3x3 conv with an identity or 1x1 projection shortcut), each stage after the first
  halving the resolution, an optional SE block in every residual branch;
* ``mobilenet`` -- :class:`MobileFerNet`: inverted residuals in the manner of MobileNetV2/V3
  (Sandler et al., 2018; Howard et al., 2019): 1x1 expansion, depthwise 3x3, optional SE,
  linear 1x1 projection, a shortcut when shapes allow; a final 1x1 convolution widens the
  features before the pooling.

A configuration without ``arch`` is a ``vgg`` one (checkpoints made before the other
families existed).
"""

from __future__ import annotations

import torch
from torch import nn

#: Default configuration of each family (``widths``: stem width, then one per stage).
ARCH_DEFAULTS = {
    "vgg": {"widths": (16, 32, 64, 128)},
    "resnet": {"widths": (16, 16, 32, 64, 128), "depth": 2},
    "mobilenet": {"widths": (16, 24, 40, 80, 128), "depth": 2, "expansion": 4,
                  "head_width": 384, "stem_stride": 2},
}


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018): x * sigmoid(W2 relu(W1 avgpool(x)))."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        """``x`` with each channel scaled by its gate in (0, 1)."""
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


def _conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class _Classifier(nn.Module):
    """``features`` -> global average pool -> dropout -> linear ``head`` (logits)."""

    def _finish(self, features: nn.Module, width: int, n_classes: int, dropout: float) -> None:
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3))
        return self.head(self.dropout(x))

    def replace_head(self, n_classes: int) -> None:
        """A fresh linear head for ``n_classes`` (transfer learning)."""
        self.head = nn.Linear(self.head.in_features, n_classes)
        self.config["n_classes"] = n_classes


class FerNet(_Classifier):
    """VGG-style CNN (the ``vgg`` family).

    Parameters
    ----------
    n_classes : int
    widths : tuple of int
        ``widths[0]`` is the stem (single conv at full resolution); every
        further width is one double-conv stage, each preceded by a 2x2 max-pool.
    attention : bool
        Add a squeeze-excitation block at the end of every double-conv stage.
    dropout : float
        Dropout before the linear head.
    """

    def __init__(self, n_classes: int = 7, widths=(32, 64, 128, 256), attention: bool = True,
                 dropout: float = 0.3, in_channels: int = 1):
        super().__init__()
        self.config = {"n_classes": n_classes, "widths": tuple(widths), "attention": attention,
                       "dropout": dropout, "in_channels": in_channels}
        layers = _conv_bn(in_channels, widths[0])
        cin = widths[0]
        for w in widths[1:]:
            layers += [nn.MaxPool2d(2)] + _conv_bn(cin, w) + _conv_bn(w, w)
            if attention:
                layers.append(SqueezeExcite(w))
            cin = w
        self._finish(nn.Sequential(*layers), cin, n_classes, dropout)


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch norm (+ SE) with an identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1, attention: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity (Goyal et al.)
        self.se = SqueezeExcite(cout) if attention else nn.Identity()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        """Two 3x3 convolutions (and squeeze-excite) plus the shortcut, then ReLU."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return torch.relu(out + self.shortcut(x))


class ResFerNet(_Classifier):
    """Residual CNN of basic blocks (the ``resnet`` family).

    Parameters
    ----------
    n_classes : int
    widths : tuple of int
        ``widths[0]`` is the 3x3 stem convolution (full resolution, followed by a 2x2
        max-pool); every further width is one stage of ``depth`` basic blocks, the first
        block of every stage but the first with stride 2. The default
        ``(16, 16, 32, 64, 128)`` is ResNet-18's four stages of two blocks, 1/4 as wide.
    depth : int
        Basic blocks per stage.
    attention : bool
        A squeeze-excitation block in the residual branch of every basic block.
    dropout : float
        Dropout before the linear head.
    """

    def __init__(self, n_classes: int = 7, widths=(16, 16, 32, 64, 128), depth: int = 2,
                 attention: bool = True, dropout: float = 0.3, in_channels: int = 1):
        super().__init__()
        self.config = {"arch": "resnet", "n_classes": n_classes, "widths": tuple(widths),
                       "depth": depth, "attention": attention, "dropout": dropout,
                       "in_channels": in_channels}
        layers = _conv_bn(in_channels, widths[0]) + [nn.MaxPool2d(2)]
        cin = widths[0]
        for i, w in enumerate(widths[1:]):
            for b in range(depth):
                layers.append(BasicBlock(cin, w, 2 if (b == 0 and i > 0) else 1, attention))
                cin = w
        self._finish(nn.Sequential(*layers), cin, n_classes, dropout)
        for m in self.modules():  # the init above reset every conv; keep the zero gammas
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


class InvertedResidual(nn.Module):
    """1x1 expansion, depthwise 3x3 (stride), optional SE, linear 1x1 projection."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, attention: bool):
        super().__init__()
        hidden = cin * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                             bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        if attention:
            layers.append(SqueezeExcite(hidden, reduction=4))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        """Expand, depthwise and project; plus ``x`` when stride and widths allow."""
        out = self.block(x)
        return x + out if self.residual else out


class MobileFerNet(_Classifier):
    """Depthwise-separable CNN of inverted residuals (the ``mobilenet`` family).

    Parameters
    ----------
    n_classes : int
    widths : tuple of int
        ``widths[0]`` is the 3x3 stem convolution; every further width is one stage of
        ``depth`` inverted residual blocks, the first block of a stage with stride 2.
    stem_stride : {1, 2}
        Stride of the stem. With 2 (MobileNetV2's layout) the stem does the first halving
        and the first stage keeps its resolution, so the expanded 1x1 and depthwise
        convolutions never run at full resolution (about 1.6x faster to train at 48x48
        than with 1, for the same parameters and output resolution).
    depth : int
        Blocks per stage.
    expansion : int
        Width of the depthwise convolution relative to the block's input.
    head_width : int
        Channels of the final 1x1 convolution before the pooling.
    attention : bool
        A squeeze-excitation block on the depthwise output of every block (MobileNetV3).
    dropout : float
        Dropout before the linear head.
    """

    def __init__(self, n_classes: int = 7, widths=(16, 24, 40, 80, 128), depth: int = 2,
                 expansion: int = 4, head_width: int = 384, attention: bool = True,
                 dropout: float = 0.3, in_channels: int = 1, stem_stride: int = 1):
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.config = {"arch": "mobilenet", "n_classes": n_classes, "widths": tuple(widths),
                       "depth": depth, "expansion": expansion, "head_width": head_width,
                       "attention": attention, "dropout": dropout, "in_channels": in_channels,
                       "stem_stride": stem_stride}
        layers = [nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1,
                            bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU6(inplace=True)]
        cin = widths[0]
        for i, w in enumerate(widths[1:]):
            first = 1 if (i == 0 and stem_stride == 2) else 2
            for b in range(depth):
                layers.append(InvertedResidual(cin, w, first if b == 0 else 1, expansion,
                                               attention))
                cin = w
        layers += [nn.Conv2d(cin, head_width, 1, bias=False), nn.BatchNorm2d(head_width),
                   nn.ReLU6(inplace=True)]
        self._finish(nn.Sequential(*layers), head_width, n_classes, dropout)


#: Network class of each ``arch``.
ARCHS = {"vgg": FerNet, "resnet": ResFerNet, "mobilenet": MobileFerNet}


def arch_config(arch: str = "vgg", **overrides) -> dict:
    """The model configuration (without ``n_classes``) of family ``arch``.

    Parameters
    ----------
    arch : {"vgg", "resnet", "mobilenet"}
    **overrides
        Values replacing the family's defaults (:data:`ARCH_DEFAULTS`); None keeps the
        default.

    Returns
    -------
    dict
        For ``vgg`` the configuration carries no ``arch`` key (as before the other
        families existed, so such runs resume); the others name their family.
    """
    _check_arch(arch)
    config = dict(ARCH_DEFAULTS[arch])
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["widths"] = tuple(config["widths"])
    return config if arch == "vgg" else {"arch": arch, **config}


def _check_arch(arch) -> None:
    if arch not in ARCHS:
        from ..exceptions import ConfigError

        raise ConfigError(f"unknown CNN architecture {arch!r}; choose one of "
                          f"{', '.join(ARCHS)}")


def build_model(config: dict) -> nn.Module:
    """The network of a model configuration (``arch`` absent means ``vgg``).

    Parameters
    ----------
    config : dict
        Constructor arguments of the family's class, plus ``arch``.

    Returns
    -------
    torch.nn.Module
        A :class:`FerNet`, :class:`ResFerNet` or :class:`MobileFerNet`.
    """
    arch = config.get("arch", "vgg")
    _check_arch(arch)
    kwargs = {k: v for k, v in config.items() if k != "arch"}
    try:
        return ARCHS[arch](**kwargs)
    except TypeError as e:
        from ..exceptions import ConfigError

        raise ConfigError(f"a {arch} configuration with an unknown setting ({e})") from None


def count_params(model) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model, size=(48, 48)) -> int:
    """Multiply-accumulates of one forward pass (conv + linear layers), batch 1."""
    macs = 0

    def conv_hook(m, inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += int(out.numel() * k)

    def lin_hook(m, inp, out):
        nonlocal macs
        macs += int(m.in_features * m.out_features)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, model.config["in_channels"], *size))
    model.train(was)
    for h in hooks:
        h.remove()
    return macs
