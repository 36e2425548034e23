"""Vector indexes: one interface, an exact NumPy backend and faiss (exact or approximate)."""

from .base import BACKENDS, SearchResult, VectorIndex, top_k
from .factory import (
    INDEX_TYPES,
    build_vector_index,
    faiss_available,
    index_class,
    resolve_backend,
    resolve_index_type,
)
from .faiss_index import FaissIndex
from .numpy_index import NumpyIndex

__all__ = [
    "BACKENDS",
    "INDEX_TYPES",
    "FaissIndex",
    "NumpyIndex",
    "SearchResult",
    "VectorIndex",
    "build_vector_index",
    "faiss_available",
    "index_class",
    "resolve_backend",
    "resolve_index_type",
    "top_k",
]
