"""Convert the MTCNN P/R/O-Net weights shipped in the facenet-pytorch wheel to ONNX.

Run once, by a developer (torch is needed here, never at run time)::

    python scripts/convert_mtcnn.py /path/to/facenet_pytorch-2.6.0-py3-none-any.whl

The wheel is read as a zip file (facenet-pytorch is *not* installed: it pins
torch<2.3 and numpy<2). Its ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` state
dicts are loaded into the three networks re-declared below (same layer names and
shapes as ``facenet_pytorch/models/mtcnn.py``) and exported to
``classicfer/face/models/mtcnn_{pnet,rnet,onet}.onnx``. The script then checks that
onnxruntime reproduces torch's outputs on random inputs.

Licence: facenet-pytorch is MIT-licensed (Copyright (c) 2019 Timothy Esler); the
weights are a conversion of the original MTCNN (Zhang et al., 2016, "Joint Face
Detection and Alignment using Multi-task Cascaded Convolutional Networks",
doi:10.1109/LSP.2016.2603342) models by davidsandberg/facenet (MIT). The licence
text is copied to ``classicfer/face/models/LICENSE-mtcnn.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "classicfer" / "face" / "models"


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x):
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        a = self.softmax4_1(self.conv4_1(x))
        b = self.conv4_2(x)
        return b, a


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.reshape(x.shape[0], -1)))
        a = self.softmax5_1(self.dense5_1(x))
        b = self.dense5_2(x)
        return b, a


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.reshape(x.shape[0], -1)))
        a = self.softmax6_1(self.dense6_1(x))
        b = self.dense6_2(x)
        c = self.dense6_3(x)
        return b, c, a


NETS = {
    # name: (module, example input size, output names, dynamic axes)
    "pnet": (PNet, (1, 3, 48, 64), ["reg", "prob"],
             {"input": {0: "n", 2: "h", 3: "w"}, "reg": {0: "n", 2: "oh", 3: "ow"},
              "prob": {0: "n", 2: "oh", 3: "ow"}}),
    "rnet": (RNet, (2, 3, 24, 24), ["reg", "prob"],
             {"input": {0: "n"}, "reg": {0: "n"}, "prob": {0: "n"}}),
    "onet": (ONet, (2, 3, 48, 48), ["reg", "points", "prob"],
             {"input": {0: "n"}, "reg": {0: "n"}, "points": {0: "n"}, "prob": {0: "n"}}),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", help="facenet_pytorch-2.6.0-py3-none-any.whl")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import onnxruntime as ort

    with zipfile.ZipFile(args.wheel) as zf:
        names = zf.namelist()
        lic = [n for n in names if n.endswith(("LICENSE.md", "LICENSE"))]
        if lic:
            (out / "LICENSE-mtcnn.md").write_bytes(
                b"MTCNN weights converted from facenet-pytorch 2.6.0 "
                b"(facenet_pytorch/data/{pnet,rnet,onet}.pt) by scripts/convert_mtcnn.py.\n\n"
                + zf.read(lic[0]))
        for name, (cls, shape, outputs, dyn) in NETS.items():
            state = torch.load(io.BytesIO(zf.read(f"facenet_pytorch/data/{name}.pt")),
                               map_location="cpu", weights_only=True)
            net = cls()
            net.load_state_dict(state)
            net.eval()
            x = torch.randn(*shape)
            path = out / f"mtcnn_{name}.onnx"
            torch.onnx.export(net, (x,), str(path), input_names=["input"],
                              output_names=outputs, dynamic_axes=dyn, opset_version=17,
                              dynamo=False)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            for trial_shape in (shape, (3,) + shape[1:2] + ((37, 53) if name == "pnet"
                                                               else shape[2:])):
                xt = torch.randn(*trial_shape)
                with torch.no_grad():
                    ref = [t.numpy() for t in net(xt)]
                got = sess.run(None, {"input": xt.numpy()})
                err = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))
                assert err < 1e-4, (name, trial_shape, err)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            print(f"{path.name}: {path.stat().st_size:,} bytes, sha256 {digest}..., "
                  f"max |onnx - torch| {err:.2e}")


if __name__ == "__main__":
    main()
