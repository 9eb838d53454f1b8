"""onnxruntime-only inference for kiosks: no torch, no pickles, no training code.

- :func:`load_model` -> :class:`DeployedModel` (``.labels``, ``.predict_proba(crops)``,
  ``.sidecar``): a checksum-verified ``model.onnx`` + ``model.json`` folder.
- :class:`Predictor` (``.predict(image)`` -> list of :class:`FaceResult`,
  ``.predict_record(image, path)`` -> the JSON record) and :func:`predict`.
- :func:`read_sidecar`: the validated ``model.json`` (schema in :mod:`._schema`).

The runtime reads and runs model folders; writing them (export, parity check,
model cards) is :mod:`classicfer.export`. Faces are cut by
:func:`classicfer.face.crop_face`.
"""

from ._format import is_model_dir, read_sidecar, sha256_file
from ._model import (
                     DeployedModel,
                     bundled_models_dir,
                     default_model_dir,
                     list_models,
                     load_model,
                     resolve_model_dir,
)
from ._predict import DETECTORS, MIN_CONFIDENCE, MIN_FACE, FaceResult, Predictor, predict

__all__ = [
                     "DETECTORS",
                     "MIN_CONFIDENCE",
                     "MIN_FACE",
                     "DeployedModel",
                     "FaceResult",
                     "Predictor",
                     "bundled_models_dir",
                     "default_model_dir",
                     "is_model_dir",
                     "list_models",
                     "load_model",
                     "predict",
                     "read_sidecar",
                     "resolve_model_dir",
                     "sha256_file",
]
