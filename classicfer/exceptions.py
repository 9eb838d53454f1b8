"""Errors raised by classicfer.

Every error a user can cause (bad path, bad image, unknown name, tampered model)
derives from :class:`ClassicferError`; the CLI turns it into one clear line on
stderr and a non-zero exit code. Any other exception is a bug.
"""


class ClassicferError(Exception):
    """Base class of the errors a user can cause."""


class DataError(ClassicferError, ValueError):
    """A dataset path, layout, label or file is unusable."""


class ImageError(ClassicferError, ValueError):
    """An image cannot be decoded, is too large, or has an unsupported mode."""


class ModelError(ClassicferError, ValueError):
    """A model folder is missing, malformed, or fails its checksum."""


class ConfigError(ClassicferError, ValueError):
    """An unknown name or a bad parameter value (feature, classifier, protocol...)."""
