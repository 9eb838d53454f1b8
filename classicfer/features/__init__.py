"""Face-crop descriptors as scikit-learn transformers, and the eye-alignment step.

Every descriptor takes (N, H, W) uint8 crops (48x48 for FER-2013 / CK+48) and
returns an (N, F) float32 matrix. They are stateless: ``fit`` learns nothing,
so a deployed model rebuilds them from its sidecar's ``features`` block
(:func:`feature_config` / :func:`features_from_config`).

Eye alignment is a step of its own (:class:`EyeAligner`), not a descriptor
parameter: ``align='eyes'`` (with ``align_margin``) puts it at the head of the
feature step, a :class:`DescriptorUnion` that runs it once per batch before the
appearance descriptors.

Add a descriptor by writing an :class:`ImageTransformer` subclass and adding it
to :data:`FEATURES` (or calling :func:`register_feature`).
"""

from __future__ import annotations

from ..exceptions import ConfigError
from ._align import ALIGN_METHODS, EyeAligner, align_crops
from ._base import ImageTransformer, as_image_batch, images_key
from ._bovw import BoVWFeatures, dense_descriptors
from ._embedding import EmbeddingFeatures
from ._gabor import GaborFeatures, gabor_features
from ._hog import HOGFeatures, hog_descriptors
from ._landmarks import LandmarkFeatures, landmark_geometry
from ._lbp import LBPFeatures, lbp_histograms, lbp_n_bins
from ._multilbp import MultiLBPFeatures
from ._patches import RegionHOGFeatures
from ._union import DescriptorUnion

#: feature name -> transformer class
FEATURES: dict[str, type] = {
    "hog": HOGFeatures,
    "lbp": LBPFeatures,
    "landmarks": LandmarkFeatures,
    "embedding": EmbeddingFeatures,
    "gabor": GaborFeatures,
    "multilbp": MultiLBPFeatures,
    "regionhog": RegionHOGFeatures,
    "bovw": BoVWFeatures,
}

#: the user-level parameters of the alignment step (``--param align=eyes``,
#: ``--param align_margin=-0.1``); ``<feature>__align`` names it for one descriptor
ALIGN_PARAMS = ("align", "align_margin")


def register_feature(name: str, cls: type) -> None:
    """Add a transformer class under ``name`` (a name without ``+``, ``,`` or ``__``)."""
    if not name or any(c in name for c in "+, ") or "__" in name:
        raise ConfigError(f"feature name {name!r} may not be empty or contain '+', ',', ' ' "
                          "or '__'")
    if name in ALIGN_PARAMS:
        raise ConfigError(f"feature name {name!r} is the alignment step's parameter")
    FEATURES[name] = cls


def parse_feature_spec(spec) -> list[str]:
    """``"hog+lbp"`` or ``["hog", "lbp"]`` -> ``["hog", "lbp"]``; unknown names are refused."""
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split("+")]
    else:
        names = [str(s).strip() for s in spec]
    names = [n for n in names if n]
    if not names:
        raise ConfigError(f"empty feature spec {spec!r}; choose from {', '.join(FEATURES)} "
                          "(combine with '+')")
    for n in names:
        if n not in FEATURES:
            raise ConfigError(f"unknown feature {n!r}; choose from {', '.join(FEATURES)} "
                              "(combine with '+', e.g. hog+lbp)")
    if len(set(names)) != len(names):
        raise ConfigError(f"feature spec {spec!r} repeats a name")
    return names


def feature_spec_string(spec) -> str:
    """The canonical spelling of a feature spec: its checked names joined by ``+``."""
    return "+".join(parse_feature_spec(spec))


def split_feature_params(names, params: dict | None) -> dict[str, dict]:
    """Route ``params`` to each feature.

    Keys may be ``"<feature>__<param>"`` (``hog__orientations``) or a plain
    parameter name (``orientations``), which goes to every listed feature that
    has it. Unknown keys raise :class:`ConfigError` naming the key.
    """
    out = {n: {} for n in names}
    for key, value in (params or {}).items():
        if "__" in key:
            feat, sub = key.split("__", 1)
            if feat not in out:
                raise ConfigError(f"parameter {key!r}: feature {feat!r} is not in the spec "
                                  f"({'+'.join(names)})")
            valid = FEATURES[feat]().get_params()
            if sub not in valid:
                raise ConfigError(f"parameter {key!r}: {feat} has no parameter {sub!r}; "
                                  f"valid: {', '.join(sorted(valid))}")
            out[feat][sub] = value
            continue
        hit = False
        for n in names:
            if key in FEATURES[n]().get_params():
                out[n][key] = value
                hit = True
        if not hit:
            valid = sorted({f"{n}__{p}" for n in names for p in FEATURES[n]().get_params()})
            raise ConfigError(f"parameter {key!r} is not a parameter of {'+'.join(names)}; "
                              f"valid: {', '.join(valid)}")
    return out


def _own_params(name: str) -> dict:
    return FEATURES[name]().get_params()


def _takes_aligned_crops(name: str) -> bool:
    return bool(getattr(FEATURES[name], "takes_aligned_crops", False))


def _flatten(params: dict | None, names: list[str]) -> dict:
    """``{"hog": {"orientations": 12}}`` -> ``{"hog__orientations": 12}``; flat keys kept."""
    flat = {}
    for key, value in (params or {}).items():
        if key in FEATURES and isinstance(value, dict):
            if key not in names:
                raise ConfigError(f"parameters for {key!r} given but the spec is "
                                  f"{'+'.join(names)}")
            flat.update({f"{key}__{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _alignment_target(key: str, value, names: list[str]) -> str | None:
    """For an alignment parameter, the descriptor it names ("" for all); else None.

    ``align``/``align_margin`` are the alignment step's, except ``align`` set to
    another value for a descriptor with an ``align`` of its own (``embedding``).
    ``<feature>__align`` names one descriptor of the spec (models saved when the
    descriptors aligned crops themselves have these).
    """
    feat, _, sub = key.rpartition("__")
    if sub not in ALIGN_PARAMS:
        return None
    if not feat:
        own = any(sub in _own_params(n) for n in names)
        return None if own and value not in ALIGN_METHODS else ""
    return feat if feat in names and sub not in _own_params(feat) else None


def _split_alignment(flat: dict, names: list[str]) -> tuple[dict, dict]:
    """Alignment parameters by descriptor (``""``: all), and the other parameters."""
    found, rest = {}, {}
    for key, value in flat.items():
        target = _alignment_target(key, value, names)
        if target is None:
            rest[key] = value
        else:
            found.setdefault(target, {})[key.rpartition("__")[2]] = value
    return found, rest


def _check_method(key: str, value) -> None:
    if not isinstance(value, str) or value not in ALIGN_METHODS:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, ALIGN_METHODS))}, "
                          f"got {value!r}")


def _check_margin(key: str, value) -> float:
    try:
        EyeAligner(margin=value)._check_params()
    except ConfigError as e:
        raise ConfigError(f"{key}={value!r}: {str(e).partition(': ')[2]}") from None
    return float(value)


def _alignment_step(found: dict, names: list[str]) -> dict | None:
    """``{"method", "margin", "parts"}`` of the alignment parameters, or None (no step)."""
    common = dict(found.get("", {}))
    method = common.get("align", "none")
    _check_method("align", method)
    margin = _check_margin("align_margin", common.get("align_margin", 0.0))
    takers = [n for n in names if _takes_aligned_crops(n)]
    for n in found:
        if n and n not in takers:
            raise ConfigError(f"{n}__align: {n} finds the landmarks itself; the alignment "
                              "step runs before appearance descriptors only")
    if not takers:
        raise ConfigError(f"align: no descriptor of {'+'.join(names)} describes aligned crops "
                          f"(those that do: "
                          f"{', '.join(n for n in FEATURES if _takes_aligned_crops(n))})")
    chosen = {}
    for n in takers:
        own = found.get(n, {})
        _check_method(f"{n}__align", own.get("align", method))
        m = _check_margin(f"{n}__align_margin", own.get("align_margin", margin))
        if own.get("align", method) == "eyes":
            chosen[n] = m
    if len(set(chosen.values())) > 1:
        raise ConfigError(f"the aligned descriptors ask for different margins ({chosen}); one "
                          "alignment step serves them all: give one align_margin")
    if not chosen:
        return None
    return {"method": "eyes", "margin": next(iter(chosen.values())), "parts": list(chosen)}


def _check_align_block(block, names: list[str]) -> dict:
    """The ``features.align`` block of a sidecar, checked against the spec."""
    if not isinstance(block, dict) or block.get("method", "eyes") != "eyes":
        raise ConfigError(f'features.align must be {{"method": "eyes", "margin": ..., '
                          f'"parts": [...]}}, got {block!r}')
    margin = _check_margin("features.align.margin", block.get("margin", 0.0))
    parts = block.get("parts")
    if parts is None:
        parts = [n for n in names if _takes_aligned_crops(n)]
    if not isinstance(parts, list) or not parts or any(
            not isinstance(n, str) or n not in names or not _takes_aligned_crops(n)
            for n in parts):
        raise ConfigError(f"features.align.parts must list descriptors of {'+'.join(names)} "
                          f"that describe aligned crops, got {parts!r}")
    return {"method": "eyes", "margin": margin, "parts": list(parts)}


def make_features(spec, params: dict | None = None, *, align: dict | None = None):
    """Build the feature step for ``spec``.

    Parameters
    ----------
    spec : str or list of str
        A name from :data:`FEATURES` or several joined by ``+`` (``"hog+lbp"``).
    params : dict, optional
        ``{"hog__orientations": 12, "lbp": {...}}``-style parameters: keys
        ``<feature>__<param>``, plain parameter names, or a feature name mapping
        to a dict of its parameters (the form :func:`feature_params` returns).
        ``align='eyes'`` and ``align_margin`` (:data:`ALIGN_PARAMS`) ask for the
        alignment step; ``<feature>__align`` (in models saved when descriptors
        aligned crops themselves) for one descriptor.
    align : dict, optional
        The alignment step as a sidecar records it (:func:`feature_alignment`);
        instead of alignment parameters.

    Returns
    -------
    transformer
        The feature's transformer; a :class:`DescriptorUnion` named by feature for
        several (so grids use ``features__hog__orientations``) or with alignment
        (its ``aligner`` an :class:`EyeAligner`).

    Raises
    ------
    ConfigError
        Unknown feature or parameter name, or a bad parameter value.
    """
    names = parse_feature_spec(spec)
    found, flat = _split_alignment(_flatten(params, names), names)
    if align is not None and found:
        raise ConfigError("alignment given twice: as the align block and as "
                          f"{', '.join(sorted(found))} parameters")
    step = _check_align_block(align, names) if align is not None else (
        _alignment_step(found, names) if found else None)
    routed = split_feature_params(names, flat)
    parts = []
    for n in names:
        est = FEATURES[n](**routed[n])
        est._check_params()
        parts.append((n, est))
    if step is None:
        return parts[0][1] if len(parts) == 1 else DescriptorUnion(parts)
    default = [n for n in names if _takes_aligned_crops(n)]
    return DescriptorUnion(parts, aligner=EyeAligner(margin=step["margin"]),
                           aligned=None if step["parts"] == default else step["parts"])


def make_feature_step(features, params: dict | None = None):
    """The feature step of a pipeline and the parameters left for the rest of it.

    Parameters
    ----------
    features : str, list of str, or transformer
        A spec for :func:`make_features`, or a transformer it built.
    params : dict, optional
        Pipeline parameters; the alignment step's (:data:`ALIGN_PARAMS`) are taken.

    Returns
    -------
    (transformer, dict)
    """
    params = dict(params or {})
    if isinstance(features, (str, list, tuple)):
        names = parse_feature_spec(features)
        align = {k: v for k, v in params.items() if _alignment_target(k, v, names) is not None}
        rest = {k: v for k, v in params.items() if k not in align}
        return make_features(names, align), rest
    asked = [k for k, v in params.items()
             if k == "align_margin" or (k == "align" and v in ALIGN_METHODS)]
    if asked:
        raise ConfigError(f"{asked[0]}: alignment is built with the feature step: pass a feature "
                          "spec (e.g. 'hog+lbp'), or make_features(spec, {'align': 'eyes'})")
    return features, params


def _parts(transformer) -> list:
    from sklearn.pipeline import FeatureUnion

    if isinstance(transformer, FeatureUnion):
        return list(transformer.transformer_list)
    name = next((k for k, c in FEATURES.items() if type(transformer) is c), None)
    if name is None:
        raise ConfigError(f"{type(transformer).__name__} is not a registered feature")
    return [(name, transformer)]


def feature_params(transformer) -> dict:
    """JSON-able ``{feature: {param: value}}`` of a transformer from :func:`make_features`.

    ``n_jobs`` is dropped (a runtime choice, not a model parameter); the alignment
    step is :func:`feature_alignment`.
    """
    out = {}
    for name, est in _parts(transformer):
        p = est.get_params(deep=False)
        p.pop("n_jobs", None)
        out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return out


def feature_alignment(transformer) -> dict | None:
    """The alignment step of a transformer from :func:`make_features`, or None.

    Returns
    -------
    dict or None
        ``{"method": "eyes", "margin": float, "parts": [feature, ...]}``: the step
        runs once per batch, before the descriptors named in ``parts``.
    """
    aligner = getattr(transformer, "aligner", None)
    if not isinstance(transformer, DescriptorUnion) or aligner is None:
        return None
    parts = transformer.aligned_parts()
    if not parts:
        return None
    if not isinstance(aligner, EyeAligner):
        raise ConfigError(f"{type(aligner).__name__} is not a registered alignment step")
    return {"method": "eyes", "margin": float(aligner.margin), "parts": parts}


def feature_config(transformer) -> dict:
    """The ``features`` block of a sidecar, JSON-able.

    Parameters
    ----------
    transformer : a transformer from :func:`make_features`

    Returns
    -------
    dict
        ``spec`` (:func:`feature_spec_of`), ``params`` (:func:`feature_params`) and,
        when the crops are aligned first, ``align`` (:func:`feature_alignment`).
    """
    out = {"spec": feature_spec_of(transformer), "params": feature_params(transformer)}
    align = feature_alignment(transformer)
    if align is not None:
        out["align"] = align
    return out


def features_from_config(config: dict):
    """The transformer a ``features`` block (:func:`feature_config`) describes.

    Parameters
    ----------
    config : dict
        ``spec``, optional ``params`` (older sidecars may name ``align`` per
        descriptor there) and optional ``align``.

    Returns
    -------
    transformer
        As :func:`make_features` builds it.

    Raises
    ------
    ConfigError
        An unknown feature, a bad parameter or a bad ``align`` block.
    """
    return make_features(config["spec"], config.get("params"), align=config.get("align"))


def feature_spec_of(transformer) -> str:
    """``"hog+lbp"`` for a transformer from :func:`make_features`."""
    return "+".join(name for name, _ in _parts(transformer))


__all__ = [
    "ALIGN_PARAMS",
    "FEATURES",
    "BoVWFeatures",
    "DescriptorUnion",
    "EmbeddingFeatures",
    "EyeAligner",
    "GaborFeatures",
    "HOGFeatures",
    "ImageTransformer",
    "LBPFeatures",
    "LandmarkFeatures",
    "MultiLBPFeatures",
    "RegionHOGFeatures",
    "align_crops",
    "as_image_batch",
    "dense_descriptors",
    "feature_alignment",
    "feature_config",
    "feature_params",
    "feature_spec_of",
    "feature_spec_string",
    "features_from_config",
    "gabor_features",
    "hog_descriptors",
    "images_key",
    "landmark_geometry",
    "lbp_histograms",
    "lbp_n_bins",
    "make_feature_step",
    "make_features",
    "parse_feature_spec",
    "register_feature",
    "split_feature_params",
]
