"""One exception family, so the CLI can turn any failure into one line and an exit code."""

from __future__ import annotations


class SemsearchError(Exception):
    """Base of every error semsearch raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(SemsearchError):
    """The caller asked for something invalid (bad path, k <= 0, empty query)."""

    exit_code = 2


class ModelError(SemsearchError):
    """The embedding model could not be found or loaded."""


class IndexFormatError(SemsearchError):
    """An index on disk is missing, damaged, or does not match what was asked for."""


class IndexWriteError(SemsearchError):
    """A new generation could not be written (disk full, permissions); the index is as before."""


class IndexLockedError(SemsearchError):
    """Another process is writing the same index."""


class ServiceUnavailable(SemsearchError):
    """Part of a server cannot answer now (a shard group lost every replica): HTTP 503."""


class MissingDependencyError(SemsearchError):
    """An optional backend was asked for but is not installed."""

    def __init__(self, what: str, extra: str | None = None, *, package: str | None = None) -> None:
        target = package or f"'semsearch[{extra}]'"
        super().__init__(f"{what} is not installed: pip install {target}")
