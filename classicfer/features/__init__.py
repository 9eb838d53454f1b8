"""Face-crop descriptors as scikit-learn transformers.

Every transformer takes (N, H, W) uint8 crops (48x48 for FER-2013 / CK+48) and
returns an (N, F) float32 matrix. They are stateless: ``fit`` learns nothing,
so a deployed model rebuilds them from ``make_features(spec, params)``.

Add a descriptor by writing an :class:`ImageTransformer` subclass and adding it
to :data:`FEATURES` (or calling :func:`register_feature`).
"""

from __future__ import annotations

from ..exceptions import ConfigError
from ._align import align_crops
from ._base import ImageTransformer, as_image_batch
from ._bovw import BoVWFeatures, dense_descriptors
from ._embedding import EmbeddingFeatures
from ._gabor import GaborFeatures, gabor_features
from ._hog import HOGFeatures, hog_descriptors
from ._landmarks import LandmarkFeatures, landmark_geometry
from ._lbp import LBPFeatures, lbp_histograms, lbp_n_bins
from ._multilbp import MultiLBPFeatures
from ._patches import RegionHOGFeatures

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


def register_feature(name: str, cls: type) -> None:
    """Add a transformer class under ``name`` (a name without ``+``, ``,`` or ``__``)."""
    if not name or any(c in name for c in "+, ") or "__" in name:
        raise ConfigError(f"feature name {name!r} may not be empty or contain '+', ',', ' ' "
                          "or '__'")
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


def make_features(spec, params: dict | None = None):
    """Build the transformer for ``spec``.

    Parameters
    ----------
    spec : str or list of str
        A name from :data:`FEATURES` or several joined by ``+`` (``"hog+lbp"``).
    params : dict, optional
        ``{"hog__orientations": 12, "lbp": {...}}``-style parameters: keys
        ``<feature>__<param>``, plain parameter names, or a feature name mapping
        to a dict of its parameters (the form :func:`feature_params` returns).

    Returns
    -------
    transformer
        The feature's transformer, or a ``FeatureUnion`` named by feature for
        several (so grids use ``features__hog__orientations``).

    Raises
    ------
    ConfigError
        Unknown feature or parameter name, or a bad parameter value.
    """
    from sklearn.pipeline import FeatureUnion

    names = parse_feature_spec(spec)
    flat = {}
    for key, value in (params or {}).items():
        if key in FEATURES and isinstance(value, dict):
            if key not in names:
                raise ConfigError(f"parameters for {key!r} given but the spec is "
                                  f"{'+'.join(names)}")
            flat.update({f"{key}__{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    routed = split_feature_params(names, flat)
    parts = []
    for n in names:
        est = FEATURES[n](**routed[n])
        est._check_params()
        parts.append((n, est))
    if len(parts) == 1:
        return parts[0][1]
    return FeatureUnion(parts)


def feature_params(transformer) -> dict:
    """JSON-able ``{feature: {param: value}}`` of a transformer from :func:`make_features`.

    ``n_jobs`` is dropped (a runtime choice, not a model parameter).
    """
    from sklearn.pipeline import FeatureUnion

    if isinstance(transformer, FeatureUnion):
        items = transformer.transformer_list
    else:
        name = next((k for k, c in FEATURES.items() if type(transformer) is c), None)
        if name is None:
            raise ConfigError(f"{type(transformer).__name__} is not a registered feature")
        items = [(name, transformer)]
    out = {}
    for name, est in items:
        p = est.get_params(deep=False)
        p.pop("n_jobs", None)
        out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return out


def feature_spec_of(transformer) -> str:
    """``"hog+lbp"`` for a transformer from :func:`make_features`."""
    return "+".join(feature_params(transformer))


__all__ = [
    "FEATURES",
    "BoVWFeatures",
    "EmbeddingFeatures",
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
    "feature_params",
    "feature_spec_of",
    "feature_spec_string",
    "gabor_features",
    "hog_descriptors",
    "landmark_geometry",
    "lbp_histograms",
    "lbp_n_bins",
    "make_features",
    "parse_feature_spec",
    "register_feature",
    "split_feature_params",
]
