"""What the API returns: typed, frozen records, never tuples or dicts."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..store.chunkstore import ChunkRecord


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk, its score and where it sits in its source.

    ``score`` is the ranking score of the query's mode; ``dense_score`` (cosine similarity)
    and ``keyword_score`` (BM25) are its parts where they were computed (None otherwise).
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


def to_hit(
    r: ChunkRecord,
    score: float,
    dense: float | None,
    keyword: float | None,
    more: Sequence[ChunkRecord] = (),
) -> Hit:
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
        dense_score=_finite(dense),
        keyword_score=_finite(keyword),
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
    """Whether the file a chunk came from still is what was indexed (one ``stat``)."""
    if r.doc_stat is None:
        return None
    try:
        st = os.stat(r.source)
    except OSError:
        return "deleted"
    if (st.st_size, st.st_mtime_ns, st.st_ino) != tuple(r.doc_stat):
        return "changed"
    return None


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
