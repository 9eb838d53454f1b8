"""One evaluation harness for every model.

A classicfer pipeline (features + classifier), any sklearn estimator, or a
deployment folder (ONNX + sidecar) is run through the same protocols
(:data:`PROTOCOLS`) and the same report writer, so the CNN head and the
classical models are measured the same way.

Example
-------
>>> from classicfer.datasets import load_dataset
>>> from classicfer.evaluation import evaluate, model_from_spec, write_report
>>> ds = load_dataset("../shared/datasets/ckplus48")                # doctest: +SKIP
>>> res = evaluate(model_from_spec("hog", "linear-svm"), ds, "subject-kfold")  # doctest: +SKIP
>>> write_report(res, ds, "results/ckplus48/subject-kfold/hog-linear-svm")     # doctest: +SKIP
"""

from ._compare import compare_markdown, load_runs, write_compare
from ._harness import EvaluationResult, evaluate
from ._metrics import bootstrap_accuracy_ci, classification_metrics, fold_summary, top_confusions
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
                       PROTOCOLS,
                       applicable_protocols,
                       check_protocol,
                       default_protocol,
                       leave_one_subject_out,
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
    "PROTOCOLS", "REPORT_FILES", "EvaluationResult", "ModelSpec", "PrefitClassifier",
    "applicable_protocols", "bootstrap_accuracy_ci", "check_protocol", "classification_metrics",
    "compare_markdown", "confusions_markdown", "default_protocol", "evaluate", "fold_summary",
    "leave_one_subject_out", "load_deployed", "load_runs", "model_from_estimator",
    "model_from_path", "model_from_spec", "read_predictions", "report_dir", "spec_name",
    "subject_kfold", "top_confusions", "write_compare", "write_report",
]
