"""A generation read as one store: its segments' chunk stores behind global row numbers.

Segment ``i`` owns rows ``offsets[i] .. offsets[i] + rows_i - 1`` of the generation (dead
rows included, so numbers never move while the generation lives). Tombstoned documents are
hidden inside each segment's store (:meth:`ChunkStore.open_readonly`), so every query here
sees live chunks only. Searches fan out to the segments and merge.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError
from ..util import first_line
from .chunkstore import ChunkRecord, ChunkRow, ChunkStore, StoredDocument, where_sql
from .fts import KeywordIndex
from .manifest import CHUNKS, TOMBSTONES, Manifest, SegmentRef, segment_refs

#: Tombstones of one generation: segment name -> deleted document ids.
Tombstones = dict[str, list[str]]


def read_tombstones(gen: Path, m: Manifest) -> Tombstones:
    """The generation's tombstones (none for a version 1 or 2 generation)."""
    if TOMBSTONES not in m.files:
        return {}
    path = gen / TOMBSTONES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexFormatError(f"{path}: cannot be read ({first_line(exc)})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in data.values()
    ):
        raise IndexFormatError(f"{path}: not a mapping of segment to document ids")
    return {str(k): list(v) for k, v in data.items()}


@dataclass(frozen=True)
class Segment:
    """One open segment: where its files are, its first global row, its store."""

    ref: SegmentRef
    path: Path
    offset: int
    store: ChunkStore


class SegmentedStore:
    """The read API of :class:`ChunkStore` over every segment of one generation."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = tuple(segments)
        self.offsets = np.array([s.offset for s in self.segments], dtype=np.int64)
        self.rows = sum(s.ref.rows for s in self.segments)
        self._keyword: SegmentedKeyword | None = None

    @classmethod
    def open(cls, gen: Path, m: Manifest) -> SegmentedStore:
        """Open generation ``gen``'s segments (files already checked by the caller)."""
        dead = read_tombstones(gen, m)
        segments: list[Segment] = []
        offset = 0
        try:
            for ref in segment_refs(gen, m):
                path = gen.parent / ref.name
                store = ChunkStore.open_readonly(path / CHUNKS, dead.get(ref.name, ()))
                segments.append(Segment(ref, path, offset, store))
                offset += ref.rows
        except BaseException:
            for s in segments:
                s.store.close()
            raise
        return cls(segments)

    def close(self) -> None:
        for s in self.segments:
            s.store.close()

    # --- rows ------------------------------------------------------------------------------

    def split(self, rows: Iterable[int]) -> Iterator[tuple[Segment, np.ndarray, np.ndarray]]:
        """``(segment, positions, local rows)`` for the given global rows, per segment."""
        arr = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, np.int64)
        if len(self.segments) == 1:
            yield self.segments[0], np.arange(len(arr)), arr
            return
        which = np.searchsorted(self.offsets, arr, side="right") - 1
        for i, seg in enumerate(self.segments):
            pos = np.flatnonzero(which == i)
            if len(pos):
                yield seg, pos, arr[pos] - seg.offset

    def fetch(self, rows: Iterable[int]) -> dict[int, ChunkRecord]:
        out: dict[int, ChunkRecord] = {}
        for seg, _, local in self.split(rows):
            for r, rec in seg.store.fetch(local.tolist()).items():
                out[r + seg.offset] = rec._replace(row=r + seg.offset)
        return out

    def doc_ids_of(self, rows: np.ndarray) -> list[str]:
        """The document of each chunk row, in the order given."""
        out = [""] * len(rows)
        for seg, pos, local in self.split(rows):
            for p, d in zip(pos.tolist(), seg.store.doc_ids_of(local.tolist()), strict=True):
                out[p] = d
        return out

    def chunk_texts(self, start: int, stop: int) -> list[str]:
        """Texts of the live rows ``start..stop-1`` in row order."""
        out: list[str] = []
        for seg in self.segments:
            lo, hi = max(start - seg.offset, 0), min(stop - seg.offset, seg.ref.rows)
            if lo < hi:
                out += seg.store.chunk_texts(lo, hi)
        return out

    def rows_where(self, where: Mapping[str, Any]) -> np.ndarray:
        parts = [s.store.rows_where(where) + s.offset for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def dead_rows(self) -> np.ndarray:
        parts = [s.store.dead_rows() + s.offset for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # --- documents -------------------------------------------------------------------------

    def holder(self, doc_id: str) -> Segment | None:
        """The segment holding a live document (newest first: a document lives in one)."""
        for seg in reversed(self.segments):
            if seg.store.document(doc_id) is not None:
                return seg
        return None

    def document_ids(self, pattern: str | None = None) -> list[str]:
        return [i for s in self.segments for i in s.store.document_ids(pattern)]

    def documents(self) -> Iterator[StoredDocument]:
        yield from heapq.merge(
            *(s.store.documents() for s in self.segments), key=lambda d: d.doc_id
        )

    def document(self, doc_id: str) -> tuple[StoredDocument, Mapping[str, Any] | None] | None:
        seg = self.holder(doc_id)
        return None if seg is None else seg.store.document(doc_id)

    def document_text(self, doc_id: str) -> str:
        seg = self.holder(doc_id)
        return "" if seg is None else seg.store.document_text(doc_id)

    def document_rows(self, doc_id: str) -> list[ChunkRow]:
        """A document's chunks with their segment-local rows."""
        seg = self.holder(doc_id)
        return [] if seg is None else seg.store.document_rows(doc_id)

    def document_records(
        self, doc_id: str, first: int = 0, last: int | None = None
    ) -> list[ChunkRecord]:
        seg = self.holder(doc_id)
        if seg is None:
            return []
        recs = seg.store.document_records(doc_id, first, last)
        return [r._replace(row=r.row + seg.offset) for r in recs]

    def chunk_by_id(self, chunk_id: int) -> ChunkRecord | None:
        for seg in reversed(self.segments):
            rec = seg.store.chunk_by_id(chunk_id)
            if rec is not None:
                return rec._replace(row=rec.row + seg.offset)
        return None

    def count_documents(self) -> int:
        return sum(s.store.count_documents() for s in self.segments)

    def count_chunks(self) -> int:
        return sum(s.store.count_chunks() for s in self.segments)

    def keyword_index(self) -> SegmentedKeyword:
        if self._keyword is None:
            self._keyword = SegmentedKeyword(self)
        return self._keyword


class SegmentedKeyword:
    """BM25 over every segment: each segment ranks its own chunks, results merge by score."""

    def __init__(self, store: SegmentedStore) -> None:
        self.parts = [(s, s.store.keyword_index()) for s in store.segments]
        self.legacy = any(kw.legacy for _, kw in self.parts)
        self.current = all(kw.current for _, kw in self.parts)
        self.n_docs = sum(kw.n_docs for _, kw in self.parts)
        self._store = store

    def query_terms(self, text: str) -> list[str]:
        return self.parts[0][1].query_terms(text)

    def chunks(
        self,
        query_terms: Sequence[str],
        k: int,
        clauses: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rows, scores, docs = [], [], []
        for seg, kw in self.parts:
            r, s, d = kw.chunks(query_terms, k, clauses, args)
            rows.append(r + seg.offset)
            scores.append(s)
            docs += d
        if len(self.parts) == 1:
            return rows[0], scores[0], docs
        all_rows, all_scores = np.concatenate(rows), np.concatenate(scores)
        pos = np.lexsort((all_rows, -all_scores))[:k]
        return all_rows[pos], all_scores[pos], [docs[i] for i in pos.tolist()]

    def chunk_scores(self, query_terms: Sequence[str], rows: Sequence[int]) -> dict[int, float]:
        out: dict[int, float] = {}
        for seg, _, local in self._store.split(np.asarray(rows, np.int64)):
            kw = seg.store.keyword_index()
            for r, s in kw.chunk_scores(query_terms, local.tolist()).items():
                out[r + seg.offset] = s
        return out

    def documents(self, query_terms: Sequence[str], doc_ids: Sequence[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        for _, kw in self.parts:
            out.update(kw.documents(query_terms, doc_ids))
        return out

    def top_documents(
        self,
        query_terms: Sequence[str],
        k: int,
        clauses: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> dict[str, float]:
        found: dict[str, float] = {}
        for _, kw in self.parts:
            found.update(kw.top_documents(query_terms, k, clauses, args))
        best = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return dict(best)

    def document_frequencies(self, query_terms: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        terms = list(query_terms)
        for _, kw in self.parts:
            for t, n in kw.document_frequencies(terms).items():
                out[t] = out.get(t, 0) + n
        return out

    def full_match(self, query_terms: Sequence[str]) -> float:
        if len(self.parts) == 1:
            return self.parts[0][1].full_match(query_terms)
        df = self.document_frequencies(query_terms)
        n = self.n_docs
        return sum(
            max(math.log((n - df[t] + 0.5) / (df[t] + 0.5)), 1e-6) for t in query_terms if t in df
        )

    def near(self, first: str, lo: int, hi: int) -> list[tuple[str, int]]:
        out: dict[str, int] = {}
        for _, kw in self.parts:
            for t, n in kw.near(first, lo, hi):
                out[t] = out.get(t, 0) + n
        return sorted(out.items())


__all__ = ["KeywordIndex", "Segment", "SegmentedKeyword", "SegmentedStore", "where_sql"]
