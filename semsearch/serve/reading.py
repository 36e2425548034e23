"""Reading around a hit: a document by character range, or a chunk with its neighbours, as
JSON-ready dicts of at most ``max_chars`` characters of text, with a ``next`` cursor (the
arguments of the following read) when there is more.

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


def read_document(index: SemanticIndex, doc_id: str, offset: int, max_chars: int) -> dict[str, Any]:
    """Characters ``offset`` to ``offset + max_chars`` of a document, with its metadata,
    title, number of chunks and length."""
    try:
        doc = index.document(doc_id)
    except UsageError as exc:
        raise _not_found(exc) from None
    total = len(doc.text)
    if offset > total or (offset == total and total):
        raise UsageError(f"'offset' {offset} is past the end of the document ({total} characters)")
    text = doc.text[offset : offset + max_chars]
    end = offset + len(text)
    return {
        **asdict(doc),
        "text": text,
        "offset": offset,
        "total_chars": total,
        "next": {"doc_id": doc.doc_id, "offset": end} if end < total else None,
    }


def read_chunk(index: SemanticIndex, chunk_id: int, context: int, max_chars: int) -> dict[str, Any]:
    """A chunk and up to ``context`` chunks of the same document on each side, in order; the
    asked one is marked ``is_hit``. Over ``max_chars``, the farthest neighbours go first (the
    hit itself is cut if it alone is longer); ``next`` then continues the document after the
    last character returned."""
    try:
        ctx = index.chunk(chunk_id, context=context)
    except UsageError as exc:
        raise _not_found(exc) from None
    before, after = list(ctx.before), list(ctx.after)
    size = sum(len(p.text) for p in (*before, ctx.chunk, *after))
    trimmed = False
    while size > max_chars and (before or after):
        far = before.pop(0) if len(before) > len(after) else after.pop()
        size -= len(far.text)
        trimmed = True
    hit = {**asdict(ctx.chunk), "is_hit": True}
    if len(ctx.chunk.text) > max_chars:
        hit["text"] = ctx.chunk.text[:max_chars]
        hit["end"] = ctx.chunk.start + max_chars
        trimmed = True
    passages = [
        *({**asdict(p), "is_hit": False} for p in before),
        hit,
        *({**asdict(p), "is_hit": False} for p in after),
    ]
    last_end = passages[-1]["end"]
    return {
        "doc_id": ctx.chunk.doc_id,
        "source": ctx.chunk.source,
        "title": ctx.chunk.title,
        "chunk_id": chunk_id,
        "chunks": passages,
        "next": {"doc_id": ctx.chunk.doc_id, "offset": last_end} if trimmed else None,
    }


def _not_found(exc: UsageError) -> UsageError:
    """The API says "no document ..." / "no chunk ..." for an unknown id: that is a 404."""
    message = str(exc)
    if message.startswith(("no document", "no chunk")):
        return NotFound(message)
    return exc
