"""Engines turn documents into chunks and vectors; the builder writes what they yield.

``LocalEngine`` does it in this process in fixed-size batches. Another engine (Ray)
implements the same one method, so the on-disk result cannot tell them apart.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed import Embedder
from ..ingest.chunk import iter_chunks
from ..ingest.document import Document
from ..ingest.read import read_or_reason
from ..store.inverted import Analysed
from ..store.records import ChunkRow
from .settings import ChunkParams, Item

#: Chunks embedded per batch; bounds memory and gives the progress bar its steps.
EMBED_BATCH = 256

#: Encodes document texts, returning the vectors and how many came from a cache.
Embed = Callable[[Sequence[str]], tuple[np.ndarray, int]]


@dataclass
class Processed:
    """A document's chunks and their vectors, or a piece of them: a long document arrives in
    several pieces, all but the last with ``more`` set. ``doc.text`` is dropped (memory)."""

    doc: Document
    rows: list[ChunkRow]
    vectors: np.ndarray
    more: bool = False
    #: The rows' keyword terms, when the engine analysed them (else the store does).
    terms: Analysed | None = None


@dataclass
class EngineCounts:
    embedded: int = 0
    cache_hits: int = 0
    skipped: list[str] = field(default_factory=list)
    #: Why each skipped file was skipped, where the engine knows (remembered by the index).
    reasons: dict[str, str] = field(default_factory=dict)


class Engine(ABC):
    """Chunks and embeds documents; yields results in input order (None = skipped file)."""

    counts: EngineCounts
    #: The most tokens the model reads per text (None: unknown); longer chunks are refused.
    max_tokens: int | None = None

    @abstractmethod
    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        """Yield the pieces of each item, in order (one None for an item skipped)."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Document vectors for chunk texts (to re-derive vectors that were damaged)."""


class LocalEngine(Engine):
    """In-process: read, chunk and embed in batches of about ``EMBED_BATCH`` chunks; a
    document longer than a batch is streamed through in pieces."""

    def __init__(self, embedder: Embedder, embed: Embed | None = None) -> None:
        self.embedder = embedder
        self.max_tokens = embedder.max_tokens
        self.embed: Embed = embed or (lambda texts: (embedder.encode(texts), 0))
        self.counts = EngineCounts()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors, hits = self.embed(list(texts))
        self.counts.embedded += len(texts) - hits
        self.counts.cache_hits += hits
        return vectors

    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        pending: list[tuple[Document, list[ChunkRow], bool] | None] = []
        waiting = 0
        for item in items:
            doc = read_or_reason(Path(item)) if isinstance(item, (str, os.PathLike)) else item
            if isinstance(doc, str):
                self.counts.skipped.append(str(item))
                self.counts.reasons[str(item)] = doc
                pending.append(None)
                continue
            rows: list[ChunkRow] = []
            for row in iter_chunk_rows(doc, self.embedder, params):
                rows.append(row)
                waiting += 1
                if waiting >= EMBED_BATCH:
                    pending.append((doc, rows, True))
                    yield from self._embed(pending)
                    pending, rows, waiting = [], [], 0
            pending.append((doc, rows, False))
        yield from self._embed(pending)

    def _embed(
        self, pending: list[tuple[Document, list[ChunkRow], bool] | None]
    ) -> Iterator[Processed | None]:
        texts = [r.text for p in pending if p is not None for r in p[1]]
        vectors = np.zeros((0, self.embedder.dim), dtype=np.float32)
        if texts:
            vectors = self.encode(texts)
        pos = 0
        for p in pending:
            if p is None:
                yield None
                continue
            doc, rows, more = p
            yield Processed(_without_text(doc), rows, vectors[pos : pos + len(rows)], more)
            pos += len(rows)


def chunk_rows(doc: Document, embedder: Embedder, params: ChunkParams) -> list[ChunkRow]:
    """Chunk a document into store rows; row and chunk id left at -1."""
    return list(iter_chunk_rows(doc, embedder, params))


def iter_chunk_rows(doc: Document, embedder: Embedder, params: ChunkParams) -> Iterator[ChunkRow]:
    """Chunk rows with line numbers, page and section, lazily."""
    chunks = iter_chunks(
        doc.text,
        doc_id=doc.doc_id,
        source=doc.source,
        token_spans=embedder.token_spans,
        token_counts=embedder.token_counts,
        max_tokens=params.chunk_tokens,
        overlap=params.overlap,
        sections=doc.sections,
        kind=doc.kind,
        counts_add_up=embedder.counts_add_up,
    )
    lines = _LineCounter(doc.text)
    starts = [s.start for s in doc.sections]
    for c in chunks:
        at = bisect.bisect_right(starts, c.start) - 1
        page, heading = (doc.sections[at].page, doc.sections[at].heading) if at >= 0 else (None, "")
        first, last = lines.line_at(c.start), lines.line_at(max(c.end - 1, c.start))
        yield ChunkRow(-1, -1, c.ordinal, c.start, c.end, first, last, page, heading, c.text)


def _without_text(doc: Document) -> Document:
    return dataclasses.replace(doc, text="")


class _LineCounter:
    """1-based line of a character offset, counted incrementally from the last one asked
    (chunks come in order), so no table of every newline is held for a huge text."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def line_at(self, offset: int) -> int:
        if offset >= self.pos:
            self.line += self.text.count("\n", self.pos, offset)
        else:
            self.line -= self.text.count("\n", offset, self.pos)
        self.pos = offset
        return self.line
