"""onnxruntime-only inference for kiosks: no torch, no pickles.

- :func:`load_model` -> :class:`DeployedModel` (``.labels``, ``.predict_proba(crops)``,
  ``.sidecar``): a checksum-verified ``model.onnx`` + ``model.json`` folder.
- :class:`Predictor` (``.predict(image)`` -> list of :class:`FaceResult`,
  ``.predict_record(image, path)`` -> the JSON record) and :func:`predict`.
"""

from ._crop import CROP_MODES, crop_face
from ._format import is_model_dir, read_sidecar, sha256_file, write_model_dir
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
                     "CROP_MODES",
                     "DETECTORS",
                     "MIN_CONFIDENCE",
                     "MIN_FACE",
                     "DeployedModel",
                     "FaceResult",
                     "Predictor",
                     "bundled_models_dir",
                     "crop_face",
                     "default_model_dir",
                     "is_model_dir",
                     "list_models",
                     "load_model",
                     "predict",
                     "read_sidecar",
                     "resolve_model_dir",
                     "sha256_file",
                     "write_model_dir",
]
