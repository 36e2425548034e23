"""Reading around a hit: a whole document, or a chunk with its neighbours.

Everything comes from the index's own chunk store, never from the file system, so no
parameter can make a server read a file outside the index. ``SemanticIndex.document`` and
``SemanticIndex.chunk`` are used when the installed API has them; otherwise the same answer
is read here from the live generation's chunk table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any

from ..errors import UsageError


class NotFound(UsageError):
    """No document or chunk with the asked id (HTTP 404)."""


def read_document(index: Any, doc_id: str) -> dict[str, Any]:
    """The whole text of a document (its chunks joined at their character spans) and its
    metadata and chunk ids."""
    if hasattr(index, "document"):
        return _plain(index.document(doc_id))
    conn = _conn(index)
    doc = conn.execute(
        "SELECT doc_id, source, meta FROM documents WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    if doc is None:
        raise NotFound(f"no document with id {doc_id!r} in the index")
    rows = conn.execute(
        'SELECT chunk_id, start, "end", line_start, line_end, text FROM chunks'
        " WHERE doc_id = ? ORDER BY ordinal",
        (doc_id,),
    ).fetchall()
    return {
        "doc_id": doc[0],
        "source": doc[1],
        "metadata": json.loads(doc[2]) if doc[2] else None,
        "text": _join(rows),
        "chunk_ids": [r[0] for r in rows],
    }


def read_chunk(index: Any, chunk_id: int, context: int) -> dict[str, Any]:
    """A chunk and up to ``context`` chunks of the same document on each side, in order."""
    if hasattr(index, "chunk"):
        return _plain(index.chunk(chunk_id, context=context))
    conn = _conn(index)
    hit = conn.execute(
        "SELECT c.doc_id, c.ordinal, d.source, d.meta FROM chunks c JOIN documents d"
        " USING (doc_id) WHERE c.chunk_id = ?",
        (chunk_id,),
    ).fetchone()
    if hit is None:
        raise NotFound(f"no chunk with id {chunk_id} in the index")
    doc_id, ordinal, source, meta = hit
    rows = conn.execute(
        'SELECT chunk_id, ordinal, start, "end", line_start, line_end, text FROM chunks'
        " WHERE doc_id = ? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
        (doc_id, ordinal - context, ordinal + context),
    ).fetchall()
    return {
        "doc_id": doc_id,
        "source": source,
        "metadata": json.loads(meta) if meta else None,
        "chunk_id": chunk_id,
        "chunks": [
            {
                "chunk_id": r[0],
                "ordinal": r[1],
                "start": r[2],
                "end": r[3],
                "line_start": r[4],
                "line_end": r[5],
                "text": r[6],
                "is_hit": r[0] == chunk_id,
            }
            for r in rows
        ],
    }


def _conn(index: Any) -> Any:
    view = getattr(index, "_view", None)
    if view is None:
        raise UsageError("the index is empty")
    return view.store.conn


def _join(rows: list[tuple[Any, ...]]) -> str:
    """Chunks back into one text: overlaps are taken once, gaps (the whitespace between
    sentences, not stored) become a space or, across lines, a line break."""
    out: list[str] = []
    pos = 0
    prev_line = None
    for _, start, end, line_start, _line_end, text in rows:
        if out and start > pos:
            out.append("\n" if prev_line is not None and line_start > prev_line else " ")
        skip = max(0, pos - start) if out else 0
        out.append(text[skip:])
        pos = max(pos, end)
        prev_line = _line_end
    return "".join(out)


def _plain(value: Any) -> dict[str, Any]:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    return dict(value)
