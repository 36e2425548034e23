"""From queries to ranked rows: dense, keyword or hybrid candidates, then the page shaping.

``SemanticIndex.search`` calls :func:`retrieve`; this module decides which rows, the API
turns them into hits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .chunkstore import ChunkStore
from .embed import Embedder
from .errors import UsageError
from .index import VectorIndex
from .rank import blend, cap_per_source, keyword_query, mmr

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("dense", "keyword", "hybrid")
#: Default retrieval mode, chosen by measurement on SciFact (README, "Ranking quality").
DEFAULT_MODE: Mode = "hybrid"
#: Candidates taken from each list before fusion or re-ranking (200 measured best on SciFact).
CANDIDATES = 200


@dataclass(frozen=True)
class Options:
    k: int
    mode: Mode = DEFAULT_MODE
    where: Mapping[str, Any] | None = None
    per_source: int | None = None
    diverse: bool = False
    min_score: float | None = None

    def check(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k <= 0:
            raise UsageError(f"k must be a positive integer, got {self.k!r}")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.per_source is not None and self.per_source <= 0:
            raise UsageError(f"per-source cap must be positive, got {self.per_source}")


@dataclass(frozen=True)
class Ranked:
    """Rows and scores for one query, best first."""

    rows: np.ndarray
    scores: np.ndarray


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
        dense = [Ranked(i, s) for s, i in zip(result.scores, result.ids, strict=True)]
    out = []
    for n, q in enumerate(queries):
        if opts.mode == "dense":
            ranked = dense[n]
        else:
            ranked = _keyword(store, q, depth, opts.where)
            if opts.mode == "hybrid":
                ids, scores = blend((dense[n].rows, dense[n].scores), (ranked.rows, ranked.scores))
                ranked = Ranked(ids, scores)
        out.append(_shape(ranked, opts, store, vectors, None if qvecs is None else qvecs[n]))
    return out


def _keyword(store: ChunkStore, query: str, depth: int, where: Mapping[str, Any] | None) -> Ranked:
    fts = keyword_query(query)
    if fts is None:
        return Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
    ids, scores = store.keyword_search(fts, depth, where)
    return Ranked(ids, scores)


def _shape(
    ranked: Ranked, opts: Options, store: ChunkStore, vectors: np.ndarray, qvec: np.ndarray | None
) -> Ranked:
    rows, scores = ranked.rows, ranked.scores
    if opts.min_score is not None:
        keep = scores >= opts.min_score
        rows, scores = rows[keep], scores[keep]
    if opts.per_source is not None and len(rows):
        records = store.fetch(rows)
        keep = cap_per_source(rows, [records[int(r)].source for r in rows], opts.per_source)
        rows, scores = rows[keep], scores[keep]
    if opts.diverse and len(rows):
        picked = mmr(scores, np.asarray(vectors[rows]), opts.k)
        rows, scores = rows[picked], scores[picked]
    return Ranked(rows[: opts.k], scores[: opts.k])
