"""Train-time corruptions on a batch tensor, covering the robustness suite's families.

Each family hits a random part of the batch (probability ``p`` per image) with a
random strength; the strength is shared by the images of one step for the convolution
families (blur, motion blur, low resolution) and drawn per image for the others. All
draws come from the caller's generator, so a resumed epoch repeats the same corruptions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: Probability per image of each family (``aug["corrupt"]`` scales them all).
CORRUPT_P = {"noise": 0.2, "blur": 0.15, "motion": 0.1, "lowres": 0.15, "photo": 0.3,
             "jpeg": 0.1, "occlude": 0.1}


def _pick(n, p, gen):
    return torch.nonzero(torch.rand(n, generator=gen) < p).flatten()


def _uniform(lo, hi, gen, n=1):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _conv(x, kernel):
    k = kernel.to(x.dtype)[None, None]
    pad = kernel.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), k)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def motion_kernel(length: int, angle: float) -> torch.Tensor:
    import cv2

    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    k = cv2.warpAffine(k, m, (length, length))
    return torch.from_numpy(k / max(k.sum(), 1e-6))


def _jpeg(x, quality):
    import cv2

    out = []
    for im in x:
        a = (im[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else a
        out.append(torch.from_numpy(dec.astype(np.float32) / 255.0)[None])
    return torch.stack(out) if out else x


def _occlude(x, gen):
    n, _, h, w = x.shape
    yy = torch.arange(h).view(1, 1, h, 1).float() / h
    top = _uniform(0.22, 0.32, gen, n).view(n, 1, 1, 1)
    eyes = (yy >= top) & (yy < top + 0.18)            # a sunglasses band
    mouth = yy >= _uniform(0.55, 0.65, gen, n).view(n, 1, 1, 1)   # a lower-face mask
    which = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
    fill = _uniform(0.0, 0.9, gen, n).view(n, 1, 1, 1)
    mask = torch.where(which, eyes, mouth).expand(n, 1, h, w)
    return torch.where(mask, fill.expand(n, 1, h, w), x)


def corrupt_batch(x: torch.Tensor, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """Apply the corruption families to random images of ``x`` ((N, 1, H, W) in [0, 1])."""
    if scale <= 0:
        return x
    x = x.clone()
    n, _, h, w = x.shape
    p = {k: min(1.0, v * scale) for k, v in CORRUPT_P.items()}
    i = _pick(n, p["photo"], gen)
    if len(i):
        m = len(i)
        xi = x[i]
        mu = xi.mean(dim=(1, 2, 3), keepdim=True)
        c = torch.exp(_uniform(-1.0, 0.5, gen, m)).view(m, 1, 1, 1)    # contrast 0.37-1.65
        b = _uniform(-0.35, 0.35, gen, m).view(m, 1, 1, 1)            # brightness
        g = torch.exp(_uniform(-0.9, 0.9, gen, m)).view(m, 1, 1, 1)   # gamma 0.4-2.5
        x[i] = (((xi - mu) * c + mu + b).clamp(0, 1) ** g)
    i = _pick(n, p["blur"], gen)
    if len(i):
        x[i] = _conv(x[i], gaussian_kernel(float(_uniform(0.5, 2.2, gen))))
    i = _pick(n, p["motion"], gen)
    if len(i):
        length = int(torch.randint(3, 10, (1,), generator=gen))
        x[i] = _conv(x[i], motion_kernel(length | 1, float(_uniform(0, 180, gen))))
    i = _pick(n, p["lowres"], gen)
    if len(i):
        s = int(torch.randint(12, 33, (1,), generator=gen))
        small = F.interpolate(x[i], size=(s, s * w // h), mode="area")
        x[i] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    i = _pick(n, p["occlude"], gen)
    if len(i):
        x[i] = _occlude(x[i], gen)
    i = _pick(n, p["noise"], gen)
    if len(i):
        sigma = _uniform(0.01, 0.15, gen, len(i)).view(-1, 1, 1, 1)
        noise = torch.randn(x[i].shape, generator=gen)
        x[i] = x[i] + sigma * noise
    i = _pick(n, p["jpeg"], gen)
    if len(i):
        x[i] = _jpeg(x[i], int(torch.randint(8, 60, (1,), generator=gen)))
    return x.clamp(0, 1)
