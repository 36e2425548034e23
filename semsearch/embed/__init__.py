"""Embedders: the interface, the ONNX Runtime fast path, the sentence-transformers reference."""

from .base import DEFAULT_PRECISION, PRECISIONS, Embedder, Kind, normalize
from .load import load_embedder
from .models import DEFAULT_MODEL, STATIC_MODEL, resolve_model
from .sbert import SentenceTransformerEmbedder

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "STATIC_MODEL",
    "Embedder",
    "Kind",
    "SentenceTransformerEmbedder",
    "load_embedder",
    "normalize",
    "resolve_model",
]
