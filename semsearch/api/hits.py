"""What the API returns: typed, frozen records, never tuples or dicts."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..store.chunkstore import ChunkRecord
from ..util import file_digest


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk, its score and where it sits in its source.

    ``score`` is the ranking score of the query's mode, rebuilt from its parts thus:
    dense: ``score = dense_score`` (the cosine similarity); keyword: ``score =
    keyword_score`` (``bm25`` as a 0-1 fraction of a full match at document and chunk
    level); hybrid: ``score = 0.35 * dense_score + 0.65 * keyword_score``, where
    ``dense_score`` is the 0-1 rise of the cosine above the query's background and
    ``keyword_score`` is ``bm25`` over a full document match, capped at 1. ``cosine``
    (with the query as typed) and ``bm25`` (the raw keyword evidence) are the raw
    measures. A part not computed is None.
    ``page`` (PDF), ``section`` (heading path) and ``title`` locate it in structured files.
    ``stale`` is ``"changed"`` or ``"deleted"`` when the source file differs from what was
    indexed, so a caller never mistakes an old passage for the file's current text.
    """

    score: float
    text: str
    source: str
    doc_id: str
    chunk_id: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = None
    section: str = ""
    title: str = ""
    metadata: Mapping[str, Any] | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    cosine: float | None = None
    bm25: float | None = None
    stale: str | None = None
    #: The reader that made the document (text, code, markdown, html, pdf, record, ...).
    kind: str = "text"
    #: Grouped by file: the document's next best chunks, best first (with their lines).
    more: tuple[Passage, ...] = ()


@dataclass(frozen=True, slots=True)
class Passage:
    """A stored chunk read back (by id or as context around a hit), without a score."""

    chunk_id: int
    doc_id: str
    source: str
    title: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    section: str
    text: str


@dataclass(frozen=True)
class ChunkContext:
    """A chunk with up to ``context`` neighbouring chunks of its document on each side."""

    chunk: Passage
    before: tuple[Passage, ...]
    after: tuple[Passage, ...]


@dataclass(frozen=True)
class DocumentView:
    """A whole indexed document, its text rebuilt from the index (never read from disk)."""

    doc_id: str
    source: str
    title: str
    kind: str
    text: str
    chunks: int
    metadata: Mapping[str, Any] | None


@dataclass(frozen=True)
class IndexInfo:
    path: str | None
    generation: str
    documents: int
    chunks: int
    model: str
    precision: str
    dim: int
    backend: str
    index_type: str
    chunk_tokens: int
    overlap: int
    size_bytes: int
    recall_at_10: float | None
    roots: tuple[str, ...]


class Parts(NamedTuple):
    """What a hit's score is made of (see :class:`Hit`)."""

    cosine: float | None
    bm25: float | None
    dense: float | None
    keyword: float | None


def to_hit(r: ChunkRecord, score: float, parts: Parts, more: Sequence[ChunkRecord] = ()) -> Hit:
    return Hit(
        score=score,
        text=r.text,
        source=r.source,
        doc_id=r.doc_id,
        chunk_id=r.chunk_id,
        start=r.start,
        end=r.end,
        line_start=r.line_start,
        line_end=r.line_end,
        page=r.page,
        section=r.section,
        title=r.title,
        metadata=r.metadata,
        dense_score=_finite(parts.dense),
        keyword_score=_finite(parts.keyword),
        cosine=_finite(parts.cosine),
        bm25=_finite(parts.bm25),
        stale=staleness(r),
        kind=r.kind,
        more=tuple(to_passage(m) for m in more),
    )


def to_passage(r: ChunkRecord) -> Passage:
    return Passage(
        r.chunk_id, r.doc_id, r.source, r.title, r.ordinal, r.start, r.end, r.line_start,
        r.line_end, r.page, r.section, r.text,
    )  # fmt: skip


def staleness(r: ChunkRecord) -> str | None:
    """Whether the file a chunk came from still is what was indexed (see file_state)."""
    return None if r.doc_stat is None else file_state(r.source, r.doc_stat, r.sha256)


def file_state(source: str, indexed: tuple[int, int, int], sha256: str | None) -> str | None:
    """None when the file still is what was indexed, else "changed" or "deleted": one
    ``stat``, and when only its time or inode moved (a touch, a copy, a reinstall), its
    digest."""
    try:
        st = os.stat(source)
    except OSError:
        return "deleted"
    if (st.st_size, st.st_mtime_ns, st.st_ino) == tuple(indexed):
        return None
    if st.st_size != indexed[0] or sha256 is None:
        return "changed"
    try:
        same = file_digest(Path(source)) == sha256
    except OSError:
        return "deleted"
    return None if same else "changed"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
