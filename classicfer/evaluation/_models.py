"""Every kind of model behind one sklearn-like face.

* a classicfer model spec (``features="hog+lbp", classifier="linear-svm"``) -> an
  unfitted pipeline from :func:`classicfer.pipeline.make_pipeline`, fitted per fold;
* any sklearn estimator: unfitted ones are cloned and fitted per fold, fitted ones
  are used as they are ("prefit");
* a deployment folder (``model.onnx`` + ``model.json``) -> :class:`PrefitClassifier`
  around the runtime model, so a CNN and a classical model take the same path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..config import PICKLE_EXTS
from ..exceptions import ConfigError, ModelError


class PrefitClassifier(ClassifierMixin, BaseEstimator):
    """An already-trained model seen as a fitted sklearn classifier.

    Anything with ``labels`` and ``predict_proba(crops)``.

    Parameters
    ----------
    model : object
        Has ``labels`` (class names in output order) and ``predict_proba(X)``
        returning an (N, n_labels) array, e.g. :func:`classicfer.runtime.load_model`.

    Notes
    -----
    ``fit`` is a no-op that returns ``self``: the harness never refits a prefit
    model, and a pipeline that calls ``fit`` by mistake leaves it unchanged.
    """

    def __init__(self, model=None):
        self.model = model

    @property
    def classes_(self):
        return np.asarray([str(c) for c in self.model.labels])

    def __sklearn_is_fitted__(self):
        return self.model is not None

    def fit(self, X=None, y=None):
        return self

    def predict_proba(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, msg="This %(name)s has no model: pass model=... (e.g. "
                        "classicfer.runtime.load_model(folder)); fit does not train one")
        p = np.asarray(self.model.predict_proba(X), dtype=float)
        if p.ndim != 2 or p.shape[1] != len(self.classes_):
            raise ModelError(f"model returned probabilities of shape {p.shape}; expected "
                             f"(N, {len(self.classes_)}) for labels {list(self.classes_)}")
        return p

    def predict(self, X):
        proba = self.predict_proba(X)  # NotFittedError first, without a model
        return self.classes_[np.argmax(proba, axis=1)]


def load_deployed(path) -> PrefitClassifier:
    """A deployment folder as a :class:`PrefitClassifier` (checksum verified)."""
    from ..runtime import load_model

    return PrefitClassifier(load_model(path))


def is_fitted(estimator) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
        return True
    except (NotFittedError, TypeError):
        return False


@dataclass
class ModelSpec:
    """What the harness evaluates: an estimator plus how to name and treat it."""

    estimator: object
    name: str
    kind: str  # "pipeline" | "estimator" | "deployed"
    prefit: bool
    description: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)  # param name -> list of values (official only)
    route: object = None  # user params -> the estimator's own parameter names and values


def _split_grid(params: dict) -> tuple[dict, dict]:
    fixed, grid = {}, {}
    for k, v in (params or {}).items():
        (grid if isinstance(v, (list, tuple)) else fixed)[k] = list(v) if isinstance(
            v, (list, tuple)) else v
    return fixed, grid


def spec_name(features, classifier) -> str:
    feats = features if isinstance(features, str) else "+".join(features)
    return f"{feats}-{classifier}"


def model_from_spec(features, classifier, params=None, *, name=None) -> ModelSpec:
    """An unfitted classicfer pipeline from a feature spec and a classifier name.

    List values in ``params`` are a grid (searched on the val split by the official
    protocol); every candidate is checked here, before anything is fitted.
    """
    from ..pipeline import check_param_values, make_pipeline, route_params

    feats = features if isinstance(features, str) else "+".join(features)
    fixed, grid = _split_grid(params or {})
    est = make_pipeline(feats, classifier, fixed)
    for key, values in route_params(est, grid, grid=True).items():
        if key not in ("reduce", "scale"):
            for v in values:
                check_param_values(est, {key: v})

    def route(extra):
        return route_params(est, extra)

    return ModelSpec(est, name or spec_name(feats, classifier), "pipeline", False,
                     {"features": feats, "classifier": classifier, "params": fixed}, grid,
                     route)


def is_pickle_path(path) -> bool:
    """Whether ``path`` names a pickled estimator file (by its extension)."""
    return os.fspath(path).lower().endswith(PICKLE_EXTS)


def refuse_pickle(path, allow_pickle: bool, how: str = "--allow-pickle") -> None:
    """Raise a one-line :class:`ConfigError` unless loading the pickle ``path`` was allowed.

    ``how`` names the switch that allows it.
    """
    if not allow_pickle:
        raise ConfigError(f"{path} is a pickle, and loading a pickle runs any code stored in "
                          f"it: refused unless you pass {how} (only for files you made)")


def model_from_path(path, *, name=None, allow_pickle: bool = False) -> ModelSpec:
    """Load a model to evaluate.

    A deployment folder (model.json + model.onnx), the name of a bundled model, or a
    joblib file of a fitted estimator.

    Parameters
    ----------
    path : str or Path
        The model.
    name : str, optional
        Model name in reports (default: from the sidecar or the file name).
    allow_pickle : bool
        Load a ``.joblib``/``.pkl``/``.pickle`` file. Unpickling runs code stored in
        the file, so this is refused unless asked for (only for files you made).

    Raises
    ------
    ConfigError
        A pickle file without ``allow_pickle``.
    ModelError
        Not a model folder, a bad sidecar, or a pickle that is not an estimator.
    """
    p = os.fspath(path)
    if os.path.isfile(p) and is_pickle_path(p):
        refuse_pickle(p, allow_pickle, "allow_pickle=True")
        import joblib

        try:
            est = joblib.load(p)  # allowed above: the user's own file
        except Exception as e:  # noqa: BLE001 (any unpickling failure)
            raise ModelError(f"{p}: cannot load it ({e.__class__.__name__}: "
                             f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None
        if not hasattr(est, "predict"):
            raise ModelError(f"{p}: holds a {type(est).__name__}, not an estimator")
        prefit = is_fitted(est)
        stem = os.path.splitext(os.path.basename(p))[0]
        return ModelSpec(est, name or stem, "estimator", prefit, {"path": os.path.abspath(p)})
    from ..runtime import resolve_model_dir

    if os.path.basename(p) == "model.json":
        p = os.path.dirname(p) or "."
    d = resolve_model_dir(p)  # ModelError with the fix when it is not a model folder
    est = load_deployed(d)
    meta = est.model.sidecar
    desc = {"path": os.path.abspath(d), "kind": meta.get("kind"), "name": meta.get("name"),
            "sha256": (meta.get("onnx") or {}).get("sha256"), "features": meta.get("features"),
            "training": meta.get("training")}
    default = meta.get("name") or os.path.basename(os.path.normpath(str(d)))
    return ModelSpec(est, name or default, "deployed", True, desc)


def model_from_estimator(estimator, *, name=None, prefit=None) -> ModelSpec:
    """Any sklearn estimator; ``prefit=None`` means "prefit if already fitted"."""
    if isinstance(estimator, ModelSpec):
        return estimator
    if prefit is None:
        prefit = is_fitted(estimator)
    kind = "deployed" if isinstance(estimator, PrefitClassifier) else "estimator"
    return ModelSpec(estimator, name or type(estimator).__name__.lower(), kind, bool(prefit),
                     {"repr": repr(estimator)})
