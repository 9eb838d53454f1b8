"""User parameters -> the pipeline's own parameter names, and early value checks.

``C``, ``classifier__C``, ``pca=150``, ``scale=false``, ``orientations=12`` or
``hog__orientations=12`` all name a step parameter of the pipeline
``features -> scale -> reduce -> classifier``; :func:`route_params` finds which.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError

#: pipeline steps that a parameter may not name directly (``pca``/``scale`` set them)
_STEPS = ("features", "classifier", "scale", "reduce")


def reduce_step(value, random_state=0):
    """The ``reduce`` step for ``pca=value``: ``"passthrough"`` or a ``PCA``.

    ``value`` is a number of components (int >= 1), a variance fraction in (0, 1), or
    None/0/False/"none"/"passthrough" for no reduction; anything else is a ConfigError.
    """
    from sklearn.decomposition import PCA

    if value in (None, 0, False, "none", "passthrough"):
        return "passthrough"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"parameter 'pca': expected a number of components (int >= 1), a "
                          f"variance fraction in (0, 1), or none; got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        if not 0 < value < 1:
            raise ConfigError(f"parameter 'pca': a fraction must be in (0, 1), got {value!r}")
        return PCA(n_components=float(value), random_state=random_state)
    if value < 1:
        raise ConfigError(f"parameter 'pca': expected >= 1 components, got {value!r}")
    return PCA(n_components=int(value), random_state=random_state)


def scale_step(value):
    """The ``scale`` step for ``scale=value``: a ``StandardScaler`` or ``"passthrough"``."""
    from sklearn.preprocessing import StandardScaler

    if value in (True, "standard", None):
        return StandardScaler()
    if value in (False, "none", "passthrough"):
        return "passthrough"
    raise ConfigError(f"parameter 'scale': expected true or false, got {value!r}")


def prefix_of(clf) -> str:
    """Where a classifier's own parameters live: ``estimator__`` inside a calibrated one."""
    from sklearn.calibration import CalibratedClassifierCV

    return "estimator__" if isinstance(clf, CalibratedClassifierCV) else ""


def _feature_hits(feat, key) -> list[str]:
    """Full names of the feature parameter ``key`` (each part of a union that has it)."""
    from sklearn.pipeline import FeatureUnion

    parts = feat.transformer_list if isinstance(feat, FeatureUnion) else [(None, feat)]
    return [f"features__{n}__{key}" if n else f"features__{key}"
            for n, t in parts if key in t.get_params(deep=False)]


def _full_names(pipeline, key: str, valid: dict) -> list[str]:
    """The full parameter names ``key`` stands for in ``pipeline`` (empty: none)."""
    clf = pipeline.named_steps["classifier"]
    prefix = prefix_of(clf)
    clf_valid = clf.get_params(deep=True)
    feat = pipeline.named_steps.get("features")
    if key in valid and key not in _STEPS:
        return [key]
    if key.startswith("classifier__") and f"classifier__{prefix}{key[12:]}" in valid:
        return [f"classifier__{prefix}{key[12:]}"]
    if f"{prefix}{key}" in clf_valid:
        return [f"classifier__{prefix}{key}"]
    if key in clf_valid and "__" not in key:
        return [f"classifier__{key}"]
    if feat is not None and f"features__{key}" in valid:
        return [f"features__{key}"]
    if feat is not None and "__" not in key and key != "n_jobs":
        return _feature_hits(feat, key)
    return []


def route_params(pipeline, params: dict | None, *, grid: bool = False) -> dict:
    """Map user parameters to the pipeline's own parameter names.

    Accepted keys: full names (``classifier__estimator__C``,
    ``features__hog__orientations``), ``classifier__C`` (the classifier's
    prefix is added), plain classifier parameters (``C``), pipeline shortcuts
    ``pca`` (components, fraction or none) and ``scale`` (true/false), feature
    parameters (``hog__orientations`` or plain ``orientations``).

    With ``grid`` each value is a list of candidates (a scalar becomes a
    one-element list) and step shortcuts become lists of estimators.

    Raises
    ------
    ConfigError
        A key that matches nothing (the message lists valid names) or a bad value.
    """
    valid = pipeline.get_params(deep=True)
    shortcuts = {"pca": ("reduce", reduce_step), "scale": ("scale", scale_step)}
    out = {}
    for key, value in (params or {}).items():
        if not grid and isinstance(value, list):
            raise ConfigError(f"parameter {key!r}: one value expected, got a list {value!r} "
                              "(lists are for `classicfer grid`)")
        values = (list(value) if isinstance(value, (list, tuple)) else [value]) if grid \
            else [value]
        if key in shortcuts:
            step, make = shortcuts[key]
            steps = [make(v) for v in values]
            out[step] = steps if grid else steps[0]
            continue
        names = _full_names(pipeline, key, valid)
        if not names:
            raise unknown_param_error(key, pipeline)
        for name in names:
            out[name] = values if grid else values[0]
    return out


def unknown_param_error(key, pipeline) -> ConfigError:
    """The error for a parameter ``key`` that names nothing in ``pipeline``.

    It lists the classifier's, the pipeline's and the features' parameters.
    """
    clf = pipeline.named_steps["classifier"]
    prefix = prefix_of(clf)
    inner = clf.get_params(deep=True)
    names = sorted({k[len(prefix):] for k in inner if k.startswith(prefix) and "__" not in
                    k[len(prefix):]}) if prefix else sorted(k for k in inner if "__" not in k)
    feat = pipeline.named_steps.get("features")
    fnames = []
    if feat is not None:
        fnames = sorted(k[len("features__"):] for k in pipeline.get_params(deep=True)
                        if k.startswith("features__") and not k.endswith("n_jobs")
                        and k.count("__") == (2 if hasattr(feat, "transformer_list") else 1))
    return ConfigError(f"unknown parameter {key!r}; classifier parameters: {', '.join(names)}; "
                       f"pipeline: pca, scale; features: {', '.join(fnames)}")


def check_param_values(pipeline, routed: dict) -> None:
    """Validate values early so a bad ``--param`` names itself instead of failing mid-fit.

    Raises
    ------
    ConfigError
        ``parameter 'classifier__C'=-1 is invalid: ...`` (the estimator's own message).
    """
    from sklearn.base import clone

    for key, value in routed.items():
        if key in ("reduce", "scale"):
            continue
        probe = clone(pipeline)
        try:
            probe.set_params(**{key: value})
            _validate_estimator(probe.named_steps[key.split("__")[0]])
        except ConfigError as e:
            raise ConfigError(f"parameter {key!r}={value!r}: {e}") from None
        except (ValueError, TypeError) as e:
            msg = str(e).splitlines()[0]
            raise ConfigError(f"parameter {key!r}={value!r} is invalid: {msg}") from None


def _validate_estimator(est) -> None:
    """Check ``est``'s parameters without fitting.

    A feature step's own check, else scikit-learn's ``_parameter_constraints`` (of a
    wrapper and of what it wraps).
    """
    from sklearn.pipeline import FeatureUnion

    if isinstance(est, FeatureUnion):
        for _, t in est.transformer_list:
            _validate_estimator(t)
        return
    if hasattr(est, "_check_params") and hasattr(est, "_describe_batch"):
        est._check_params()
        return
    for part in (getattr(est, "estimator", None), est):
        if getattr(part, "_parameter_constraints", None) is not None:
            part._validate_params()
