"""Engines turn documents into chunks and vectors; the builder writes what they yield.

``LocalEngine`` does it in this process in fixed-size batches. Another engine (Ray)
implements the same one method, so the on-disk result cannot tell them apart.
"""

from __future__ import annotations

import bisect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunk import chunk_text
from .embed import Embedder
from .sources import Document, read_document

#: Chunks embedded per batch; bounds memory and gives the progress bar its steps.
EMBED_BATCH = 256

#: A chunk as stored: (row, chunk_id, ordinal, start, end, line_start, line_end, text).
#: Engines leave ``row`` and ``chunk_id`` at -1; the builder assigns them.
Row = tuple[int, int, int, int, int, int, int, str]
Item = Path | Document
#: Encodes document texts, returning the vectors and how many came from a cache.
Embed = Callable[[Sequence[str]], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class ChunkParams:
    chunk_tokens: int
    overlap: int


@dataclass
class Processed:
    """One document, chunked and embedded. ``doc.text`` may be dropped to save memory."""

    doc: Document
    rows: list[Row]
    vectors: np.ndarray


@dataclass
class EngineCounts:
    embedded: int = 0
    cache_hits: int = 0
    skipped: list[str] = field(default_factory=list)


class Engine(ABC):
    """Chunks and embeds documents; yields results in input order (None = skipped file)."""

    counts: EngineCounts

    @abstractmethod
    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        """Yield one result per item, in order."""


class LocalEngine(Engine):
    """In-process: read, chunk and embed in batches of about ``EMBED_BATCH`` chunks."""

    def __init__(self, embedder: Embedder, embed: Embed | None = None) -> None:
        self.embedder = embedder
        self.embed: Embed = embed or (lambda texts: (embedder.encode(texts), 0))
        self.counts = EngineCounts()

    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        pending: list[tuple[Document, list[Row]] | None] = []
        waiting = 0
        for item in items:
            doc = read_document(item) if isinstance(item, (str, os.PathLike)) else item
            if doc is None:
                self.counts.skipped.append(str(item))
                pending.append(None)
                continue
            rows = chunk_rows(doc, self.embedder, params)
            pending.append((doc, rows))
            waiting += len(rows)
            if waiting >= EMBED_BATCH:
                yield from self._embed(pending)
                pending, waiting = [], 0
        yield from self._embed(pending)

    def _embed(
        self, pending: list[tuple[Document, list[Row]] | None]
    ) -> Iterator[Processed | None]:
        texts = [r[7] for p in pending if p is not None for r in p[1]]
        vectors = np.zeros((0, self.embedder.dim), dtype=np.float32)
        if texts:
            vectors, hits = self.embed(texts)
            self.counts.embedded += len(texts) - hits
            self.counts.cache_hits += hits
        pos = 0
        for p in pending:
            if p is None:
                yield None
                continue
            doc, rows = p
            yield Processed(_without_text(doc), rows, vectors[pos : pos + len(rows)])
            pos += len(rows)


def chunk_rows(doc: Document, embedder: Embedder, params: ChunkParams) -> list[Row]:
    """Chunk a document into store rows with line numbers; row and chunk id left at -1."""
    chunks = chunk_text(
        doc.text,
        doc_id=doc.doc_id,
        source=doc.source,
        token_spans=embedder.token_spans,
        max_tokens=params.chunk_tokens,
        overlap=params.overlap,
    )
    lines = _LineIndex(doc.text)
    return [
        (-1, -1, c.ordinal, c.start, c.end, *lines.span(c.start, c.end), c.text) for c in chunks
    ]


def _without_text(doc: Document) -> Document:
    return Document(doc.doc_id, doc.source, "", doc.sha256, doc.meta)


class _LineIndex:
    """Maps character offsets to 1-based line numbers with a binary search."""

    def __init__(self, text: str) -> None:
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def span(self, start: int, end: int) -> tuple[int, int]:
        first = bisect.bisect_left(self.newlines, start) + 1
        last = bisect.bisect_left(self.newlines, max(end - 1, start)) + 1
        return first, last
