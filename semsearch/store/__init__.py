"""The on-disk index: generations, manifests, the chunk store, vectors and the embedding cache."""

from .chunkstore import ChunkStore
from .embedding_cache import EmbeddingCache, encode_cached
from .layout import IndexDir
from .manifest import CHUNKS, FAISS, MANIFEST, VECTORS, Manifest, check_files
from .npy import VectorWriter, load_vectors
from .records import ChunkRecord, ChunkRow, StoredDocument

__all__ = [
    "CHUNKS",
    "FAISS",
    "MANIFEST",
    "VECTORS",
    "ChunkRecord",
    "ChunkRow",
    "ChunkStore",
    "EmbeddingCache",
    "IndexDir",
    "Manifest",
    "StoredDocument",
    "VectorWriter",
    "check_files",
    "encode_cached",
    "load_vectors",
]
