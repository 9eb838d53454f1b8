"""A compact VGG-style network for 48x48 grayscale face crops.

``FerNet`` = a stem convolution at full resolution, then three double-conv
stages (each: two 3x3 conv + batch norm + ReLU, max-pool), an optional
squeeze-excitation (SE) block after each stage, global average pooling,
dropout and a linear head that outputs logits.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018): x * sigmoid(W2 relu(W1 avgpool(x)))."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


def _conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class FerNet(nn.Module):
    """VGG-style CNN.

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
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, n_classes)
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


def count_params(model) -> int:
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


def build_model(config: dict) -> FerNet:
    return FerNet(**config)
