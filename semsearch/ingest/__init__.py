"""Turning files and texts into documents and chunks."""

from .chunk import DEFAULT_CHUNK_TOKENS, Chunk, chunk_text, iter_chunks, sentence_spans
from .discover import discover
from .document import Document, Section, content_hash, documents_from_texts
from .read import read_document

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "Chunk",
    "Document",
    "Section",
    "chunk_text",
    "content_hash",
    "discover",
    "documents_from_texts",
    "iter_chunks",
    "read_document",
    "sentence_spans",
]
