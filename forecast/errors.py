"""Typed errors raised by the library. The library never prints or exits; the CLI turns
these into one-line messages and exit codes."""

from __future__ import annotations


class ForecastError(Exception):
    """Base class of every error the library raises on purpose."""


class DataError(ForecastError, ValueError):
    """Input data is malformed: the message says what, where and how to fix it."""


class ConfigError(ForecastError, ValueError):
    """An option or parameter has a value the library cannot use."""


class NotFittedError(ForecastError, AttributeError):
    """A model was asked to predict (or export) before `fit` was called."""


class ModelFileError(ForecastError):
    """A model file is missing, truncated, tampered with or from an incompatible version."""


class NumericalError(ForecastError, FloatingPointError):
    """Training produced a NaN or infinite loss or gradient."""


class DataWarning(UserWarning):
    """Input data is usable but suspicious (for example a constant series); the message
    says what was found and what the library did about it."""


class BatchError(ForecastError):
    """A batch run cannot start or go on (its output folder, run id or lock)."""


class LockHeldError(BatchError):
    """Another live process holds the lock of a batch output folder."""


class OutputError(ForecastError):
    """An output file cannot be written (missing folder, no permission, disk full)."""


class MissingExtraError(ForecastError, ImportError):
    """An optional feature needs a package that is not installed; the message names the
    extra to install (e.g. ``pip install 'forecast[parquet]'``)."""
