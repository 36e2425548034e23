"""The Python API: :class:`SemanticIndex` and whole-index operations.

Names load on first use (PEP 562): a front end importing :mod:`.request` or :mod:`.hits`
does not pay for the index, the store and numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .dryrun import DryRun, dry_run
    from .hits import ChunkContext, DocumentView, Hit, IndexInfo, Passage
    from .index import SemanticIndex
    from .operations import (
        SourceStatus,
        default_index_dir,
        ensure_sample_index,
        index_info,
        index_paths,
        list_sources,
        optimize_index,
        refresh_index,
        remove_documents,
        sample_index_dir,
    )
    from .progressive import pending_upgrade, upgrade_index

_WHERE = {
    **dict.fromkeys(("DryRun", "dry_run"), ".dryrun"),
    **dict.fromkeys(("ChunkContext", "DocumentView", "Hit", "IndexInfo", "Passage"), ".hits"),
    "SemanticIndex": ".index",
    **dict.fromkeys(("pending_upgrade", "upgrade_index"), ".progressive"),
    **dict.fromkeys(
        (
            "SourceStatus", "default_index_dir", "ensure_sample_index", "index_info",
            "index_paths", "list_sources", "optimize_index", "refresh_index", "remove_documents",
            "sample_index_dir",
        ),
        ".operations",
    ),
}  # fmt: skip

__all__ = [
    "ChunkContext",
    "DocumentView",
    "DryRun",
    "Hit",
    "IndexInfo",
    "Passage",
    "SemanticIndex",
    "SourceStatus",
    "default_index_dir",
    "dry_run",
    "ensure_sample_index",
    "index_info",
    "index_paths",
    "list_sources",
    "optimize_index",
    "pending_upgrade",
    "refresh_index",
    "remove_documents",
    "sample_index_dir",
    "upgrade_index",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
