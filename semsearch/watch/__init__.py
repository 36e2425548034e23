"""Keeping an index fresh: the cheap delta check and refresh of its remembered roots, and a
file watcher that applies each debounced batch of changes as one generation."""

from .delta import Delta, Refresh, check, refresh
from .watcher import BatchReport, Watcher

__all__ = ["BatchReport", "Delta", "Refresh", "Watcher", "check", "refresh"]
