"""Property-based fuzzing: any bytes or array in gives an image / results, or a one-line
:class:`~classicfer.exceptions.ClassicferError`; never another exception.

Bounded and reproducible: a fixed example budget, derandomized, no example database. The
pixel limit is lowered for the module so that a mutated header claiming a large image is
refused (or decoded) quickly.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, features

from classicfer import imageio
from classicfer.exceptions import ClassicferError, ImageError
from classicfer.imageio import read_image
from classicfer.runtime._decode import decode_image

# Pillow warns (UserWarning) about some corrupt files it can still decode: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _encode(fmt: str, mode: str = "RGB", **kw) -> bytes:
    yy, xx = np.mgrid[0:12, 0:16]
    rgb = np.dstack([xx * 16, yy * 20, (xx + yy) * 9]).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, fmt, **kw)
    return buf.getvalue()


#: small valid files of each common format, the seeds of the mutations
SEEDS = {
    "png": _encode("PNG"),
    "png-gray": _encode("PNG", "L"),
    "png-palette": _encode("PNG", "P"),
    "jpeg": _encode("JPEG", quality=80),
    "jpeg-progressive": _encode("JPEG", progressive=True),
    "gif": _encode("GIF", "P"),
    "bmp": _encode("BMP"),
    "tiff": _encode("TIFF"),
    "tiff-deflate": _encode("TIFF", compression="tiff_adobe_deflate"),
    "webp": _encode("WEBP"),
    "dds": _encode("DDS"),
}
if features.check("avif"):
    SEEDS["avif"] = _encode("AVIF")


@pytest.fixture(scope="module", autouse=True)
def _small_pixel_limit():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(imageio, "MAX_PIXELS", 1 << 20)
        yield


#: the first bytes (the signature; AVIF's whole ftyp box) are kept so that the right
#: decoder runs
KEEP = {"avif": 32}


@st.composite
def mutated_files(draw, kinds=None) -> bytes:
    """A seed file (of ``kinds``, default any) with a few bytes overwritten (mostly in the
    header), and maybe cut short, with bytes inserted or removed; its signature is kept.
    """
    kind = draw(st.sampled_from(sorted(kinds or SEEDS)))
    data, keep = bytearray(SEEDS[kind]), KEEP.get(kind, 12)
    for _ in range(draw(st.integers(0, 6))):
        end = min(len(data), draw(st.sampled_from([keep + 64, 512, len(data)])))
        data[draw(st.integers(keep, end - 1))] = draw(st.integers(0, 255))
    edit = draw(st.sampled_from(["none", "cut", "insert", "delete"]))
    at = draw(st.integers(keep, len(data)))
    if edit == "cut":
        data = data[:at]
    elif edit == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=32))
    elif edit == "delete":
        del data[at:at + draw(st.integers(1, 32))]
    return bytes(data)


#: arbitrary bytes, bytes after a real signature, and mutated real files
ANY_BYTES = st.one_of(
    st.binary(max_size=512),
    st.tuples(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM",
                               b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 "]),
              st.binary(max_size=256)).map(b"".join),
    mutated_files(),
)


def _image_or_image_error(decode, data, *, gray=False):
    try:
        out = decode(data)
    except ImageError as e:
        message = str(e)
        assert message and "\n" not in message
        return None
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == (2 if gray else 3) and out.size > 0
    assert gray or out.shape[2] == 3
    return out


def test_seeds_decode():
    for data in SEEDS.values():
        assert read_image(data).shape == (12, 16, 3)
        assert decode_image(data).shape == (12, 16, 3)


@FUZZ
@given(data=ANY_BYTES, gray=st.booleans())
def test_read_image_returns_uint8_or_raises_image_error(data, gray):
    _image_or_image_error(lambda d: read_image(d, gray=gray), data, gray=gray)


#: formats whose decoders raise more than OSError / ValueError / SyntaxError when corrupt
#: (libavif: RuntimeError; Pillow's DDS plugin: NotImplementedError)
ODD_DECODERS = sorted({"avif", "dds", "webp"} & set(SEEDS))


@FUZZ
@given(data=mutated_files(ODD_DECODERS))
def test_read_image_on_corrupt_avif_dds_webp(data):
    _image_or_image_error(read_image, data)


@FUZZ
@given(data=ANY_BYTES)
def test_runtime_decoding_returns_rgb_or_raises_image_error(data):
    out = _image_or_image_error(decode_image, data)
    if out is not None:  # the OpenCV fast path and Pillow agree on the size
        ref = _image_or_image_error(read_image, data)
        assert ref is not None and out.shape == ref.shape


# ---------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from classicfer.export._testing import make_linear_model

    return str(make_linear_model(tmp_path_factory.mktemp("fuzz") / "linear"))


_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16,
                           np.float32, np.float64, np.bool_])
_SIDE = st.integers(1, 64)
_SHAPES = st.one_of(
    st.tuples(_SIDE, _SIDE),
    st.tuples(_SIDE, _SIDE, st.sampled_from([1, 3, 4])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
)
ARRAYS = st.builds(lambda dtype, shape: (dtype, shape), _DTYPES, _SHAPES).flatmap(
    lambda ds: hnp.arrays(ds[0], ds[1]))
#: ways to call predict: the face detectors that do not risk the process on odd input
#: (dlib's are checked in a child process in test_face.py) and already-cropped faces
MODES = st.sampled_from([{"detector": "blazeface"}, {"detector": "haar"},
                         {"detector": "mtcnn"}, {"detect": False}])


def _results_or_classicfer_error(model_dir, image, mode):
    import classicfer

    try:
        faces = classicfer.predict(image, model=model_dir, **mode)
    except ClassicferError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(faces, list)
    for f in faces:
        d = f.to_dict()
        assert d["status"] in ("ok", "uncertain", "too_small")
    if mode.get("detect") is False:
        assert len(faces) == 1


@FUZZ
@given(image=ARRAYS, mode=MODES)
def test_predict_on_arrays_returns_results_or_a_classicfer_error(model_dir, image, mode):
    _results_or_classicfer_error(model_dir, image, mode)


@settings(FUZZ, max_examples=100)
@given(data=ANY_BYTES, mode=MODES)
def test_predict_on_bytes_returns_results_or_a_classicfer_error(model_dir, data, mode):
    _results_or_classicfer_error(model_dir, data, mode)
