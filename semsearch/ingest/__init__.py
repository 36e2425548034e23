"""Turning files and texts into documents and chunks.

Names load on first use (PEP 562): a search needs :mod:`.chunk`'s sentence spans, not the
file readers that :mod:`.discover` and :mod:`.read` bring in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .chunk import DEFAULT_CHUNK_TOKENS, Chunk, chunk_text, iter_chunks, sentence_spans
    from .discover import discover
    from .document import Document, Section, content_hash, documents_from_texts
    from .read import read_document

_WHERE = {
    **dict.fromkeys(
        ("DEFAULT_CHUNK_TOKENS", "Chunk", "chunk_text", "iter_chunks", "sentence_spans"),
        ".chunk",
    ),
    "discover": ".discover",
    **dict.fromkeys(("Document", "Section", "content_hash", "documents_from_texts"), ".document"),
    "read_document": ".read",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
