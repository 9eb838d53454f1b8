"""Build pipelines: ``features -> scale -> reduce -> classifier``, and the learned head."""

from __future__ import annotations

from ._params import check_param_values, route_params, scale_step
from ._registry import check_classifier_name


def _assemble(steps, classifier: str, params: dict | None, random_state: int):
    """A Pipeline of ``steps`` + the named classifier, with ``params`` routed and checked."""
    from sklearn.pipeline import Pipeline

    spec = check_classifier_name(classifier)
    pipe = Pipeline([*steps, ("scale", scale_step(True)), ("reduce", "passthrough"),
                     ("classifier", spec.build())])
    set_random_state(pipe, random_state)
    routed = route_params(pipe, {**spec.defaults, **(params or {})})
    check_param_values(pipe, routed)
    pipe.set_params(**routed)
    set_random_state(pipe, random_state)
    pipe.classifier_name = classifier  # what save_model records; lost by sklearn.clone
    return pipe


def make_head(classifier: str, params: dict | None = None, *, random_state: int = 0):
    """The learned part (``scale -> reduce -> classifier``) as a Pipeline, on feature vectors.

    Parameters and errors as :func:`make_pipeline` (without feature parameters).
    """
    return _assemble([], classifier, params, random_state)


def make_pipeline(features, classifier: str, params: dict | None = None, *,
                  random_state: int = 0):
    """``features -> scale -> reduce -> classifier`` as one sklearn Pipeline.

    Parameters
    ----------
    features : str, list of str, or transformer
        A spec for :func:`classicfer.features.make_features` (``"hog+lbp"``) or a
        transformer it built.
    classifier : str
        A name from :data:`~classicfer.pipeline.CLASSIFIERS`; kept as the pipeline's
        ``classifier_name`` attribute.
    params : dict, optional
        See :func:`~classicfer.pipeline.route_params`: ``C``, ``classifier__C``, ``pca``,
        ``hog__orientations``, ``features__lbp__P``... Feature parameters go to
        the feature step, the rest to the head. ``align='eyes'`` and ``align_margin``
        put the alignment step (:class:`~classicfer.features.EyeAligner`) at the head
        of the feature step, before the appearance descriptors.
    random_state : int
        Seed set on every step that has one.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; fit it with :func:`~classicfer.pipeline.fit_pipeline` (feature cache) or
        its own ``fit``.

    Raises
    ------
    ConfigError
        Unknown feature, classifier or parameter, or a bad value.
    """
    from ..features import make_feature_step

    check_classifier_name(classifier)
    feat, params = make_feature_step(features, params)  # align=eyes: EyeAligner heads it
    return _assemble([("features", feat)], classifier, params, random_state)


def classifier_name(pipeline) -> str:
    """The registry name a pipeline was built with (:func:`make_pipeline`, :func:`make_head`).

    A pipeline built otherwise (or a clone, which drops the attribute) gets the class
    name of its last step.
    """
    name = getattr(pipeline, "classifier_name", None)
    if name:
        return str(name)
    return type(pipeline.steps[-1][1]).__name__


def set_random_state(pipe, seed) -> None:
    """Set every ``*random_state`` parameter of ``pipe`` to ``seed``."""
    for k in pipe.get_params(deep=True):
        if k.endswith("random_state"):
            pipe.set_params(**{k: seed})


def head_of(pipeline):
    """The steps after ``features`` (shares the fitted estimators)."""
    if "features" in pipeline.named_steps:
        return pipeline[1:]
    return pipeline
