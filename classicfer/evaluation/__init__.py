"""One evaluation harness for every model.

A classicfer pipeline (features + classifier), any sklearn estimator, or a
deployment folder (ONNX + sidecar) is run through the same protocols
(:data:`PROTOCOLS`; within one dataset, a scikit-learn CV object from :func:`make_cv`) and the
same report writer, so the CNN head and the classical models are measured the
same way. :func:`run_grid` (``classicfer grid``) searches features x classifiers x
parameters with ``GridSearchCV`` on the same CV objects. Every result names its
figures :data:`METRICS` (``accuracy``, ``balanced_accuracy``, ``macro_f1``, plus
``per_class``).

Example
-------
>>> from classicfer.datasets import load_dataset
>>> from classicfer.evaluation import evaluate, model_from_spec, write_report
>>> ds = load_dataset("../shared/datasets/ckplus48")                # doctest: +SKIP
>>> res = evaluate(model_from_spec("hog", "linear-svm"), ds, "subject-kfold")  # doctest: +SKIP
>>> write_report(res, ds, "results/ckplus48/subject-kfold/hog-linear-svm")     # doctest: +SKIP
"""

from ._compare import compare_markdown, load_runs, write_compare
from ._grid import grid_cv, run_grid, write_grid_results
from ._harness import EvaluationResult, evaluate
from ._metrics import (
                       METRICS,
                       SCORERS,
                       bootstrap_accuracy_ci,
                       classification_metrics,
                       fold_summary,
                       split_metrics,
                       top_confusions,
)
from ._models import (
                       ModelSpec,
                       PrefitClassifier,
                       load_deployed,
                       model_from_estimator,
                       model_from_path,
                       model_from_spec,
                       spec_name,
)
from ._protocols import (
                       CV_SCHEMES,
                       PROTOCOLS,
                       CVPlan,
                       applicable_protocols,
                       check_protocol,
                       default_protocol,
                       leave_one_subject_out,
                       make_cv,
                       subject_kfold,
)
from ._report import (
                       REPORT_FILES,
                       confusions_markdown,
                       read_predictions,
                       report_dir,
                       write_report,
)

__all__ = [
    "CV_SCHEMES", "METRICS", "PROTOCOLS", "REPORT_FILES", "SCORERS", "CVPlan",
    "EvaluationResult", "ModelSpec", "PrefitClassifier", "applicable_protocols",
    "bootstrap_accuracy_ci", "check_protocol", "classification_metrics", "compare_markdown",
    "confusions_markdown", "default_protocol", "evaluate", "fold_summary", "grid_cv",
    "leave_one_subject_out", "load_deployed", "load_runs", "make_cv", "model_from_estimator",
    "model_from_path", "model_from_spec", "read_predictions", "report_dir", "run_grid",
    "spec_name", "split_metrics", "subject_kfold", "top_confusions", "write_compare",
    "write_grid_results", "write_report",
]
