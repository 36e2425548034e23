"""One shard replica: some segments of one or more generations, memory-mapped from the
shared index directory, answering the pieces of a query that scan the corpus (the best rows
of each query vector, the BM25 of each query term) for the coordinator to merge.

It runs in a Ray actor (:mod:`.groups`) or, for tests, in the calling process. Rows and
documents it returns are segment-local or global exactly as the coordinator asks, so the
coordinator's merge adds the same numbers in the same order as one process would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..api.view import _segment_index
from ..errors import IndexFormatError
from ..index.segmented import Part, SegmentedIndex
from ..search.keyword import FUZZY_MIN_LENGTH, edit_distances, near_range
from ..store.bm25 import Scored as Scored
from ..store.bm25 import bm25, summed
from ..store.manifest import CHUNKS, SegmentRef
from ..store.postings import CHUNK, DOC
from ..store.records import DocColumn
from ..store.segmented_keyword import SegmentedKeyword
from ..store.segments import Segment, SegmentedStore
from ..store.tokenize import is_cjk


class Assigned(NamedTuple):
    """A segment given to a shard: its reference, first global row and tombstoned ids."""

    ref: SegmentRef
    offset: int
    dead: tuple[str, ...]


class SegmentStats(NamedTuple):
    """What the coordinator needs of a loaded segment for global BM25 statistics."""

    name: str
    live_chunks: int
    live_docs: int
    chunk_length: int  # sum over live chunks
    doc_length: int  # sum over live documents
    doc_slots: int  # size of the segment's document key space (rowids + 1)
    terms_current: bool
    vectors: int  # live vectors


class SegmentScores(NamedTuple):
    """A query's BM25 in one segment at one level: the segment-local ids (rows or document
    rowids, ascending, int32) matching any term, each one's terms' contributions summed in
    the query's term order (as one process adds them: a unit lives in one segment), and for
    chunks each one's document rowid (int32; so the coordinator need not ask again)."""

    segment: str
    ids: np.ndarray
    scores: np.ndarray
    docs: np.ndarray | None = None


class TermStats(NamedTuple):
    """Frequencies here of asked terms at both levels (terms held by none left out), and
    for each asked term this shard does not hold that a typo may be corrected from, the
    indexed terms within its edit budget (their frequencies in ``chunk`` and ``doc``)."""

    chunk: dict[str, int]
    doc: dict[str, int]
    close: dict[str, list[str]]


class Found(NamedTuple):
    """A vector search's best rows (global, -1 for none) with each one's document rowid in
    its segment (-1 for none)."""

    scores: np.ndarray
    ids: np.ndarray
    docs: np.ndarray


class Loaded:
    """One generation's share of segments, open: stores, postings, vector indexes."""

    def __init__(self, root: Path, dim: int, backend: str, assigned: Sequence[Assigned]) -> None:
        self.names = [a.ref.name for a in assigned]
        self.global_offsets = np.array([a.offset for a in assigned], np.int64)
        self.rows = np.array([a.ref.rows for a in assigned], np.int64)
        segments: list[Segment] = []
        local = 0
        try:
            for a in assigned:
                path = root / a.ref.name
                from ..store.chunkstore import ChunkStore

                store = ChunkStore.open_readonly(path / CHUNKS, a.dead)
                segments.append(Segment(a.ref, path, local, store))
                local += a.ref.rows
            self.store = SegmentedStore(segments)
            parts = []
            for seg in segments:
                index, _ = _segment_index(seg, dim, backend, None, root)
                parts.append(Part(index, seg.offset, seg.ref.rows, seg.store.dead_rows()))
            #: None when this group holds no segment of the generation (fewer segments than groups).
            self.index = SegmentedIndex(dim, parts) if parts else None
            self.keyword = SegmentedKeyword(self.store)
        except BaseException:
            for s in segments:
                s.store.close()
            raise
        self.local_offsets = np.array([s.offset for s in segments], np.int64)

    def close(self) -> None:
        self.store.close()

    def stats(self) -> list[SegmentStats]:
        kw = self.keyword
        out = []
        for i, p in enumerate(kw._parts):
            chunks, docs = kw._chunk_live[i], kw._doc_live[i]
            part = self.index.parts[i] if self.index is not None else None
            vectors = part.rows - len(part.dead) if part is not None else 0
            out.append(
                SegmentStats(
                    self.names[i], int(chunks.sum()), int(docs.sum()),
                    int(p.chunk_lengths[chunks].sum()), int(p.doc_lengths[docs].sum()),
                    len(p.doc_lengths), kw._store.segments[i].store.terms_current(),
                    vectors,
                )
            )  # fmt: skip
        return out

    # --- vectors ---------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None) -> Found:
        """Best ``k`` of this shard's live rows for each query, by global row."""
        if self.index is None:
            empty = np.empty((len(queries), 0))
            return Found(empty.astype(np.float32), empty.astype(np.int64), empty.astype(np.int64))
        local = None if subset is None else self._to_local(np.asarray(subset, np.int64))
        r = self.index.search(queries, k, local)
        ids = np.where(r.ids >= 0, self._to_global(r.ids), -1)
        docs = np.full(ids.shape, -1, np.int64)
        docs[ids >= 0] = self.row_docs(ids[ids >= 0])
        return Found(r.scores, ids, docs)

    def _to_local(self, rows: np.ndarray) -> np.ndarray:
        """This shard's rows among global ``rows`` (sorted), renumbered shard-locally."""
        if not len(self.names):
            return rows[:0]
        which = np.searchsorted(self.global_offsets, rows, side="right") - 1
        mine = (which >= 0) & (rows < self.global_offsets[which] + self.rows[which])
        w = which[mine]
        return rows[mine] - self.global_offsets[w] + self.local_offsets[w]

    def _to_global(self, rows: np.ndarray) -> np.ndarray:
        which = np.clip(np.searchsorted(self.local_offsets, rows, side="right") - 1, 0, None)
        return rows - self.local_offsets[which] + self.global_offsets[which]

    # --- keywords --------------------------------------------------------------------------

    def df(self, terms: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Chunks and documents holding each term (both levels: one round for both)."""
        kw = self.keyword
        return kw.document_frequencies(terms, CHUNK), kw.document_frequencies(terms, DOC)

    def terms(self, terms: Sequence[str]) -> TermStats:
        """:meth:`df` of ``terms``, and the close spellings of those this shard lacks that
        are long enough to correct, with their frequencies: everything a query's words ask
        of the keyword statistics, in one round. Only the candidates within a typo's edit
        budget are counted and sent (thousands of indexed terms share a first letter and a
        length range at a million chunks; a handful are within the budget)."""
        kw = self.keyword
        chunk, doc = self.df(terms)
        close: dict[str, list[str]] = {}
        for t in terms:
            if t in doc or not correctable(t):
                continue
            first, lo, hi = near_range(t)
            budget = len(t) - lo  # the edit budget search.keyword.nearest_terms keeps
            cands = kw.near(first, lo, hi)
            found = edit_distances(t, cands, budget).tolist()
            close[t] = [c for c, d in zip(cands, found, strict=True) if d <= budget]
        more = sorted({c for cs in close.values() for c in cs} - set(terms))
        if more:
            c_df, d_df = self.df(more)
            chunk.update(c_df)
            doc.update(d_df)
        return TermStats(chunk, doc, close)

    def score(
        self, weights: Sequence[Sequence[tuple[str, float]]], avgdl: Sequence[float]
    ) -> list[list[SegmentScores]]:
        """For each level, with its ``(term, idf x repeats)`` and the global ``avgdl`` of the
        level, the BM25 of every matching unit of each segment holding a term (segment order),
        its terms' contributions added in term order, as one process adds them."""
        kw = self.keyword
        out = []
        for level, terms in enumerate(weights):
            ids_of: list[list[np.ndarray]] = [[] for _ in kw._parts]
            contrib_of: list[list[np.ndarray]] = [[] for _ in kw._parts]
            for term, weight in terms:
                for seg, ids, tfs in kw._live_postings(level, term):
                    p = kw._parts[seg]
                    lengths = (p.chunk_lengths if level == CHUNK else p.doc_lengths)[ids]
                    ids_of[seg].append(ids)
                    contrib_of[seg].append(bm25(tfs, lengths, weight, avgdl[level]))
            found = []
            for seg, (ids_all, contrib_all) in enumerate(zip(ids_of, contrib_of, strict=True)):
                if not ids_all:
                    continue
                ids, scores = summed(ids_all, contrib_all)
                ids = ids.astype(np.int32)
                docs = kw._parts[seg].row_doc[ids].astype(np.int32) if level == CHUNK else None
                found.append(SegmentScores(self.names[seg], ids, scores, docs))
            out.append(found)
        return out

    def row_docs(self, rows: np.ndarray) -> np.ndarray:
        """The document rowid (in its own segment) of each global row of this shard."""
        local = self._to_local(np.asarray(rows, np.int64))
        out = np.empty(len(local), np.int64)
        for seg, pos, loc in self.store.split(local):
            i = self.store.segments.index(seg)
            out[pos] = self.keyword._parts[i].row_doc[loc]
        return out

    def doc_ids(
        self, asked: Sequence[tuple[str, Sequence[int]]], column: DocColumn = "doc_id"
    ) -> list[dict[int, str]]:
        """The document id (or source) of each ``(segment, document rowids)``'s rowids."""
        out = []
        for segment, rowids in asked:
            seg = self.store.segments[self.names.index(segment)]
            out.append(seg.store.doc_ids_by_rowid(rowids, column))
        return out

    def near(
        self, ranges: Sequence[tuple[str, int, int]]
    ) -> list[tuple[list[str], tuple[dict[str, int], dict[str, int]]]]:
        """For each ``(first letter, shortest, longest)``, the indexed terms a typo may be
        corrected to, with their live frequencies here at both levels (which the correction
        and its scoring ask next: one round for all)."""
        out = []
        for first, lo, hi in ranges:
            found = self.keyword.near(first, lo, hi)
            out.append((found, self.df(found)))
        return out


class ShardReplica:
    """The actor's state: the generations it holds, by name. Every call names the generation
    it reads, so a query never mixes two; a generation not loaded here is an error."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.loaded: dict[str, Loaded] = {}
        _one_thread()

    def ping(self) -> int:
        return os.getpid()

    def load(
        self, generation: str, dim: int, backend: str, assigned: Sequence[Assigned]
    ) -> list[SegmentStats]:
        if generation not in self.loaded:
            self.loaded[generation] = Loaded(self.root, dim, backend, assigned)
        return self.loaded[generation].stats()

    def release(self, generation: str) -> None:
        got = self.loaded.pop(generation, None)
        if got is not None:
            got.close()

    def generations(self) -> list[str]:
        return sorted(self.loaded)

    def _at(self, generation: str) -> Loaded:
        try:
            return self.loaded[generation]
        except KeyError:
            raise IndexFormatError(f"generation {generation} is not loaded on this shard") from None

    def search(
        self, generation: str, queries: np.ndarray, k: int, subset: np.ndarray | None
    ) -> Found:
        _one_thread()  # per call: the setting is per thread, and calls run on a pool's threads
        return self._at(generation).search(queries, k, subset)

    def df(self, generation: str, terms: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        return self._at(generation).df(terms)

    def terms(self, generation: str, terms: Sequence[str]) -> TermStats:
        return self._at(generation).terms(terms)

    def score(
        self,
        generation: str,
        weights: Sequence[Sequence[tuple[str, float]]],
        avgdl: Sequence[float],
    ) -> list[list[SegmentScores]]:
        return self._at(generation).score(weights, avgdl)

    def row_docs(self, generation: str, rows: np.ndarray) -> np.ndarray:
        return self._at(generation).row_docs(rows)

    def doc_ids(
        self,
        generation: str,
        asked: Sequence[tuple[str, Sequence[int]]],
        column: DocColumn = "doc_id",
    ) -> list[dict[int, str]]:
        return self._at(generation).doc_ids(asked, column)

    def near(
        self, generation: str, ranges: Sequence[tuple[str, int, int]]
    ) -> list[tuple[list[str], tuple[dict[str, int], dict[str, int]]]]:
        return self._at(generation).near(ranges)


def correctable(term: str) -> bool:
    """Whether the keyword search may try to correct ``term`` when the index lacks it."""
    return len(term) >= FUZZY_MIN_LENGTH and not is_cjk(term)


def _one_thread() -> None:
    """One OpenMP thread per faiss search in the calling thread (``omp_set_num_threads`` does
    not reach other threads): a replica's parallelism is its concurrent calls."""
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)
