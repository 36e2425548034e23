"""semsearch: offline-first local semantic search.

Only re-exports live here; importing semsearch does not import torch.
"""

from ._version import __version__
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
from .build import BuildStats
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
from .ingest import Chunk, chunk_text

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
