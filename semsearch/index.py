"""Vector index backends behind one interface.

Both backends are exact inner-product search over L2-normalised vectors and
return identical results: hits sorted by score descending, ties broken by the
smaller id, and never more than ``len(index)`` hits. ``FaissIndex`` is the fast
path; ``NumpyIndex`` needs nothing but NumPy and doubles as the test oracle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import IndexFormatError, MissingDependencyError, UsageError

BACKENDS = ("auto", "faiss", "numpy")
#: Rows of the database scored at once by the NumPy backend; bounds temporary memory.
DB_BLOCK = 65_536
#: Queries scored at once.
QUERY_BLOCK = 256


class SearchResult(NamedTuple):
    """Top-k for a batch of queries: ``scores`` float32 and ``ids`` int64, both ``(n_queries, k')``
    where ``k' = min(k, candidates)``."""

    scores: np.ndarray
    ids: np.ndarray


class VectorIndex(ABC):
    """Row ``i`` of the added vectors has id ``i``; mapping ids to chunks is the caller's job."""

    backend: str
    file_name: str

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise UsageError(f"vector dimension must be positive, got {dim}")
        self.dim = dim

    @abstractmethod
    def add(self, vectors: np.ndarray) -> None:
        """Append rows; they get the next ids."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        """Best ``k`` rows per query; ``subset`` (sorted int64 ids) restricts the candidates."""

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


class NumpyIndex(VectorIndex):
    """Exact search with a matrix product and ``argpartition``, in fixed-size blocks."""

    backend = "numpy"
    file_name = "vectors.npy"

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
        k = _check_k(k)
        data = self.vectors
        ids = None if subset is None else np.asarray(subset, dtype=np.int64)
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


class FaissIndex(VectorIndex):
    """Exact inner-product search with ``faiss.IndexFlatIP``."""

    backend = "faiss"
    file_name = "index.faiss"

    def __init__(self, dim: int, index: object | None = None) -> None:
        super().__init__(dim)
        faiss = _import_faiss()
        self._index = index if index is not None else faiss.IndexFlatIP(dim)

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(self._check(vectors, "vectors"))  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return int(self._index.ntotal)  # type: ignore[attr-defined]

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        faiss = _import_faiss()
        q = self._check(queries, "queries")
        k = _check_k(k)
        n = len(self) if subset is None else len(subset)
        kk = min(k, n)
        if kk == 0:
            empty = np.empty((len(q), 0))
            return SearchResult(empty.astype(np.float32), empty.astype(np.int64))
        params = None
        if subset is not None:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.ascontiguousarray(subset, dtype=np.int64))
            )
        scores, ids = self._index.search(q, kk, params=params)  # type: ignore[attr-defined]
        # faiss does not order equal scores; impose the same rule as the NumPy backend.
        order = np.lexsort((ids, -scores), axis=1)
        return SearchResult(
            np.take_along_axis(scores, order, 1).astype(np.float32),
            np.take_along_axis(ids, order, 1).astype(np.int64),
        )

    def save(self, path: Path) -> None:
        _import_faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int) -> FaissIndex:
        faiss = _import_faiss()
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as exc:
            raise IndexFormatError(
                f"{path}: not a readable faiss index ({_first_line(exc)})"
            ) from None
        if index.d != dim:
            raise IndexFormatError(f"{path}: faiss index has dimension {index.d}, expected {dim}")
        return cls(dim, index)


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


def load_vectors(path: Path, dim: int) -> np.ndarray:
    """Memory-map a ``.npy`` of float32 rows, checking its shape (never unpickles)."""
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: file is missing") from None
    except (ValueError, OSError) as exc:
        raise IndexFormatError(f"{path}: not a valid vector file ({_first_line(exc)})") from None
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dim:
        raise IndexFormatError(
            f"{path}: expected float32 vectors of dimension {dim}, "
            f"found {vectors.dtype} {vectors.shape}"
        )
    return vectors


def faiss_available() -> bool:
    try:
        _import_faiss()
    except MissingDependencyError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """``auto`` means faiss when it imports, else numpy."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "faiss" if faiss_available() else "numpy"
    if backend == "faiss":
        _import_faiss()
    return backend


def index_class(backend: str) -> type[VectorIndex]:
    return {"faiss": FaissIndex, "numpy": NumpyIndex}[resolve_backend(backend)]


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or k <= 0:
        raise UsageError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _import_faiss():  # type: ignore[no-untyped-def]
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", "faiss") from None
    return faiss


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
