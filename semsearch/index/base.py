"""Vector index backends behind one interface.

Every index returns hits sorted by score descending, ties broken by the smaller id, and never
more than ``len(index)`` hits. ``NumpyIndex`` is exact and needs nothing but NumPy (it doubles
as the test oracle). ``FaissIndex`` wraps a faiss index of one of :data:`ann.INDEX_TYPES`:
``flat`` is exact and returns what ``NumpyIndex`` returns; ``hnsw``/``ivf``/``ivfpq`` are
approximate, with a search breadth tuned at build time to a measured recall
(:func:`build_vector_index`). The tuned breadth (efSearch / nprobe) is stored in the faiss file
itself, so ``load`` needs nothing else; ``ivfpq`` re-scores its candidates from the float
vectors and reads them from the ``vectors.npy`` next to its file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import UsageError
from ..util import unique_sorted

BACKENDS = ("auto", "faiss", "numpy")
#: Rows of the database scored at once by the NumPy backend; bounds temporary memory.
DB_BLOCK = 65_536
#: Queries scored at once.
QUERY_BLOCK = 256
#: Rows per matrix-vector product in :func:`row_dots` (one BLAS thread each).
DOT_BLOCK = 1024
#: Approximate types fetch this many extra candidates (at most k more) so that equal scores
#: straddling the cut resolve to the smaller id, as in exact search.
TIE_MARGIN = 16
#: :func:`best_order` partitions before sorting when it keeps at most 1/this of a row's hits,
#: for batches of at most ``PARTIAL_SORT_ROWS`` queries (one Python step per query).
PARTIAL_SORT = 4
PARTIAL_SORT_ROWS = 16


class SearchResult(NamedTuple):
    """Top-k for a batch of queries: ``scores`` float32 and ``ids`` int64, both ``(n_queries, k')``
    where ``k' = min(k, candidates)``."""

    scores: np.ndarray
    ids: np.ndarray


class Pool(NamedTuple):
    """:meth:`VectorIndex.search_pool`'s answer: ``scores`` and ``ids`` as in
    :class:`SearchResult`, and ``vectors``, each hit's float row ``(n_queries, k', dim)``
    (zeros at ``-1`` pads), where the index read them anyway to re-score (else None)."""

    scores: np.ndarray
    ids: np.ndarray
    vectors: np.ndarray | None = None


class VectorIndex(ABC):
    """Row ``i`` of the added vectors has id ``i``; mapping ids to chunks is the caller's job.

    ``index_type``, ``params`` and ``recall`` describe the index for the manifest: ``recall`` is
    the recall@10 measured when it was built (1.0 for exact types, None when unknown)."""

    backend: str
    file_name: str
    index_type: str = "flat"
    recall: float | None = 1.0

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise UsageError(f"vector dimension must be positive, got {dim}")
        self.dim = dim

    @property
    def params(self) -> dict[str, Any]:
        return {"index_type": self.index_type}

    @abstractmethod
    def add(self, vectors: np.ndarray) -> None:
        """Append rows; they get the next ids."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        """Best ``k`` rows per query; ``subset`` (int64 ids) restricts the candidates."""

    def search_pool(
        self, queries: np.ndarray, k: int, pool: int, subset: np.ndarray | None = None
    ) -> Pool:
        """The best ``k`` rows per query (as :meth:`search` returns them) followed by the
        next best, up to ``max(k, pool)`` rows in all, exactly scored and sorted. An index
        that re-scores candidates returns those it re-scored anyway, which may be fewer,
        with their vectors."""
        return Pool(*self.search(queries, max(k, pool), subset))

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write to ``path`` (a file); the caller makes it atomic."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        """Read from ``path``, memory-mapped where the format allows."""

    def _check(self, vectors: np.ndarray, what: str) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise UsageError(f"{what} must have shape (n, {self.dim}), got {v.shape}")
        return v


def row_dots(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inner product of each row with ``q`` (float32), :data:`DOT_BLOCK` rows per BLAS
    call: past about 1,500 x 384 OpenBLAS splits one matrix-vector product over threads,
    which took 36 ms instead of 0.06 ms for 2,000 rows on the busy 2-core machine."""
    if len(rows) <= DOT_BLOCK:
        return np.asarray(rows @ q, np.float32)
    out = np.empty(len(rows), np.float32)
    for start in range(0, len(rows), DOT_BLOCK):
        out[start : start + DOT_BLOCK] = rows[start : start + DOT_BLOCK] @ q
    return out


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of each row by score, ties to the smaller id, sorted. The brute-force rule
    every backend must match."""
    n = scores.shape[1]
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, 1).min(axis=1)
        tied_rows = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
        sel_s = np.take_along_axis(scores, part, 1)
        sel_i = np.take_along_axis(ids, part, 1)
        for r in tied_rows:  # rare: equal scores straddle the cut; take the smallest ids
            cand = np.flatnonzero(scores[r] >= kth[r])
            order = np.lexsort((ids[r, cand], -scores[r, cand]))[:k]
            sel_s[r], sel_i[r] = scores[r, cand[order]], ids[r, cand[order]]
        scores, ids = sel_s, sel_i
    order = np.lexsort((ids, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def best_of(
    scores: np.ndarray, ids: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort faiss hits by (score desc, id asc), drop ``-1`` pads, keep ``kk``; also return the
    rows that had fewer than ``kk`` real hits."""
    s, i, short, _ = best_order(scores, ids, kk)
    return s, i, short


def best_order(
    scores: np.ndarray, ids: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`best_of`, and the positions (per row) the kept hits came from."""
    valid = ids >= 0
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    ids = np.where(valid, ids, np.iinfo(np.int64).max).astype(np.int64)
    order = first_positions(scores, ids, kk)
    short = valid.sum(axis=1) < kk
    s, i = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    return s, i, short, order


def first_positions(scores: np.ndarray, ids: np.ndarray, kk: int) -> np.ndarray:
    """Per row, the positions of the best ``kk`` by (score desc, id asc), in that order.
    A few of many (a search's k of its ~1,000 re-scored candidates) are picked by a
    partition first: only the scores at or above the ``kk``-th best are sorted."""
    n = scores.shape[1]
    if not 0 < kk * PARTIAL_SORT <= n or len(scores) > PARTIAL_SORT_ROWS:
        return np.lexsort((ids, -scores), axis=1)[:, :kk]
    kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1]
    out = np.empty((len(scores), kk), np.int64)
    for r, (s, i) in enumerate(zip(scores, ids, strict=True)):
        cand = np.flatnonzero(s >= kth[r])  # ties at the cut included; NaN never passes
        if len(cand) < kk:  # NaN scores: sort the whole row as lexsort orders them
            out[r] = np.lexsort((i, -s))[:kk]
        else:
            out[r] = cand[np.lexsort((i[cand], -s[cand]))[:kk]]
    return out


def merge_pools(pools: Sequence[Pool], k: int, n_queries: int) -> Pool:
    """:func:`merge_best` of several pools (global ids), with each kept hit's vector when
    every pool has them (gathered from the pool it came from: no copy of them all)."""
    if not pools or any(p.vectors is None for p in pools):
        return Pool(*merge_best([p.scores for p in pools], [p.ids for p in pools], k, n_queries))
    if len(pools) == 1:
        return pools[0]
    ids = np.hstack([p.ids for p in pools])
    # the rule of top_k (ids are unique), with the positions the kept hits came from
    kk = min(k, ids.shape[1])
    best_s, best_i, _, at = best_order(np.hstack([p.scores for p in pools]), ids, kk)
    real = best_i != np.iinfo(np.int64).max
    starts = np.cumsum([0] + [p.ids.shape[1] for p in pools])
    which = np.searchsorted(starts, at, side="right") - 1
    out = np.zeros((*at.shape, pools[0].vectors.shape[2]), np.float32)  # type: ignore[union-attr]
    for w, p in enumerate(pools):
        q, j = np.nonzero((which == w) & real)
        out[q, j] = p.vectors[q, at[q, j] - starts[w]]  # type: ignore[index]
    return Pool(best_s, np.where(real, best_i, -1), out)


def located(
    keys: np.ndarray, wanted: np.ndarray, sorter: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``wanted``: a position in ``keys`` (ascending, or put in order by
    ``sorter``) and whether the key there is that value (where not, the position is any)."""
    if not len(keys):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    at = np.minimum(np.searchsorted(keys, wanted, sorter=sorter), len(keys) - 1)
    if sorter is not None:
        at = sorter[at]
    return at, keys[at] == wanted


def merge_best(
    scores: Sequence[np.ndarray], ids: Sequence[np.ndarray], k: int, n_queries: int
) -> SearchResult:
    """The best ``k`` of several result blocks (global ids, ``-1`` pads), by the rule of
    :func:`top_k`: how segments and shard groups become one answer."""
    if not scores:
        empty = np.empty((n_queries, 0))
        return SearchResult(empty.astype(np.float32), empty.astype(np.int64))
    if len(scores) == 1:
        return SearchResult(scores[0], ids[0])
    i = np.hstack(ids)
    named = i >= 0
    s = np.where(named, np.hstack(scores), -np.inf).astype(np.float32)
    i = np.where(named, i, np.iinfo(np.int64).max)
    best_s, best_i = top_k(s, i, min(k, s.shape[1]))
    return SearchResult(best_s, np.where(best_i == np.iinfo(np.int64).max, -1, best_i))


def check_subset(subset: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique int64 ids within ``[0, n)``."""
    ids = np.asarray(subset)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise UsageError(f"subset must be a 1-D array of integer ids, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise UsageError(f"subset ids must lie in [0, {n}), got {ids.min()}..{ids.max()}")
    if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
        ids = unique_sorted(ids)
    return ids


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise UsageError(f"k must be a positive integer, got {k!r}")
    return int(k)
