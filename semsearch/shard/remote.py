"""The coordinator's view of a sharded generation: the same ``View`` the local searcher
reads, whose vector index and keyword index fan out to the shard groups and merge.

Everything else of a query (embedding, fusion, feedback, shaping, hits) is the local code
unchanged, so answers equal the local server's by construction; what differs is only where
the two corpus-wide scans run:

* vectors: each group returns its best ``k`` per query (global rows, ties to the smaller
  row); the coordinator keeps the best ``k`` of those, the rule every index follows.
* BM25: statistics are global. Unit counts and length sums come with the load; each query
  term's document frequency is summed over the groups (and kept for the generation), its
  idf computed here and sent back; each group returns every matching unit of each of its
  segments once, its terms' contributions added in the query's term order (the sum one
  process makes: a unit lives in one segment), and the coordinator lays the segments side
  by side.

The coordinator keeps what a query reads by row (the chunk stores' SQLite pages, the
memory-mapped vectors of the few hundred candidates) and holds no postings or index.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from ..api import SemanticIndex
from ..api.live import Opener
from ..api.view import View
from ..embed import Embedder
from ..errors import IndexFormatError
from ..index.base import SearchResult, VectorIndex, check_k, check_subset, merge_best
from ..index.segmented import SegmentedVectors
from ..search.keyword import near_range
from ..store.bm25 import Scored, idf, summed, term_weights
from ..store.layout import IndexDir, Live
from ..store.manifest import VECTORS
from ..store.npy import load_vectors
from ..store.postings import CHUNK, DOC
from ..store.records import DocColumn
from ..store.segmented_keyword import SegmentedKeyword
from ..store.segments import SegmentedStore
from .groups import Call, Groups
from .placement import Layout, Sharding
from .replica import TermStats, correctable

#: Document frequencies remembered per generation (a term's is fixed while it lives).
DF_CACHE = 100_000
#: Typo-correction candidate lists remembered per generation.
NEAR_CACHE = 4_096
#: Rows whose document key is remembered per generation (:class:`RowDocs`).
ROW_MEMO = 2_000_000


class RowDocs:
    """Document keys of rows the groups have already named (with a search's hits and a
    term's matches), so ``doc_of`` rarely needs a round of its own. Facts of one generation,
    shared by threads; forgotten past ``limit`` rows."""

    def __init__(self, limit: int = ROW_MEMO) -> None:
        self.limit = limit
        self._table = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._lock = threading.Lock()

    def add(self, rows: np.ndarray, docs: np.ndarray) -> None:
        if not len(rows):
            return
        with self._lock:
            old_rows, old_docs = self._table
            if len(old_rows) + len(rows) > self.limit:
                old_rows, old_docs = old_rows[:0], old_docs[:0]
            both, first = np.unique(np.concatenate([old_rows, rows]), return_index=True)
            self._table = (both, np.concatenate([old_docs, docs])[first])

    def find(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document key or -1, whether known) of each row."""
        known_rows, known_docs = self._table
        if not len(known_rows):
            return np.full(len(rows), -1, np.int64), np.zeros(len(rows), bool)
        at = np.minimum(np.searchsorted(known_rows, rows), len(known_rows) - 1)
        hit = known_rows[at] == rows
        return np.where(hit, known_docs[at], -1), hit


class ShardedIndex(VectorIndex):
    """Vector search over the groups of one generation, merged to the best ``k``."""

    file_name = ""

    def __init__(self, dim: int, layout: Layout, groups: Groups, rows: int, memo: RowDocs) -> None:
        super().__init__(dim)
        self.layout = layout
        self.groups = groups
        self.total = rows
        self.memo = memo
        self.backend = "ray"
        self.index_type = "sharded"

    def __len__(self) -> int:
        return self.layout.vectors

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        q = self._check(queries, "queries")
        k = check_k(k)
        ids = None if subset is None else check_subset(subset, max(self.total, 1))
        gen = self.layout.generation
        calls = {g: Call("search", (gen, q, k, ids)) for g in range(self.groups.groups)}
        got = self.groups.fan_out(calls)
        parts = [got[g] for g in range(self.groups.groups) if got[g].ids.shape[1]]
        if parts:
            i = np.hstack([p.ids for p in parts])
            d = np.hstack([p.docs for p in parts])
            rows = i[i >= 0]
            self.memo.add(rows, d[i >= 0] + self.layout.doc_base[self.layout.segment_of(rows)])
        return merge_best([p.scores for p in parts], [p.ids for p in parts], k, len(q))

    def add(self, vectors: np.ndarray) -> None:
        raise NotImplementedError("a sharded generation is read-only")

    def save(self, path: Path) -> None:
        raise NotImplementedError("each segment saves its own index")

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        raise NotImplementedError("open a sharded generation through semsearch.shard")


class ShardedKeyword(SegmentedKeyword):
    """BM25 with the statistics of the whole generation, scored on the groups. Inherits the
    parts computed from document frequencies alone (``full_match``, ``query_terms``).

    Rounds are few: a term's frequencies at both levels come in one (and are kept for the
    generation), both levels' scores in one (the level not asked for waits in this thread
    for the call that follows, as :func:`semsearch.search.keyword.keyword_hits` makes it),
    and documents of rows come with the scores and searches that found them."""

    def __init__(self, layout: Layout, groups: Groups, memo: RowDocs) -> None:  # no postings
        self.layout = layout
        self.groups = groups
        self.memo = memo
        self.n_chunks = layout.n_chunks
        self.n_docs = layout.n_docs
        self._avgdl = layout.avgdl
        self.doc_base = layout.doc_base
        self.current = layout.current
        self._df: dict[tuple[int, str], int] = {}
        self._near: dict[tuple[str, int, int], list[str]] = {}
        self._close: dict[str, list[str]] = {}
        self._waiting = threading.local()

    def _all(self, method: str, *args: Any) -> dict[int, Any]:
        gen = self.layout.generation
        calls = {g: Call(method, (gen, *args)) for g in range(self.groups.groups)}
        return self.groups.fan_out(calls)

    def document_frequencies(self, query_terms: Iterable[str], level: int = DOC) -> dict[str, int]:
        terms = set(query_terms)
        # Read into a local copy: another thread's lookup, or this call's own, may clear the
        # shared cache meanwhile.
        df = {
            k: v
            for t in terms
            for k in ((CHUNK, t), (DOC, t))
            if (v := self._df.get(k)) is not None
        }
        unknown = sorted(t for t in terms if (level, t) not in df)
        if unknown:
            self._lookup(unknown, df)
        # The typos among them: what :meth:`near` answers from next (the close spellings
        # of each, fetched with its frequencies; again if forgotten meanwhile), kept in this
        # thread.
        typos = sorted(t for t in terms if not df[(DOC, t)] and correctable(t))
        if typos:
            close = {t: c for t in typos if (c := self._close.get(t)) is not None}
            missing = [t for t in typos if t not in close]
            if missing:
                close.update(self._lookup(missing, {}))
            mine, stale = self._typos()
            if len(mine) + len(typos) > NEAR_CACHE:
                # a range whose typos were forgotten may lack the caller's: its own round
                stale.update(near_range(t) for t in mine)
                mine.clear()
            mine.update(close)
        return {t: df[(level, t)] for t in terms if df[(level, t)]}

    def _lookup(
        self, terms: Sequence[str], into: dict[tuple[int, str], int]
    ) -> dict[str, list[str]]:
        """One round: the frequencies of ``terms`` at both levels (added to ``into``), and for
        each that no group holds (a typo), its close spellings with theirs, all kept for the
        generation. Returns each typo's close spellings."""
        got = [cast(TermStats, a) for a in self._all("terms", terms).values()]
        into.update(self._remember(terms, [(a.chunk, a.doc) for a in got]))
        # every group lacks a typo, so every group sent the typo's close spellings it holds,
        # with their frequencies there: summed, those are their global frequencies
        typos = {
            t: sorted({c for a in got for c in a.close.get(t, ())})
            for t in terms
            if not any(t in a.doc for a in got) and correctable(t)
        }
        for close in typos.values():
            self._remember(close, [(a.chunk, a.doc) for a in got])
        if len(self._close) + len(typos) > NEAR_CACHE:
            self._close.clear()
        self._close.update(typos)
        return typos

    def _remember(
        self, terms: Sequence[str], found: Iterable[Sequence[dict[str, int]]]
    ) -> dict[tuple[int, str], int]:
        """Keep the frequencies of ``terms`` at both levels, summed over the groups' answers,
        and return them (the shared cache may be cleared by the next caller)."""
        summed_df: list[Counter[str]] = [Counter(), Counter()]
        for both in found:
            for lv in (CHUNK, DOC):
                summed_df[lv].update(both[lv])
        new = {(lv, t): summed_df[lv].get(t, 0) for lv in (CHUNK, DOC) for t in terms}
        if len(self._df) + len(new) > DF_CACHE:
            self._df.clear()
        self._df.update(new)
        return new

    def score(self, query_terms: Sequence[str] | Mapping[str, float], level: int) -> Scored:
        weights = term_weights(query_terms)
        key = tuple(weights.items())
        waiting = getattr(self._waiting, "scored", None)
        self._waiting.scored = None
        if waiting is not None and waiting[0] == (key, level):
            return cast(Scored, waiting[1])
        both = self._score_both(weights)
        other = DOC if level == CHUNK else CHUNK
        self._waiting.scored = ((key, other), both[other])
        return both[level]

    def _score_both(self, counts: Mapping[str, float]) -> tuple[Scored, Scored]:
        weights = []
        for level, n in ((CHUNK, self.n_chunks), (DOC, self.n_docs)):
            df = self.document_frequencies(counts, level)
            weights.append([(t, times * idf(n, df[t])) for t, times in counts.items() if t in df])
        if not any(weights):
            return summed([], []), summed([], [])
        got = self._all("score", weights, self._avgdl)
        out = []
        order = self.layout.order
        for level in (CHUNK, DOC):
            # a unit lives in one segment, whose group summed its terms in query order:
            # the segments' parts, in segment order, are the units ascending
            parts = sorted(
                (p for g in sorted(got) for p in got[g][level]), key=lambda p: order[p.segment]
            )
            ids_all, contrib_all, docs_all = [], [], []
            for p in parts:
                seg = self.layout.segments[order[p.segment]]
                ids_all.append(
                    p.ids.astype(np.int64) + (seg.offset if level == CHUNK else seg.doc_base)
                )
                contrib_all.append(p.scores)
                if p.docs is not None:
                    docs_all.append(p.docs.astype(np.int64) + seg.doc_base)
            if not ids_all:
                out.append(summed([], []))
                continue
            ids = np.concatenate(ids_all)
            out.append(Scored(ids, np.concatenate(contrib_all)))
            if level == CHUNK:
                self._waiting.rows = (ids, np.concatenate(docs_all))
        return out[0], out[1]

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        out, known = self.memo.find(rows)
        scored = getattr(self._waiting, "rows", None)  # this thread's last chunk scores
        if scored is not None and not known.all() and len(scored[0]):
            ask = np.flatnonzero(~known)
            where = np.minimum(np.searchsorted(scored[0], rows[ask]), len(scored[0]) - 1)
            hit = scored[0][where] == rows[ask]
            out[ask[hit]] = scored[1][where[hit]]
            known[ask[hit]] = True
        if known.all():
            return out
        ask = np.flatnonzero(~known)
        seg = self.layout.segment_of(rows[ask])
        group = np.array([s.group for s in self.layout.segments], np.int64)[seg]
        gen = self.layout.generation
        at = {g: np.flatnonzero(group == g) for g in np.unique(group).tolist()}
        got = self.groups.fan_out(
            {g: Call("row_docs", (gen, rows[ask[pos]])) for g, pos in at.items()}
        )
        for g, pos in at.items():
            out[ask[pos]] = got[g] + self.layout.doc_base[seg[pos]]
        self.memo.add(rows[ask], out[ask])
        return out

    def doc_ids(self, keys: Iterable[int], column: DocColumn = "doc_id") -> dict[int, str]:
        keys = np.asarray(list(keys), np.int64)
        which = np.searchsorted(self.doc_base, keys, side="right") - 1
        asked: dict[int, list[tuple[str, list[int]]]] = {}
        bases: dict[int, list[int]] = {}
        for i in np.unique(which).tolist():
            seg = self.layout.segments[i]
            asked.setdefault(seg.group, []).append(
                (seg.name, (keys[which == i] - seg.doc_base).tolist())
            )
            bases.setdefault(seg.group, []).append(int(seg.doc_base))
        gen = self.layout.generation
        got = self.groups.fan_out({g: Call("doc_ids", (gen, a, column)) for g, a in asked.items()})
        out: dict[int, str] = {}
        for g, found in got.items():
            for base, names in zip(bases[g], found, strict=True):
                out.update((r + base, d) for r, d in names.items())
        return out

    def near(self, first: str, lo: int, hi: int) -> list[str]:
        """Candidates for a typo's correction. For the typos of the query this thread is
        reading (the last :meth:`document_frequencies` named them): their close spellings,
        fetched with their frequencies, which is all that survives the caller's edit-budget
        filter. Otherwise every indexed term in the range (a round of its own)."""
        typos, stale = self._typos()
        mine = [cs for t, cs in typos.items() if near_range(t) == (first, lo, hi)]
        if mine and (first, lo, hi) not in stale:
            # the union for every typo of this range this thread has met: the caller keeps
            # those within its own typo's budget, which are among them
            return sorted({c for cs in mine for c in cs})
        key = (first, lo, hi)
        known = self._near.get(key)
        return list(known if known is not None else self._fetch_near([key])[key])

    def _typos(self) -> tuple[dict[str, list[str]], set[tuple[str, int, int]]]:
        """This thread's typos (up to ``NEAR_CACHE``) with their close spellings, and the
        ranges some forgotten typo of which had."""
        if getattr(self._waiting, "typos", None) is None:
            self._waiting.typos, self._waiting.stale = {}, set()
        return self._waiting.typos, self._waiting.stale

    def _fetch_near(
        self, ranges: Sequence[tuple[str, int, int]]
    ) -> dict[tuple[str, int, int], list[str]]:
        """One round for the terms of ``ranges``, kept and returned (the shared cache may be
        cleared by another thread before the caller reads it)."""
        ranges = sorted(set(ranges))
        got = self._all("near", ranges)
        fetched = {}
        for i, key in enumerate(ranges):
            answers = [got[g][i] for g in sorted(got)]
            fetched[key] = sorted({t for found, _ in answers for t in found})
            self._remember(fetched[key], [both for _, both in answers])
        if len(self._near) + len(ranges) > NEAR_CACHE:
            self._near.clear()
        self._near.update(fetched)
        return fetched


class ShardedStore(SegmentedStore):
    """The generation's chunk stores, read by row here; keyword search on the groups."""

    keyword: ShardedKeyword | None = None

    def keyword_index(self) -> SegmentedKeyword:
        assert self.keyword is not None
        return self.keyword


def open_view(
    index_dir: IndexDir,
    embedder: Embedder,
    backend: str,
    live: Live | None = None,
    *,
    sharding: Sharding,
) -> View:
    """The live generation (``live``, when just read), loaded on every group and held until
    the view is dropped."""
    live = live or index_dir.live()
    _, gen, manifest = live
    if embedder.name != manifest.model or embedder.dim != manifest.dim:
        raise IndexFormatError(
            f"index at {index_dir.path} was built with model {manifest.model!r} "
            f"({manifest.dim} dimensions), not {embedder.name!r}"
        )
    layout = sharding.hold(live, backend)
    try:
        store = cast(ShardedStore, ShardedStore.open(gen, manifest))
    except BaseException:
        sharding.drop(gen.name)
        raise
    memo = RowDocs()
    store.keyword = ShardedKeyword(layout, sharding.groups, memo)
    blocks = [load_vectors(s.path / VECTORS, manifest.dim) for s in store.segments]
    index = ShardedIndex(manifest.dim, layout, sharding.groups, store.rows, memo)
    if len(index) != manifest.chunks:
        store.close()
        sharding.drop(gen.name)
        raise IndexFormatError(
            f"index at {index_dir.path} is damaged: {len(index)} vectors for "
            f"{manifest.chunks} chunks"
        )
    vectors = SegmentedVectors(manifest.dim, blocks)
    view = View(gen, live.pointer, manifest, store, index, vectors, embedder)
    weakref.finalize(view, sharding.drop, gen.name)
    return view


class ShardedSemanticIndex(SemanticIndex):
    """A :class:`SemanticIndex` whose searches fan out to ``sharding``'s groups (made by
    :meth:`bound`); reading, hits and writes are the local ones."""

    sharding: ClassVar[Sharding]

    @classmethod
    def bound(cls, sharding: Sharding) -> type[ShardedSemanticIndex]:
        return type(cls.__name__, (cls,), {"sharding": sharding})

    def _opener(self) -> Opener:
        return functools.partial(open_view, sharding=self.sharding)
