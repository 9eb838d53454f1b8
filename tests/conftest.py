"""Shared test fixtures: tiny real-face datasets and a guard for the real data.

Fixtures for every stage's tests (keep their names; they are fast, a few ms each):

- ``tiny_fer_folder`` -> Path of a mini FER-2013 folder tree
  (``train/<class>/Training_*.jpg``, ``test/<class>/PublicTest_*.jpg`` / ``PrivateTest_*.jpg``),
  48x48 grayscale JPEG face crops cut from ``skimage.data.astronaut()``.
  ``TINY_FER_COUNTS`` gives the images per class and usage.
- ``tiny_ckplus48`` -> Path of a mini CK+48 tree (``<class>/S###_###_########.png``), 48x48
  grayscale PNG crops, ``TINY_CK_SUBJECTS_PER_CLASS`` subjects per class, 3 frames each.

Every image is the same real face with small random jitter (shift, scale, brightness,
noise) plus a class-dependent in-plane rotation (``CLASS_ANGLES``): the classes are
therefore learnable from appearance (e.g. HOG), which lets pipeline tests check
"better than chance" without the real data.

Real data: ``requires_shared`` (a skipif mark, also adds the ``realdata`` marker), and the
``fer2013_path`` / ``ckplus48_path`` fixtures, which skip when ../shared/datasets is absent.
Set ``CLASSICFER_SHARED`` to point at another datasets folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: The datasets folder shared by developers and CI (absent on a fresh clone).
SHARED_DATASETS = Path(os.environ.get(
    "CLASSICFER_SHARED", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
FER2013_PATH = SHARED_DATASETS / "fer2013"
CKPLUS48_PATH = SHARED_DATASETS / "ckplus48"
HAVE_SHARED = FER2013_PATH.is_dir() and CKPLUS48_PATH.is_dir()


_SKIP_REASON = f"real datasets not found under {SHARED_DATASETS}"

#: Mark for tests that need ../shared/datasets: skips cleanly when it is absent
#: (``@requires_shared`` or ``pytestmark = requires_shared``). Marked tests also get the
#: ``realdata`` marker, so ``pytest -m "not realdata"`` deselects them.
requires_shared = pytest.mark.skipif(not HAVE_SHARED, reason=_SKIP_REASON)

#: FER-2013 folder class names, in canonical order (no contempt in FER-2013).
FER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
#: CK+48 folder names (the dataset's own spelling).
CK_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
#: In-plane rotation (degrees) that tags each class in the tiny fixtures.
CLASS_ANGLES = dict(zip(FER_CLASSES, (-21, -14, -7, 0, 7, 14, 21), strict=True))
CLASS_ANGLES.update({"anger": -21, "contempt": 28, "sadness": 14})
#: Images per class in ``tiny_fer_folder``, by FER-2013 usage.
TINY_FER_COUNTS = {"Training": 4, "PublicTest": 2, "PrivateTest": 2}
#: Subjects per class in ``tiny_ckplus48`` (3 frames each).
TINY_CK_SUBJECTS_PER_CLASS = 3

_FACE_BOX = (177, 66, 95, 95)  # x, y, w, h of the face in skimage.data.astronaut()
_GRAY = None


def _astronaut_gray():
    global _GRAY
    if _GRAY is None:
        import cv2
        import skimage.data

        _GRAY = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    return _GRAY


def face_crop(angle: float, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A ``size`` x ``size`` uint8 crop of the astronaut's face, rotated by ``angle``, jittered."""
    import cv2

    x, y, w, h = _FACE_BOX
    x0, y0 = x - 50, y - 50  # rotate a region around the face only: much faster
    gray = _astronaut_gray()[y0:y + h + 50, x0:x + w + 50]
    cx = x - x0 + w / 2 + rng.uniform(-3, 3)
    cy = y - y0 + h / 2 + rng.uniform(-3, 3)
    half = 0.62 * w * rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((cx, cy), angle + rng.uniform(-2, 2), 1.0)
    rot = cv2.warpAffine(gray, m, gray.shape[::-1], flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    crop = rot[int(cy - half):int(cy + half), int(cx - half):int(cx + half)]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    crop = crop * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10) + rng.normal(0, 3, crop.shape)
    return np.clip(crop, 0, 255).astype(np.uint8)


def make_tiny_fer_folder(root: Path, seed: int = 0) -> Path:
    """Write the ``tiny_fer_folder`` tree under ``root`` and return ``root``."""
    import cv2

    rng = np.random.default_rng(seed)
    n = 0
    for usage, count in TINY_FER_COUNTS.items():
        part = "train" if usage == "Training" else "test"
        for cls in FER_CLASSES:
            d = root / part / cls
            d.mkdir(parents=True, exist_ok=True)
            for _ in range(count):
                n += 1
                cv2.imwrite(str(d / f"{usage}_{1000 + n}.jpg"),
                            face_crop(CLASS_ANGLES[cls], rng), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


def make_tiny_ckplus48(root: Path, seed: int = 0) -> Path:
    """Write the ``tiny_ckplus48`` tree under ``root`` and return ``root``.

    Six subjects (S010...S060); class ``k`` uses subjects ``k, k+1, k+2`` (mod 6), so every
    subject appears in several classes, as in CK+; one sequence of 3 frames per (subject, class).
    """
    import cv2

    rng = np.random.default_rng(seed)
    subjects = [f"S{10 * i:03d}" for i in range(1, 7)]
    for k, cls in enumerate(CK_CLASSES):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for j in range(TINY_CK_SUBJECTS_PER_CLASS):
            subj = subjects[(k + j) % len(subjects)]
            seq = k + 1
            for frame in range(3):
                cv2.imwrite(str(d / f"{subj}_{seq:03d}_{frame + 10:08d}.png"),
                            face_crop(CLASS_ANGLES[cls], rng))
    return root


@pytest.fixture
def tiny_fer_folder(tmp_path) -> Path:
    """A mini FER-2013 folder tree: 7 classes x (4 Training, 2 PublicTest, 2 PrivateTest)."""
    return make_tiny_fer_folder(tmp_path / "fer2013")


@pytest.fixture
def tiny_ckplus48(tmp_path) -> Path:
    """A mini CK+48 tree: 7 classes x 3 subjects x 3 frames, S###_###_########.png names."""
    return make_tiny_ckplus48(tmp_path / "ckplus48")


@pytest.fixture
def shared_datasets() -> Path:
    """``../shared/datasets``; skips the test when it is absent."""
    if not HAVE_SHARED:
        pytest.skip(f"real datasets not found under {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture
def fer2013_path(shared_datasets) -> Path:
    """The real FER-2013 folder; skips when absent."""
    return shared_datasets / "fer2013"


@pytest.fixture
def ckplus48_path(shared_datasets) -> Path:
    """The real CK+48 folder; skips when absent."""
    return shared_datasets / "ckplus48"


_REAL_FIXTURES = {"shared_datasets", "fer2013_path", "ckplus48_path"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses_real = _REAL_FIXTURES & set(getattr(item, "fixturenames", ()))
        marked = any(m.kwargs.get("reason") == _SKIP_REASON or _SKIP_REASON in m.args
                     for m in item.iter_markers("skipif"))
        if uses_real or marked:
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's dataset cache: CLASSICFER_CACHE -> one temp folder per
    session (set CLASSICFER_TEST_KEEP_CACHE=1 to keep your own CLASSICFER_CACHE).
    """
    if not os.environ.get("CLASSICFER_TEST_KEEP_CACHE"):
        monkeypatch.setenv("CLASSICFER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
