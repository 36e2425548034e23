"""Vector search over a generation's segments: one index per segment, results merged exactly.

Segment ``i``'s rows are global rows ``offset_i ..``; rows of tombstoned chunks are never
returned. Each segment's index returns its best ``k`` (ties to the smaller row), so the
merged best ``k`` equal those of one index over all live rows whenever the segment indexes
are exact (flat or NumPy).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .base import Pool, SearchResult, VectorIndex, check_k, check_subset, merge_pools


class Part(NamedTuple):
    """One segment's index, its first global row, its row count and its dead rows."""

    searcher: VectorIndex
    offset: int
    rows: int
    dead: np.ndarray  # sorted local rows of tombstoned chunks


class SegmentedIndex(VectorIndex):
    """Fans a search out to every segment's index and merges the best ``k``."""

    file_name = ""

    def __init__(self, dim: int, parts: Sequence[Part]) -> None:
        super().__init__(dim)
        self.parts = tuple(parts)
        self.total = sum(p.rows for p in self.parts)
        self._live = sum(p.rows - len(p.dead) for p in self.parts)
        first = self.parts[0].searcher if self.parts else None
        self.backend = first.backend if first is not None else "numpy"
        self.index_type = first.index_type if len(self.parts) == 1 and first else "segmented"
        recalls = [p.searcher.recall for p in self.parts]
        self.recall = None if None in recalls else min(r for r in recalls if r is not None)
        #: Live local rows of each segment with tombstones (None: every row is live).
        self._alive = [
            np.setdiff1d(np.arange(p.rows, dtype=np.int64), p.dead, assume_unique=True)
            if len(p.dead)
            else None
            for p in self.parts
        ]

    def __len__(self) -> int:
        return self._live

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        return SearchResult(*self._fan_out(queries, k, 0, subset)[:2])

    def search_pool(
        self, queries: np.ndarray, k: int, pool: int, subset: np.ndarray | None = None
    ) -> Pool:
        return self._fan_out(queries, k, pool, subset)

    def _fan_out(self, queries: np.ndarray, k: int, pool: int, subset: np.ndarray | None) -> Pool:
        """Each segment's best ``k`` (with ``pool``: its :meth:`search_pool`), merged."""
        q = self._check(queries, "queries")
        k = check_k(k)
        ids = None if subset is None else check_subset(subset, max(self.total, 1))
        found: list[Pool] = []
        for p, alive in zip(self.parts, self._alive, strict=True):
            local = alive if ids is None else self._local(p, ids)
            if local is not None and len(local) == 0:
                continue
            if local is None and p.rows == 0:
                continue
            s = p.searcher
            r = s.search_pool(q, k, pool, local) if pool else Pool(*s.search(q, k, local))
            found.append(r._replace(ids=np.where(r.ids >= 0, r.ids + p.offset, -1)))
        return merge_pools(found, max(k, pool), len(q))

    @staticmethod
    def _local(p: Part, ids: np.ndarray) -> np.ndarray:
        """The candidate rows of one segment among the global ``ids``, local."""
        lo, hi = np.searchsorted(ids, [p.offset, p.offset + p.rows])
        local = ids[lo:hi] - p.offset
        if len(p.dead) and len(local):
            local = np.setdiff1d(local, p.dead, assume_unique=True)
        return local

    def add(self, vectors: np.ndarray) -> None:
        raise NotImplementedError("segments are immutable: write a new segment instead")

    def save(self, path: Path) -> None:
        raise NotImplementedError("each segment saves its own index")

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        raise NotImplementedError("open segments through semsearch.api.view")


class SegmentedVectors:
    """The segments' memory-mapped vectors read by global row (``vectors[rows]``)."""

    def __init__(self, dim: int, blocks: Sequence[np.ndarray]) -> None:
        self.dim = dim
        self.blocks = tuple(blocks)
        self.offsets = np.cumsum([0, *(len(b) for b in self.blocks)])[:-1].astype(np.int64)
        self.shape = (int(sum(len(b) for b in self.blocks)), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray | Sequence[int] | int) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[np.array([rows])][0]
        arr = np.asarray(rows, dtype=np.int64)
        if len(self.blocks) == 1:
            return np.asarray(_rows_of(self.blocks[0], arr), dtype=np.float32)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        which = np.searchsorted(self.offsets, arr, side="right") - 1
        for i, block in enumerate(self.blocks):
            pos = np.flatnonzero(which == i)
            if len(pos):
                out[pos] = _rows_of(block, arr[pos] - self.offsets[i])
        return out


def _rows_of(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``block[rows]`` gathered by ``take`` on a plain view: a memory map's own indexing
    (its subclass hooks, the general fancy-index path) took 2.5x as long for a hybrid
    query's ~1,000 rows (docs/code-search.md, "Query speed, round 5": the blend)."""
    return block.view(np.ndarray).take(rows, axis=0)
