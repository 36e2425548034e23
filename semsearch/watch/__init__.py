"""Keeping an index fresh: the cheap delta check and refresh of its remembered roots, and a
file watcher that applies each debounced batch of changes as one generation.

Names load on first use (PEP 562): a search's freshness check needs :mod:`.delta` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .delta import Delta, Refresh, check, refresh
    from .watcher import BatchReport, Watcher

_WHERE = {
    **dict.fromkeys(("Delta", "Refresh", "check", "refresh"), ".delta"),
    **dict.fromkeys(("BatchReport", "Watcher"), ".watcher"),
}

__all__ = ["BatchReport", "Delta", "Refresh", "Watcher", "check", "refresh"]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
