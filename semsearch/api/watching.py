"""Keeping an index in sync with its folders while a process runs (``semsearch watch``)."""

from ..watch import BatchReport, Watcher

__all__ = ["BatchReport", "Watcher"]
