"""The Python API: :class:`SemanticIndex` and whole-index operations."""

from .hits import ChunkContext, DocumentView, Hit, IndexInfo, Passage
from .index import SemanticIndex
from .operations import (
    SourceStatus,
    default_index_dir,
    ensure_sample_index,
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
    "Hit",
    "IndexInfo",
    "Passage",
    "SemanticIndex",
    "SourceStatus",
    "default_index_dir",
    "ensure_sample_index",
    "index_paths",
    "list_sources",
    "optimize_index",
    "refresh_index",
    "remove_documents",
    "sample_index_dir",
]
