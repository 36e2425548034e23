"""The coordinator's view of a sharded generation: the same ``View`` the local searcher
reads, whose vector index and keyword index fan out to the shard groups and merge.

Everything else of a query (embedding, fusion, feedback, shaping, hits) is the local code
unchanged, so answers equal the local server's by construction; what differs is only where
the two corpus-wide scans run:

* vectors: each group returns its best ``k`` per query (global rows, ties to the smaller
  row); the coordinator keeps the best ``k`` of those, the rule every index follows.
* BM25: statistics are global. Unit counts and length sums come with the load; each query
  term's document frequency is summed over the groups (and kept for the generation), its
  idf computed here and sent back; the groups return each segment's term scores and the
  coordinator adds them in the order one process would.

The coordinator keeps what a query reads by row (the chunk stores' SQLite pages, the
memory-mapped vectors of the few hundred candidates) and holds no postings or index.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np

from ..api import SemanticIndex
from ..api.view import View
from ..embed import Embedder
from ..errors import IndexFormatError
from ..index.base import SearchResult, VectorIndex, check_k, check_subset, top_k
from ..index.segmented import SegmentedVectors
from ..store.layout import IndexDir, Live
from ..store.manifest import VECTORS, segment_refs
from ..store.npy import load_vectors
from ..store.postings import CHUNK, DOC
from ..store.segments import (
    Scored,
    SegmentedKeyword,
    SegmentedStore,
    idf,
    read_tombstones,
    summed,
)
from .groups import Call, Groups
from .replica import Assigned, SegmentStats

#: Document frequencies remembered per generation (a term's is fixed while it lives).
DF_CACHE = 100_000


class Placed(NamedTuple):
    """A segment of the generation: where it lives and where its rows and documents start."""

    name: str
    group: int
    offset: int
    rows: int
    doc_base: int


class Layout:
    """One generation spread over the groups, with its global BM25 statistics."""

    def __init__(
        self,
        generation: str,
        plan: Sequence[Sequence[Assigned]],
        stats: Sequence[Sequence[SegmentStats]],
    ) -> None:
        self.generation = generation
        by_name = {s.name: s for group in stats for s in group}
        where = [(a, g) for g, group in enumerate(plan) for a in group]
        where.sort(key=lambda ag: ag[0].offset)
        placed, base = [], 0
        for a, g in where:
            placed.append(Placed(a.ref.name, g, a.offset, a.ref.rows, base))
            base += by_name[a.ref.name].doc_slots
        self.segments = tuple(placed)
        self.offsets = np.array([p.offset for p in placed], np.int64)
        self.doc_base = np.array([p.doc_base for p in placed], np.int64)
        self.order = {p.name: i for i, p in enumerate(placed)}
        every = list(by_name.values())
        self.n_chunks = sum(s.live_chunks for s in every)
        self.n_docs = sum(s.live_docs for s in every)
        self.avgdl = (
            sum(s.chunk_length for s in every) / max(self.n_chunks, 1),
            sum(s.doc_length for s in every) / max(self.n_docs, 1),
        )
        self.vectors = sum(s.vectors for s in every)
        self.current = all(s.terms_current for s in every)
        self.groups = len(plan)

    def segment_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, rows, side="right") - 1


def plan_segments(refs: Sequence[Any], groups: int, sticky: dict[str, int]) -> list[int]:
    """The group of each segment: where it already was, else the group with the fewest rows
    (ties to the lower group), biggest segments placed first."""
    load = [0] * groups
    out: dict[int, int] = {}
    for i, ref in enumerate(refs):
        g = sticky.get(ref.name)
        if g is not None and g < groups:
            out[i] = g
            load[g] += ref.rows
    for i in sorted(
        (i for i in range(len(refs)) if i not in out), key=lambda i: (-refs[i].rows, i)
    ):
        g = min(range(groups), key=lambda g: (load[g], g))
        out[i] = g
        load[g] += refs[i].rows
    return [out[i] for i in range(len(refs))]


class Sharding:
    """Generations loaded on the groups, each held while a view of it is open."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self._layouts: dict[str, Layout] = {}
        self._holders: Counter[str] = Counter()
        self._sticky: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, live: Live, backend: str) -> Layout:
        """Load ``live`` on every replica (once) and hold it; returns when all have it."""
        name = live.gen.name
        with self._lock:
            if name not in self._layouts:
                refs = segment_refs(live.gen, live.manifest)
                dead = read_tombstones(live.gen, live.manifest)
                at = plan_segments(refs, self.groups.groups, self._sticky)
                plan: list[list[Assigned]] = [[] for _ in range(self.groups.groups)]
                offset = 0
                for ref, g in zip(refs, at, strict=True):
                    plan[g].append(Assigned(ref, offset, tuple(dead.get(ref.name, ()))))
                    offset += ref.rows
                m = live.manifest
                stats = self.groups.load(name, m.dim, backend, plan)
                self._layouts[name] = Layout(name, plan, stats)
                self._sticky = {ref.name: g for ref, g in zip(refs, at, strict=True)}
            self._holders[name] += 1
            return self._layouts[name]

    def drop(self, name: str) -> None:
        """A view of ``name`` closed; the last one lets the replicas free it."""
        with self._lock:
            self._holders[name] -= 1
            if self._holders[name] > 0:
                return
            del self._holders[name]
            self._layouts.pop(name, None)
        self.groups.release(name)


class ShardedIndex(VectorIndex):
    """Vector search over the groups of one generation, merged to the best ``k``."""

    file_name = ""

    def __init__(self, dim: int, layout: Layout, groups: Groups, rows: int) -> None:
        super().__init__(dim)
        self.layout = layout
        self.groups = groups
        self.total = rows
        self.backend = "ray"
        self.index_type = "sharded"

    def __len__(self) -> int:
        return self.layout.vectors

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        q = self._check(queries, "queries")
        k = check_k(k)
        ids = None if subset is None else check_subset(subset, max(self.total, 1))
        gen = self.layout.generation
        got = self.groups.fan_out(
            {g: Call("search", (gen, q, k, ids)) for g in range(self.groups.groups)}
        )
        parts = [got[g] for g in range(self.groups.groups) if got[g].ids.shape[1]]
        if not parts:
            empty = np.empty((len(q), 0))
            return SearchResult(empty.astype(np.float32), empty.astype(np.int64))
        s = np.hstack([p.scores for p in parts])
        i = np.hstack([p.ids for p in parts])
        s = np.where(i >= 0, s, -np.inf).astype(np.float32)
        i = np.where(i >= 0, i, np.iinfo(np.int64).max)
        best_s, best_i = top_k(s, i, min(k, s.shape[1]))
        return SearchResult(best_s, np.where(best_i == np.iinfo(np.int64).max, -1, best_i))

    def add(self, vectors: np.ndarray) -> None:
        raise NotImplementedError("a sharded generation is read-only")

    def save(self, path: Path) -> None:
        raise NotImplementedError("each segment saves its own index")

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        raise NotImplementedError("open a sharded generation through semsearch.shard")


class ShardedKeyword(SegmentedKeyword):
    """BM25 with the statistics of the whole generation, scored on the groups. Inherits the
    parts computed from document frequencies alone (``full_match``, ``query_terms``)."""

    def __init__(self, layout: Layout, groups: Groups) -> None:  # no postings here
        self.layout = layout
        self.groups = groups
        self.n_chunks = layout.n_chunks
        self.n_docs = layout.n_docs
        self._avgdl = layout.avgdl
        self.doc_base = layout.doc_base
        self.current = layout.current
        self._df: dict[tuple[int, str], int] = {}

    def _all(self, method: str, *args: Any) -> dict[int, Any]:
        gen = self.layout.generation
        return self.groups.fan_out(
            {g: Call(method, (gen, *args)) for g in range(self.groups.groups)}
        )

    def document_frequencies(self, query_terms: Iterable[str], level: int = DOC) -> dict[str, int]:
        terms = set(query_terms)
        unknown = sorted(t for t in terms if (level, t) not in self._df)
        if unknown:
            summed_df: Counter[str] = Counter()
            for found in self._all("df", unknown, level).values():
                summed_df.update(found)
            if len(self._df) > DF_CACHE:
                self._df.clear()
            self._df.update(((level, t), summed_df.get(t, 0)) for t in unknown)
        return {t: self._df[(level, t)] for t in terms if self._df[(level, t)]}

    def score(self, query_terms: Sequence[str], level: int) -> Scored:
        n = self.n_chunks if level == CHUNK else self.n_docs
        counts = Counter(query_terms)
        df = self.document_frequencies(counts, level)
        weights = [(t, times * idf(n, df[t])) for t, times in counts.items() if t in df]
        if not weights:
            return summed([], [])
        got = self._all("score", weights, level, self._avgdl[level])
        ids_all, contrib_all = [], []
        for i in range(len(weights)):
            parts = sorted(
                (p for g in got for p in got[g][i]), key=lambda p: self.layout.order[p.segment]
            )
            for p in parts:
                seg = self.layout.segments[self.layout.order[p.segment]]
                ids_all.append(p.ids + (seg.offset if level == CHUNK else seg.doc_base))
                contrib_all.append(p.scores)
        return summed(ids_all, contrib_all)

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        out = np.empty(len(rows), np.int64)
        if not len(rows):
            return out
        seg = self.layout.segment_of(rows)
        group = np.array([s.group for s in self.layout.segments], np.int64)[seg]
        gen = self.layout.generation
        at = {g: np.flatnonzero(group == g) for g in np.unique(group).tolist()}
        got = self.groups.fan_out({g: Call("row_docs", (gen, rows[pos])) for g, pos in at.items()})
        for g, pos in at.items():
            out[pos] = got[g] + self.layout.doc_base[seg[pos]]
        return out

    def doc_ids(self, keys: Iterable[int]) -> dict[int, str]:
        keys = np.asarray(list(keys), np.int64)
        which = np.searchsorted(self.doc_base, keys, side="right") - 1
        out: dict[int, str] = {}
        gen = self.layout.generation
        for i in np.unique(which).tolist():
            seg = self.layout.segments[i]
            mine = (keys[which == i] - seg.doc_base).tolist()
            got = self.groups.fan_out({seg.group: Call("doc_ids", (gen, seg.name, mine))})
            out.update((r + seg.doc_base, d) for r, d in got[seg.group].items())
        return out

    def near(self, first: str, lo: int, hi: int) -> list[str]:
        return sorted({t for found in self._all("near", first, lo, hi).values() for t in found})


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
    sharding: Sharding,
    live: Live | None = None,
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
    store.keyword = ShardedKeyword(layout, sharding.groups)
    blocks = [load_vectors(s.path / VECTORS, manifest.dim) for s in store.segments]
    index = ShardedIndex(manifest.dim, layout, sharding.groups, store.rows)
    if len(index) != manifest.chunks:
        store.close()
        sharding.drop(gen.name)
        raise IndexFormatError(
            f"index at {index_dir.path} is damaged: {len(index)} vectors for "
            f"{manifest.chunks} chunks"
        )
    view = View(gen, live.pointer, manifest, store, index, SegmentedVectors(manifest.dim, blocks))
    weakref.finalize(view, sharding.drop, gen.name)
    return view


class ShardedSemanticIndex(SemanticIndex):
    """A :class:`SemanticIndex` whose searches fan out to ``sharding``'s groups (made by
    :meth:`bound`); reading, hits and writes are the local ones."""

    sharding: ClassVar[Sharding]

    @classmethod
    def bound(cls, sharding: Sharding) -> type[ShardedSemanticIndex]:
        return type(cls.__name__, (cls,), {"sharding": sharding})

    def _reload(self, live: Live | None = None) -> None:
        with self._write_lock:
            self._view = open_view(
                self._dir, self.embedder, self.settings.backend, self.sharding, live
            )
