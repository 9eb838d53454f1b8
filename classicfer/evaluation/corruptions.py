"""Seeded image corruptions for the robustness suite: what a dim camera or a distant face does.

:func:`corrupt` applies one corruption family at a severity 1-5 to (N, H, W) uint8 face
crops and is deterministic: the same images, name, severity and seed give the same
bytes. The families (:data:`CORRUPTIONS`) and their strength per severity:

==================  =======================================================================
gaussian_blur       Gaussian blur, sigma 0.5, 0.8, 1.2, 1.6, 2.2 px (at 48x48)
motion_blur         a line kernel of 3, 5, 7, 9, 11 px at a random angle
gaussian_noise      sensor noise, sigma 0.02, 0.04, 0.08, 0.12, 0.18 of full scale
jpeg                JPEG quality 40, 25, 15, 10, 6
underexposure       intensities x 0.7, 0.55, 0.4, 0.3, 0.2 (then gamma 1.1-1.5)
overexposure        x + (255 - x) * 0.2, 0.35, 0.5, 0.6, 0.7
low_contrast        contrast around the mean x 0.7, 0.5, 0.35, 0.25, 0.15
rotation            in-plane rotation by +-5, 10, 15, 22, 30 degrees (random sign)
box_jitter          the face box scaled by up to +-5 ... 25 % and shifted by up to 3 ... 15 %
                    of its side, as a detector's box varies (random per image)
sunglasses          a dark band centred on the eye line (42 % down), 8, 12, 16, 20, 24 % of
                    the crop's height
mask                a light lower-face mask from 80, 75, 70, 65, 60 % of the height down
low_resolution      the face downscaled to 36, 30, 24, 18, 12 px (48-px side) and back
==================  =======================================================================

Sizes scale with the crop side (the tables are for 48x48).
"""

from __future__ import annotations

import zlib

import numpy as np

from ..exceptions import ConfigError

SEVERITIES = (1, 2, 3, 4, 5)

_LEVELS = {
    "gaussian_blur": (0.5, 0.8, 1.2, 1.6, 2.2),
    "motion_blur": (3, 5, 7, 9, 11),
    "gaussian_noise": (0.02, 0.04, 0.08, 0.12, 0.18),
    "jpeg": (40, 25, 15, 10, 6),
    "underexposure": (0.7, 0.55, 0.4, 0.3, 0.2),
    "overexposure": (0.2, 0.35, 0.5, 0.6, 0.7),
    "low_contrast": (0.7, 0.5, 0.35, 0.25, 0.15),
    "rotation": (5, 10, 15, 22, 30),
    "box_jitter": ((0.05, 0.03), (0.1, 0.06), (0.15, 0.09), (0.2, 0.12), (0.25, 0.15)),
    "sunglasses": (0.08, 0.12, 0.16, 0.20, 0.24),
    "mask": (0.80, 0.75, 0.70, 0.65, 0.60),
    "low_resolution": (36, 30, 24, 18, 12),
}
#: Names of the corruption families, in table order.
CORRUPTIONS = tuple(_LEVELS)


def parse_corruption(text: str) -> tuple[str, int]:
    """``"gaussian_noise:3"`` -> ``("gaussian_noise", 3)``; ConfigError when malformed."""
    name, _, sev = str(text).partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in _LEVELS:
        raise ConfigError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    try:
        severity = int(sev)
    except ValueError:
        raise ConfigError(f"--corrupt expects NAME:SEVERITY with a severity 1-5, got {text!r}"
                          ) from None
    if severity not in SEVERITIES:
        raise ConfigError(f"severity must be 1-5, got {severity}")
    return name, severity


def _rng(name, severity, seed, i):
    return np.random.default_rng([seed, severity, zlib.crc32(name.encode()), i])


def _affine(img, angle, scale, dx, dy):
    import cv2

    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
    m[:, 2] += (dx * w, dy * h)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _one(img, name, level, rng):
    import cv2

    h, w = img.shape
    s = w / 48.0
    f = img.astype(np.float32)
    if name == "gaussian_blur":
        return cv2.GaussianBlur(f, (0, 0), level * s, borderType=cv2.BORDER_REPLICATE)
    if name == "motion_blur":
        k = round(level * s) | 1
        ker = np.zeros((k, k), np.float32)
        ker[k // 2, :] = 1
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        ker = cv2.warpAffine(ker, rot, (k, k))
        return cv2.filter2D(f, -1, ker / max(ker.sum(), 1e-6), borderType=cv2.BORDER_REPLICATE)
    if name == "gaussian_noise":
        return f + rng.normal(0, level * 255, f.shape)
    if name == "jpeg":
        _ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(level)])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    if name == "underexposure":
        g = 1.0 + 0.5 * (1 - level) / 0.8
        return 255.0 * ((f * level / 255.0) ** g)
    if name == "overexposure":
        return f + (255 - f) * level
    if name == "low_contrast":
        return (f - f.mean()) * level + f.mean()
    if name == "rotation":
        return _affine(img, level * rng.choice((-1, 1)), 1.0, 0, 0).astype(np.float32)
    if name == "box_jitter":
        sc, sh = level
        return _affine(img, 0, 1 + rng.uniform(-sc, sc), rng.uniform(-sh, sh),
                       rng.uniform(-sh, sh)).astype(np.float32)
    if name == "sunglasses":
        band = max(1, round(level * h))
        top = round(0.42 * h - band / 2)   # centred on the eye line of the crop
        f[top:top + band] = 25
        return f
    if name == "mask":
        f[round(level * h):] = 205
        return f
    if name == "low_resolution":
        small = cv2.resize(img, (max(1, round(level * s)),) * 2, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    raise ConfigError(f"unknown corruption {name!r}")


def corrupt(images, name: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """A corrupted copy of (N, H, W) uint8 grayscale crops.

    Parameters
    ----------
    images : (N, H, W) uint8 array, or a list of (H, W) uint8 arrays
    name : str
        One of :data:`CORRUPTIONS`.
    severity : int
        1 (mild) to 5 (severe).
    seed : int
        Random draws (noise, angles, jitter) depend on ``seed`` and each image's index only.

    Returns
    -------
    Same type and shape as ``images``, uint8.
    """
    if name not in _LEVELS:
        raise ConfigError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ConfigError(f"severity must be 1-5, got {severity}")
    level = _LEVELS[name][severity - 1]
    out = [np.clip(np.rint(_one(np.asarray(im, np.uint8), name, level,
                                _rng(name, severity, seed, i))), 0, 255).astype(np.uint8)
           for i, im in enumerate(images)]
    if isinstance(images, np.ndarray):
        return np.stack(out) if out else images.copy()
    return out
