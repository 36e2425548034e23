"""BM25 over a generation's segments with collection statistics taken over all of them, so a
multi-segment index scores as the same documents written as one segment."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .bm25 import Scored, bm25, idf, merged, summed, term_weights
from .postings import CHUNK, DOC
from .records import DocColumn
from .tokenize import terms as analyze

if TYPE_CHECKING:
    from .segments import SegmentedStore

#: Bytes of live postings a generation's keyword index keeps between queries.
POSTINGS_CACHE_BYTES = 32 << 20
#: One term's live postings: ``(segment, ids, tfs)`` per segment holding it.
_Live = list[tuple[int, np.ndarray, np.ndarray]]


class SegmentedKeyword:
    """BM25 over every live chunk and document of a generation, with collection statistics
    (unit count, document frequency, average length) taken over all live segments: the
    scores equal those of the same documents written as one segment.

    The formula is FTS5's ``bm25()`` (k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) /
    (n + 0.5)) floored at 1e-6, a repeated query term counted again), so rankings match
    the index format before segments."""

    def __init__(self, store: SegmentedStore) -> None:
        self._store = store
        self._parts = [s.store.postings() for s in store.segments]
        self._chunk_live = [
            _mask(len(p.chunk_lengths), s.store.dead_rows())
            for p, s in zip(self._parts, store.segments, strict=True)
        ]
        self._doc_live = []
        for p, s in zip(self._parts, store.segments, strict=True):
            live = np.zeros(len(p.doc_lengths), bool)
            live[p.doc_rowids] = True
            live[s.store.dead_doc_rowids()] = False
            self._doc_live.append(live)
        #: Segments without tombstones, whose postings are read without a liveness mask.
        self._all_live = (
            [bool(m.all()) for m in self._chunk_live],
            [bool(m[p.doc_rowids].all()) for m, p in zip(self._doc_live, self._parts, strict=True)],
        )
        sizes = [len(p.doc_lengths) for p in self._parts]
        #: A document's global key: its segment's base plus its rowid there.
        self.doc_base = np.cumsum([0, *sizes])[:-1].astype(np.int64)
        self.n_chunks = int(sum(m.sum() for m in self._chunk_live))
        self.n_docs = int(sum(m.sum() for m in self._doc_live))
        chunk_len = sum(
            int(p.chunk_lengths[m].sum())
            for p, m in zip(self._parts, self._chunk_live, strict=True)
        )
        doc_len = sum(
            int(p.doc_lengths[m].sum()) for p, m in zip(self._parts, self._doc_live, strict=True)
        )
        self._avgdl = (chunk_len / max(self.n_chunks, 1), doc_len / max(self.n_docs, 1))
        self.current = all(s.store.terms_current() for s in store.segments)
        #: Every live document is its one live chunk, of the same length, and a document's key
        #: follows its row's order: both levels' BM25 are then the same numbers.
        self.docs_are_chunks = self._docs_are_chunks()
        self._last = threading.local()
        self._cache: OrderedDict[tuple[int, str], tuple[_Live, int]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()

    def _docs_are_chunks(self) -> bool:
        if self.n_docs != self.n_chunks or self._avgdl[CHUNK] != self._avgdl[DOC]:
            return False
        for p, rows, docs in zip(self._parts, self._chunk_live, self._doc_live, strict=True):
            if not p.rows_are_docs:
                return False
            at = p.docs_of(np.arange(len(rows)))
            if not (
                np.array_equal(rows, docs[at])
                and np.array_equal(p.chunk_lengths, p.doc_lengths[at])
            ):
                return False
        return True

    def query_terms(self, text: str) -> list[str]:
        return analyze(text)

    def _live_postings(self, level: int, term: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(segment, ids, tfs)`` of a term's live postings in each segment holding it
        (kept in a bounded LRU: one query reads each term's postings up to five times, and the
        next queries often share terms)."""
        key = (level, term)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit[0]
        out = self._read_postings(level, term)
        size = 64 + sum(ids.nbytes + tfs.nbytes for _, ids, tfs in out)
        with self._cache_lock:
            if key not in self._cache and size <= POSTINGS_CACHE_BYTES:
                self._cache[key] = (out, size)
                self._cache_bytes += size
                while self._cache_bytes > POSTINGS_CACHE_BYTES:
                    self._cache_bytes -= self._cache.popitem(last=False)[1][1]
        return out

    def clear_cache(self) -> None:
        """Forget the cached postings (benchmarks measure queries that find none)."""
        with self._cache_lock:
            self._cache.clear()
            self._cache_bytes = 0

    def _read_postings(self, level: int, term: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = []
        lives = self._chunk_live if level == CHUNK else self._doc_live
        for i, (p, live) in enumerate(zip(self._parts, lives, strict=True)):
            ids, tfs = p.get(level, term)
            if len(ids) and not self._all_live[level][i]:
                keep = live[ids]
                if not keep.all():
                    ids, tfs = ids[keep], tfs[keep]
            if len(ids):
                out.append((i, ids, tfs))
        return out

    def score(self, query_terms: Sequence[str] | Mapping[str, float], level: int) -> Scored:
        """BM25 of every chunk (``CHUNK``: ids are global rows) or document (``DOC``: ids are
        document keys) holding a query term; a mapping gives each term its weight (a
        repeated term in a sequence weighs its count). Where every document is its one chunk
        (:attr:`docs_are_chunks`) both levels are the same numbers: the chunks' are computed
        once and kept for the query's other level."""
        if not self.docs_are_chunks:
            return self._score(term_weights(query_terms), level)
        weights = term_weights(query_terms)
        key = tuple(weights.items())
        last = getattr(self._last, "chunks", None)
        if last is not None and last[0] == key:
            chunks = last[1]
        else:
            chunks = self._score(weights, CHUNK)
            self._last.chunks = (key, chunks)
        return chunks if level == CHUNK else Scored(self.doc_of(chunks.ids), chunks.scores)

    def _score(self, weights: dict[str, float], level: int) -> Scored:
        n = self.n_chunks if level == CHUNK else self.n_docs
        avgdl = self._avgdl[level]
        ids_all, tfs_all, lengths_all, each = [], [], [], []
        for term, times in weights.items():
            found = self._live_postings(level, term)
            df = sum(len(ids) for _, ids, _ in found)
            if not df:
                continue
            weight = times * idf(n, df)
            for seg, ids, tfs in found:
                p = self._parts[seg]
                lengths_all.append((p.chunk_lengths if level == CHUNK else p.doc_lengths)[ids])
                tfs_all.append(tfs)
                each.append((weight, len(ids)))
                base = self._store.segments[seg].offset if level == CHUNK else self.doc_base[seg]
                ids_all.append(ids.astype(np.int64) + base)
        if not ids_all:
            return summed([], [])
        # One BM25 pass over every term's postings, each with its term's weight (the same
        # arithmetic per posting as one pass per term).
        w, counts = zip(*each, strict=True)
        contrib = bm25(
            np.concatenate(tfs_all), np.concatenate(lengths_all),
            np.repeat(np.asarray(w, np.float64), counts), avgdl,
        )  # fmt: skip
        return merged(np.concatenate(ids_all), contrib, len(ids_all))

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        """The document key of each global chunk row."""
        rows = np.asarray(rows, np.int64)
        if len(self._parts) == 1:  # (no split: its positions and scatter cost two passes)
            return self._parts[0].docs_of(rows) + self.doc_base[0]
        out = np.empty(len(rows), np.int64)
        for seg, pos, local in self._store.split(rows):
            i = self._store.segments.index(seg)
            out[pos] = self._parts[i].docs_of(local) + self.doc_base[i]
        return out

    def doc_ids(self, keys: Iterable[int], column: DocColumn = "doc_id") -> dict[int, str]:
        """The document id (or source) of each document key."""
        keys = np.asarray(list(keys), np.int64)
        out: dict[int, str] = {}
        which = np.searchsorted(self.doc_base, keys, side="right") - 1
        for i, seg in enumerate(self._store.segments):
            mine = keys[which == i]
            if len(mine):
                base = int(self.doc_base[i])
                found = seg.store.doc_ids_by_rowid((mine - base).tolist(), column)
                out.update((r + base, d) for r, d in found.items())
        return out

    def document_frequencies(self, query_terms: Iterable[str], level: int = DOC) -> dict[str, int]:
        """Live documents (or chunks) holding each term (terms held by none left out)."""
        out = {}
        for t in set(query_terms):
            df = sum(len(ids) for _, ids, _ in self._live_postings(level, t))
            if df:
                out[t] = df
        return out

    def full_match(
        self, query_terms: Sequence[str] | Mapping[str, float], *, chunks: bool = False
    ) -> float:
        """BM25 of a document (or of a chunk, when ``chunks``) holding every query term
        once at average length: the sum of the terms' idf at that level (repeats count, as
        in the query; a mapping's weights multiply). It turns a BM25 score into a fraction
        that means the same from one query to the next."""
        level = CHUNK if chunks else DOC
        weights = term_weights(query_terms)
        df = self.document_frequencies(weights, level)
        n = self.n_chunks if chunks else self.n_docs
        return sum(w * idf(n, df[t]) for t, w in weights.items() if t in df)

    def document_terms(self, keys: Iterable[int], limit: int) -> dict[int, list[str]]:
        """The keyword terms of each document key's text (its first ``limit`` characters),
        for pseudo-relevance feedback."""
        names = self.doc_ids(keys)
        return {k: analyze(self._store.document_text(d)[:limit]) for k, d in names.items()}

    def near(self, first: str, lo: int, hi: int) -> list[str]:
        """Indexed terms starting with ``first``, of length ``lo``..``hi`` (the candidates
        for a typo's correction; some may be held by deleted documents only)."""
        return sorted({t for p in self._parts for t in p.near(first, lo, hi)})


def _mask(size: int, dead: np.ndarray) -> np.ndarray:
    mask = np.ones(size, bool)
    mask[dead[dead < size]] = False
    return mask
