"""From queries to ranked rows: dense, keyword or hybrid candidates, then the page shaping.

``SemanticIndex.search`` calls :func:`retrieve`; this module decides which rows, the API
turns them into hits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..embed import Embedder
from ..errors import UsageError
from ..index import VectorIndex
from ..store.chunkstore import ChunkStore
from .fuse import blend
from .keyword import keyword_query
from .shape import cap_per_source, mmr

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("dense", "keyword", "hybrid")
#: Default retrieval mode, chosen by measurement on SciFact (README, "Ranking quality").
DEFAULT_MODE: Mode = "hybrid"
#: Candidates taken from each list before fusion or re-ranking (200 measured best on SciFact).
CANDIDATES = 200
#: The most hits one query may ask for: bounds memory and time whatever the caller sends.
MAX_K = 10_000


@dataclass(frozen=True)
class Options:
    k: int
    mode: Mode = DEFAULT_MODE
    where: Mapping[str, Any] | None = None
    per_source: int | None = None
    diverse: bool = False
    min_score: float | None = None

    def check(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or not 0 < self.k <= MAX_K:
            raise UsageError(f"k must be an integer from 1 to {MAX_K}, got {self.k!r:.40}")
        if self.min_score is not None and (
            isinstance(self.min_score, bool)
            or not isinstance(self.min_score, (int, float))
            or not math.isfinite(self.min_score)
        ):
            raise UsageError(f"min-score must be a finite number, got {self.min_score!r:.40}")
        if not isinstance(self.diverse, bool):
            raise UsageError("diverse must be true or false")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.per_source is not None and (
            not isinstance(self.per_source, int)
            or isinstance(self.per_source, bool)
            or self.per_source <= 0
        ):
            raise UsageError(f"per-source cap must be positive, got {self.per_source}")


@dataclass(frozen=True)
class Ranked:
    """Rows and scores for one query, best first; ``dense`` and ``keyword`` hold each row's
    cosine and BM25 score (NaN where that list did not have the row), None when not run."""

    rows: np.ndarray
    scores: np.ndarray
    dense: np.ndarray | None = None
    keyword: np.ndarray | None = None

    def take(self, keep: np.ndarray) -> Ranked:
        """The rows at positions ``keep`` (a mask or positions), parts included."""
        return Ranked(
            self.rows[keep],
            self.scores[keep],
            None if self.dense is None else self.dense[keep],
            None if self.keyword is None else self.keyword[keep],
        )


def retrieve(
    queries: Sequence[str],
    opts: Options,
    *,
    embedder: Embedder,
    index: VectorIndex,
    store: ChunkStore,
    vectors: np.ndarray,
) -> list[Ranked]:
    """Rank rows for each query according to ``opts``."""
    opts.check()
    subset = store.rows_where(opts.where) if opts.where else None
    if subset is not None and len(subset) == 0:
        empty = Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
        return [empty for _ in queries]
    shaping = opts.per_source is not None or opts.diverse
    depth = max(opts.k, CANDIDATES) if (opts.mode == "hybrid" or shaping) else opts.k
    dense: list[Ranked] = []
    qvecs = None
    if opts.mode != "keyword":
        qvecs = embedder.encode(list(queries), kind="query")
        result = index.search(qvecs, depth, subset)
        # A row id of -1 is faiss's "no hit" (a NaN score, or fewer rows than asked for).
        dense = [
            Ranked(i[i >= 0], s[i >= 0]) for s, i in zip(result.scores, result.ids, strict=True)
        ]
    out = []
    for n, q in enumerate(queries):
        if opts.mode == "dense":
            ranked = Ranked(dense[n].rows, dense[n].scores, dense=dense[n].scores)
        else:
            kw = _keyword(store, q, depth, opts.where)
            ranked = Ranked(kw.rows, kw.scores, keyword=kw.scores)
            if opts.mode == "hybrid":
                d = dense[n]
                ids, scores = blend((d.rows, d.scores), (kw.rows, kw.scores))
                ranked = Ranked(ids, scores, _parts(ids, d), _parts(ids, kw))
        out.append(_shape(ranked, opts, store, vectors, None if qvecs is None else qvecs[n]))
    return out


def _keyword(store: ChunkStore, query: str, depth: int, where: Mapping[str, Any] | None) -> Ranked:
    fts = keyword_query(query)
    if fts is None:
        return Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
    ids, scores = store.keyword_search(fts, depth, where)
    return Ranked(ids, scores)


def _parts(ids: np.ndarray, source: Ranked) -> np.ndarray:
    """Each id's score in ``source`` (NaN where absent)."""
    lookup = dict(zip(source.rows.tolist(), source.scores.tolist(), strict=True))
    return np.array([lookup.get(i, np.nan) for i in ids.tolist()], dtype=np.float32)


def _shape(
    ranked: Ranked, opts: Options, store: ChunkStore, vectors: np.ndarray, qvec: np.ndarray | None
) -> Ranked:
    if opts.min_score is not None:
        ranked = ranked.take(ranked.scores >= opts.min_score)
    if opts.per_source is not None and len(ranked.rows):
        records = store.fetch(ranked.rows)
        sources = [records[int(r)].source for r in ranked.rows]
        ranked = ranked.take(cap_per_source(ranked.rows, sources, opts.per_source))
    if opts.diverse and len(ranked.rows):
        picked = mmr(ranked.scores, np.asarray(vectors[ranked.rows]), opts.k)
        ranked = ranked.take(picked)
    return ranked.take(np.arange(min(opts.k, len(ranked.rows))))
