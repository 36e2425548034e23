"""The Python API: :class:`SemanticIndex` and whole-index operations."""

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
    "refresh_index",
    "remove_documents",
    "sample_index_dir",
]
