"""semsearch: offline-first local semantic search.

Only re-exports live here, resolved on first use (PEP 562): ``import semsearch`` (and so
every ``semsearch`` command, which imports this package first) loads no NumPy, faiss,
ONNX Runtime or torch until a name that needs them is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .util import lazy_exports

#: Public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    "BuildStats": ".indexing",
    "Chunk": ".ingest",
    "ChunkContext": ".api",
    "DocumentView": ".api",
    "Embedder": ".embed",
    "FaissIndex": ".index",
    "Hit": ".api",
    "IndexFormatError": ".errors",
    "IndexInfo": ".api",
    "IndexLockedError": ".errors",
    "MissingDependencyError": ".errors",
    "ModelError": ".errors",
    "NumpyIndex": ".index",
    "Passage": ".api",
    "SearchResult": ".index",
    "SemanticIndex": ".api",
    "SemsearchError": ".errors",
    "SentenceTransformerEmbedder": ".embed",
    "UsageError": ".errors",
    "VectorIndex": ".index",
    "chunk_text": ".ingest",
    "default_index_dir": ".api",
    "index_paths": ".api",
    "load_embedder": ".embed",
}

__all__ = [
    "BuildStats",
    "Chunk",
    "ChunkContext",
    "DocumentView",
    "Embedder",
    "FaissIndex",
    "Hit",
    "IndexFormatError",
    "IndexInfo",
    "IndexLockedError",
    "MissingDependencyError",
    "ModelError",
    "NumpyIndex",
    "Passage",
    "SearchResult",
    "SemanticIndex",
    "SemsearchError",
    "SentenceTransformerEmbedder",
    "UsageError",
    "VectorIndex",
    "__version__",
    "chunk_text",
    "default_index_dir",
    "index_paths",
    "load_embedder",
]

if TYPE_CHECKING:
    from .api import (
        ChunkContext,
        DocumentView,
        Hit,
        IndexInfo,
        Passage,
        SemanticIndex,
        default_index_dir,
        index_paths,
    )
    from .embed import Embedder, SentenceTransformerEmbedder, load_embedder
    from .errors import (
        IndexFormatError,
        IndexLockedError,
        MissingDependencyError,
        ModelError,
        SemsearchError,
        UsageError,
    )
    from .index import FaissIndex, NumpyIndex, SearchResult, VectorIndex
    from .indexing import BuildStats
    from .ingest import Chunk, chunk_text


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
