"""Exact search with NumPy alone: the fallback backend and the oracle the others must match."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..store.manifest import VECTORS
from ..store.npy import load_vectors
from .base import DB_BLOCK, QUERY_BLOCK, SearchResult, VectorIndex, check_k, check_subset, top_k


class NumpyIndex(VectorIndex):
    """Exact search with a matrix product and ``argpartition``, in fixed-size blocks."""

    backend = "numpy"
    file_name = VECTORS

    def __init__(self, dim: int, vectors: np.ndarray | None = None) -> None:
        super().__init__(dim)
        self._blocks: list[np.ndarray] = [] if vectors is None else [vectors]

    @property
    def vectors(self) -> np.ndarray:
        if len(self._blocks) != 1:
            merged = (
                np.concatenate(self._blocks)
                if self._blocks
                else np.zeros((0, self.dim), dtype=np.float32)
            )
            self._blocks = [merged]
        return self._blocks[0]

    def add(self, vectors: np.ndarray) -> None:
        self._blocks.append(self._check(vectors, "vectors").copy())

    def __len__(self) -> int:
        return sum(len(b) for b in self._blocks)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        q = self._check(queries, "queries")
        k = check_k(k)
        data = self.vectors
        ids = None if subset is None else check_subset(subset, len(data))
        n = len(data) if ids is None else len(ids)
        kk = min(k, n)
        out_s = np.empty((len(q), kk), dtype=np.float32)
        out_i = np.empty((len(q), kk), dtype=np.int64)
        for qs in range(0, len(q), QUERY_BLOCK):
            qb = q[qs : qs + QUERY_BLOCK]
            best_s = np.empty((len(qb), 0), dtype=np.float32)
            best_i = np.empty((len(qb), 0), dtype=np.int64)
            for ds in range(0, n, DB_BLOCK):
                if ids is None:
                    block_ids = np.arange(ds, min(ds + DB_BLOCK, n), dtype=np.int64)
                    block = data[ds : ds + DB_BLOCK]
                else:
                    block_ids = ids[ds : ds + DB_BLOCK]
                    block = data[block_ids]
                scores = qb @ block.T
                s, i = top_k(scores, np.broadcast_to(block_ids, scores.shape), kk)
                best_s, best_i = top_k(np.hstack([best_s, s]), np.hstack([best_i, i]), kk)
            out_s[qs : qs + len(qb)] = best_s
            out_i[qs : qs + len(qb)] = best_i
        return SearchResult(out_s, out_i)

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, self.vectors, allow_pickle=False)

    @classmethod
    def load(cls, path: Path, dim: int) -> NumpyIndex:
        vectors = load_vectors(path, dim)
        return cls(dim, vectors)
