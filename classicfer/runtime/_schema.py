"""The ``model.json`` schema and a small validator with one-line errors.

A schema is a tree of nodes (:class:`Obj`, :class:`Arr`, :class:`Str`, :class:`Num`,
:class:`Int`, :class:`Choice`, :class:`AnyOf`); :func:`validate` walks a parsed
JSON document along it and raises :class:`SchemaError` at the first value that
does not fit, naming its key (``input.size[1]``), what was expected and what was
found. :func:`check_sidecar` adds the rules that tie keys together (labels are
canonical and unique, ``input.mean`` has one value per channel, a classical model
names its features).

Keys the schema does not list are allowed (``training``, ``metrics`` and future
additions are free-form); the keys it lists must have the listed type.
"""

from __future__ import annotations

import json
import math
import re

from ..face._crop import CROP_MODES
from ..labels import EMOTIONS

SIDECAR_NAME = "model.json"


class SchemaError(ValueError):
    """A value that does not fit the schema: ``key`` (dotted), ``expected``, ``got``."""

    def __init__(self, key: str, expected: str, got=None, *, missing: bool = False):
        self.key, self.expected, self.got, self.missing = key, expected, got, missing
        where = key or "the document"
        if missing:
            super().__init__(f"{where} is missing (expected {expected})")
        else:
            super().__init__(f"{where} must be {expected}, got {show(got)}")


def show(value, limit: int = 40) -> str:
    """A short JSON rendering of ``value`` for an error message (one line, truncated)."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(parent: str, child) -> str:
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else str(child)


class Node:
    """Base of the schema nodes: ``expected`` describes the accepted values."""

    expected = "a value"

    def check(self, value, key: str) -> None:
        if not self.accepts(value):
            raise SchemaError(key, self.expected, value)

    def accepts(self, value) -> bool:  # pragma: no cover (overridden)
        return True


class Num(Node):
    """A finite JSON number (not a boolean) in ``[lo, hi]``, optionally ``> gt``."""

    def __init__(self, gt=None, lo=-1e6, hi=1e6, expected=None):
        self.gt, self.lo, self.hi = gt, lo, hi
        what = "a finite number" if gt is None else f"a finite number > {gt:g}"
        self.expected = expected or f"{what} (between {lo:g} and {hi:g})"

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (math.isfinite(value) and self.lo <= value <= self.hi
                and (self.gt is None or value > self.gt))


class Int(Node):
    """A JSON integer (not a boolean), optionally ``>= ge`` and ``<= le``."""

    def __init__(self, ge=None, le=None, expected=None):
        self.ge, self.le = ge, le
        what = "an integer" if ge is None else f"an integer >= {ge}"
        self.expected = expected or (what if le is None else f"{what} and <= {le}")

    def accepts(self, value) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and (self.ge is None or value >= self.ge)
                and (self.le is None or value <= self.le))


class Str(Node):
    """A non-empty string, optionally matching ``pattern`` (full match)."""

    def __init__(self, pattern=None, expected=None):
        self.pattern = re.compile(pattern) if pattern else None
        self.expected = expected or "a non-empty string"

    def accepts(self, value) -> bool:
        return (isinstance(value, str) and value != ""
                and (self.pattern is None or self.pattern.fullmatch(value) is not None))


class Choice(Node):
    """One of a fixed set of JSON values."""

    def __init__(self, *choices):
        self.choices = choices
        self.expected = " or ".join(json.dumps(c) for c in choices)

    def accepts(self, value) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)


class Dict(Node):
    """Any JSON object (free-form content)."""

    expected = "an object"

    def accepts(self, value) -> bool:
        return isinstance(value, dict)


class Arr(Node):
    """A JSON array of ``item`` with ``min_len <= len <= max_len``."""

    def __init__(self, item: Node, min_len: int = 0, max_len=None, expected=None):
        self.item, self.min_len, self.max_len = item, min_len, max_len
        self.expected = expected or f"an array of {item.expected}"

    def check(self, value, key: str) -> None:
        if not isinstance(value, list) or len(value) < self.min_len or (
                self.max_len is not None and len(value) > self.max_len):
            raise SchemaError(key, self.expected, value)
        for i, v in enumerate(value):
            self.item.check(v, _key(key, i))


class AnyOf(Node):
    """A value accepted by at least one of ``nodes``."""

    def __init__(self, *nodes: Node, expected=None):
        self.nodes = nodes
        self.expected = expected or " or ".join(n.expected for n in nodes)

    def check(self, value, key: str) -> None:
        for n in self.nodes:
            try:
                n.check(value, key)
                return
            except SchemaError:
                continue
        raise SchemaError(key, self.expected, value)


class Obj(Node):
    """A JSON object; ``fields`` maps a key to ``(node, required)``. Other keys pass."""

    expected = "an object"

    def __init__(self, fields: dict, expected=None):
        self.fields = fields
        if expected:
            self.expected = expected

    def check(self, value, key: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(key, self.expected, value)
        for name, (node, required) in self.fields.items():
            if name in value:
                node.check(value[name], _key(key, name))
            elif required:
                raise SchemaError(_key(key, name), node.expected, missing=True)


class PlainFileName(Str):
    r"""A file name with no folder part: no ``/`` or ``\``, not ``.``/``..``, no NUL."""

    def __init__(self, forbidden=()):
        super().__init__(expected="a plain file name inside the model folder (no folder part)")
        self.forbidden = set(forbidden)

    def accepts(self, value) -> bool:
        return (super().accepts(value) and value not in (".", "..")
                and not any(c in value for c in "/\\\0:") and value not in self.forbidden
                and value.strip() == value)


#: Every number used in arithmetic stays far from float32 overflow: bounded magnitudes.
POSITIVE = Num(gt=0, lo=1e-6)
TEMPERATURE = Num(gt=0, lo=1e-3, hi=1e3)
#: Largest input side and feature count (a zero input of that shape is run at load time).
MAX_SIDE, MAX_FEATURES = 4096, 10_000_000
SIZE = AnyOf(Int(ge=1, le=MAX_SIDE),
             Arr(Int(ge=1, le=MAX_SIDE), 2, 2),
             expected=f"[height, width] (two integers from 1 to {MAX_SIDE})")
CHANNEL_VALUES = AnyOf(Num(), Arr(Num(), 1, 3), expected="a finite number or an array of "
                       "finite numbers (one per channel; between -1e+06 and 1e+06)")
CHANNEL_SCALES = AnyOf(POSITIVE, Arr(POSITIVE, 1, 3), expected="a finite number > 0 or an "
                       "array of finite numbers > 0 (one per channel; between 1e-06 and 1e+06)")

FRACTION = Num(lo=0, hi=1, expected="a number between 0 and 1")
#: The record of an int8 model made by :func:`classicfer.export.quantize_model`.
QUANTIZATION = Obj({
    "method": (Str(), True),
    "calibration": (Obj({"split": (Str(), False), "n": (Int(ge=1), True),
                         "seed": (Int(), False)}), False),
    "check": (Obj({"split": (Str(), False), "n": (Int(ge=1), True)}), False),
    "accuracy_fp32": (FRACTION, False),
    "accuracy_int8": (FRACTION, False),
    "drop": (Num(lo=-1, hi=1, expected="a number between -1 and 1"), False),
    "max_drop": (FRACTION, False),
    "onnxruntime": (Str(), False),
})

SIDECAR_SCHEMA = Obj({
    "format": (Str(), True),
    "format_version": (Int(ge=1), True),
    "kind": (Choice("cnn", "classical"), True),
    "name": (Str(), False),
    "labels": (Arr(Str(), 1, expected="a non-empty array of label names"), True),
    "input": (Obj({
        "size": (SIZE, False),
        "color": (Choice("gray", "rgb"), False),
        "crop": (Choice(*CROP_MODES), False),
        "scale": (POSITIVE, False),
        "mean": (CHANNEL_VALUES, False),
        "std": (CHANNEL_SCALES, False),
    }), True),
    "features": (Obj({"spec": (Str(), True), "params": (Dict(), False),
                      "align": (Obj({"method": (Choice("eyes"), False),
                                     "margin": (Num(lo=-0.3, hi=1.0), False),
                                     "parts": (Arr(Str(), 1), False)}), False)}), False),
    "onnx": (Obj({
        "file": (PlainFileName(forbidden=(SIDECAR_NAME,)), False),
        "sha256": (Str(r"[0-9a-fA-F]{64}", expected="the ONNX file's sha256, "
                                 "64 hex digits (refusing an unverified model)"), True),
        "input": (Str(), False),
        "output": (Str(), False),
        "output_kind": (Choice("logits", "probabilities"), False),
        "n_features": (Int(ge=1, le=MAX_FEATURES), False),
    }), True),
    "temperature": (TEMPERATURE, False),
    "training": (Dict(), False),
    "metrics": (Dict(), False),
    "calibration": (Dict(), False),
    "quantization": (QUANTIZATION, False),
}, expected="a JSON object")


def validate(doc, schema: Node = SIDECAR_SCHEMA) -> None:
    """Raise :class:`SchemaError` at the first value of ``doc`` that does not fit ``schema``."""
    schema.check(doc, "")


def _check_labels(labels) -> None:
    for i, lab in enumerate(labels):
        if lab not in EMOTIONS:
            raise SchemaError(f"labels[{i}]", f"a canonical emotion name ({', '.join(EMOTIONS)})",
                              lab)
    seen = set()
    for i, lab in enumerate(labels):
        if lab in seen:
            raise SchemaError(f"labels[{i}]", "a label not listed before (labels are unique)",
                              lab)
        seen.add(lab)


def _check_channels(inp: dict) -> None:
    channels = 3 if inp.get("color", "gray") == "rgb" else 1
    for k in ("mean", "std"):
        v = inp.get(k)
        if isinstance(v, list) and len(v) not in (1, channels):
            what = "one value (gray input)" if channels == 1 else "one value or three (rgb)"
            raise SchemaError(f"input.{k}", what, v)


def check_sidecar(meta, *, format_name: str, format_version: int) -> None:
    """Validate a parsed ``model.json``: types, then the rules across keys.

    Parameters
    ----------
    meta : object
        The parsed JSON document.
    format_name : str
        The required value of ``format``.
    format_version : int
        The newest ``format_version`` understood.

    Raises
    ------
    SchemaError
        At the first offending key.
    """
    if not isinstance(meta, dict):
        raise SchemaError("", "a JSON object", meta)
    if meta.get("format") != format_name:
        raise SchemaError("format", f"{json.dumps(format_name)} (a classicfer model sidecar)",
                          meta.get("format"), missing="format" not in meta)
    if "format_version" not in meta:
        raise SchemaError("format_version", "an integer >= 1", missing=True)
    version = meta["format_version"]
    Int(ge=1).check(version, "format_version")
    if version > format_version:
        raise SchemaError("format_version", f"<= {format_version} (this classicfer is older "
                          f"than the model; upgrade classicfer)", version)
    validate(meta)
    _check_labels(meta["labels"])
    _check_channels(meta["input"])
    if meta["kind"] == "classical" and "features" not in meta:
        raise SchemaError("features", 'an object {"spec": ...} for a classical model',
                          missing=True)


__all__ = ["SIDECAR_SCHEMA", "SchemaError", "check_sidecar", "show", "validate"]
