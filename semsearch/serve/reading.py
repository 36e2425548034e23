"""Reading around a hit: a whole document, or a chunk with its neighbours, as JSON-ready dicts.

Everything comes from the index itself (``SemanticIndex.document`` / ``.chunk`` rebuild text
from the chunk store), never from the file system, so no parameter can make a server read a
file outside the index.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..api import SemanticIndex
from ..errors import UsageError


class NotFound(UsageError):
    """No document or chunk with the asked id (HTTP 404)."""


def read_document(index: SemanticIndex, doc_id: str) -> dict[str, Any]:
    """The whole text of a document, its metadata, title and number of chunks."""
    try:
        return asdict(index.document(doc_id))
    except UsageError as exc:
        raise _not_found(exc) from None


def read_chunk(index: SemanticIndex, chunk_id: int, context: int) -> dict[str, Any]:
    """A chunk and up to ``context`` chunks of the same document on each side, in order; the
    asked one is marked ``is_hit``."""
    try:
        ctx = index.chunk(chunk_id, context=context)
    except UsageError as exc:
        raise _not_found(exc) from None
    passages = [*ctx.before, ctx.chunk, *ctx.after]
    return {
        "doc_id": ctx.chunk.doc_id,
        "source": ctx.chunk.source,
        "title": ctx.chunk.title,
        "chunk_id": chunk_id,
        "chunks": [{**asdict(p), "is_hit": p.chunk_id == chunk_id} for p in passages],
    }


def _not_found(exc: UsageError) -> UsageError:
    """The API says "no document ..." / "no chunk ..." for an unknown id: that is a 404."""
    message = str(exc)
    if message.startswith(("no document", "no chunk")):
        return NotFound(message)
    return exc
