"""One exception hierarchy for the whole package.

Low-level errors (OpenCV returning ``None``, YAML syntax, ONNX parse failures) are translated
once, at the boundary where they happen, into one of these, with the path and the reason in
the message, so that a user reading a single line knows what was wrong, where, and what to do.
"""

from __future__ import annotations


class CropWeedSegError(Exception):
    """Base class of every error this package raises on purpose."""


class DatasetError(CropWeedSegError):
    """A dataset folder or one of its files is missing, unreadable or inconsistent."""


class ModelContractError(CropWeedSegError):
    """A model folder is missing a file, or ``model.yaml`` disagrees with the ONNX graph."""


class BackendError(CropWeedSegError):
    """No inference backend could be loaded, or a backend failed on a frame."""


class InvalidFrameError(CropWeedSegError):
    """One input frame cannot be processed (wrong shape, dtype, non-finite model output)."""


class ConfigError(CropWeedSegError):
    """A command-line option or configuration value is out of its valid range."""


class BagError(CropWeedSegError):
    """A rosbag2 is missing, unreadable or holds something that cannot be used; the message
    names the bag and the reason."""
