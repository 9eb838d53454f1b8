"""onnxruntime-only inference for kiosks: no torch, no pickles."""

from ._format import is_model_dir, read_sidecar, sha256_file, write_model_dir

__all__ = ["is_model_dir", "read_sidecar", "sha256_file", "write_model_dir"]
