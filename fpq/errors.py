"""The errors fpq reports as `fpq: error: ...` (exit 2) instead of a traceback.

Torch-free, so the command line can name them before it imports anything heavy.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class DataError(ValueError):
    """The data file is missing, unreadable, or not CIFAR of the configured kind."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or from a different run."""


class OutputError(OSError):
    """An output folder cannot be written (read-only, full, or not a folder)."""


BAD_INPUT = (ConfigError, DataError, CheckpointError, OutputError)
