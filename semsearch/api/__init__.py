"""The Python API: :class:`SemanticIndex` and whole-index operations.

Names load on first use (PEP 562): a front end importing :mod:`.request` or :mod:`.hits`
does not pay for the index, the store and numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .background import Worker, start_phase_two, stop_phase_two
    from .directory import (
        check_index,
        default_index_dir,
        index_exists,
        indexed_roots,
        live_stamp,
        sample_index_dir,
        start_loading_model,
        verify_files,
    )
    from .dryrun import DryRun, dry_run
    from .hits import ChunkContext, DocumentView, Hit, IndexInfo, Passage
    from .index import SemanticIndex
    from .operations import (
        SourceStatus,
        ensure_sample_index,
        index_info,
        index_paths,
        list_sources,
        optimize_index,
        parse_size,
        refresh_index,
        remove_documents,
    )
    from .progressive import pending_upgrade, run_phase_two, upgrade_index
    from .watching import BatchReport, Watcher

_WHERE = {
    **dict.fromkeys(
        (
            "check_index", "default_index_dir", "index_exists", "indexed_roots", "live_stamp",
            "sample_index_dir", "start_loading_model", "verify_files",
        ),
        ".directory",
    ),
    **dict.fromkeys(("DryRun", "dry_run"), ".dryrun"),
    **dict.fromkeys(("ChunkContext", "DocumentView", "Hit", "IndexInfo", "Passage"), ".hits"),
    "SemanticIndex": ".index",
    **dict.fromkeys(("Worker", "start_phase_two", "stop_phase_two"), ".background"),
    **dict.fromkeys(("pending_upgrade", "run_phase_two", "upgrade_index"), ".progressive"),
    **dict.fromkeys(
        (
            "SourceStatus", "ensure_sample_index", "index_info", "index_paths", "list_sources",
            "optimize_index", "parse_size", "refresh_index", "remove_documents",
        ),
        ".operations",
    ),
    **dict.fromkeys(("BatchReport", "Watcher"), ".watching"),
}  # fmt: skip

__all__ = [
    "BatchReport",
    "ChunkContext",
    "DocumentView",
    "DryRun",
    "Hit",
    "IndexInfo",
    "Passage",
    "SemanticIndex",
    "SourceStatus",
    "Watcher",
    "Worker",
    "check_index",
    "default_index_dir",
    "dry_run",
    "ensure_sample_index",
    "index_exists",
    "index_info",
    "index_paths",
    "indexed_roots",
    "list_sources",
    "live_stamp",
    "optimize_index",
    "parse_size",
    "pending_upgrade",
    "refresh_index",
    "remove_documents",
    "run_phase_two",
    "sample_index_dir",
    "start_loading_model",
    "start_phase_two",
    "stop_phase_two",
    "upgrade_index",
    "verify_files",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
