"""Embedders: the interface, the ONNX Runtime fast path, the sentence-transformers reference."""

from .base import DEFAULT_PRECISION, PRECISIONS, Embedder, Kind, normalize
from .load import check_recorded_model, load_embedder, load_recorded
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
    "check_recorded_model",
    "load_embedder",
    "load_recorded",
    "normalize",
    "resolve_model",
]
