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

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import ann
from .errors import IndexFormatError, MissingDependencyError, UsageError
from .npy import memmap_npy

BACKENDS = ("auto", "faiss", "numpy")
INDEX_TYPES = ann.INDEX_TYPES
#: Rows of the database scored at once by the NumPy backend; bounds temporary memory.
DB_BLOCK = 65_536
#: Queries scored at once.
QUERY_BLOCK = 256
#: Approximate types fetch this many extra candidates (at most k more) so that equal scores
#: straddling the cut resolve to the smaller id, as in exact search.
TIE_MARGIN = 16


class SearchResult(NamedTuple):
    """Top-k for a batch of queries: ``scores`` float32 and ``ids`` int64, both ``(n_queries, k')``
    where ``k' = min(k, candidates)``."""

    scores: np.ndarray
    ids: np.ndarray


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
        ids = None if subset is None else _check_subset(subset, len(data))
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
    """Inner-product search with a faiss index: exact ``IndexFlatIP`` by default, or any type
    :func:`build_vector_index` makes. ``vectors`` (the float rows, usually memory-mapped) is
    needed only by ``ivfpq``, which re-scores its compressed candidates exactly."""

    backend = "faiss"
    file_name = "index.faiss"

    def __init__(self, dim: int, index: Any = None, *, vectors: np.ndarray | None = None) -> None:
        super().__init__(dim)
        faiss = _import_faiss()
        self._index = faiss.IndexFlatIP(dim) if index is None else ann.concrete(faiss, index)
        self.index_type = ann.kind_of(self._index)
        if self.index_type not in INDEX_TYPES:
            raise IndexFormatError(f"unsupported faiss index type {self.index_type}")
        self.recall = 1.0 if self.index_type == "flat" else None
        self._rows = ann.Rows(vectors) if vectors is not None else None
        # set by load(): the index is a read-only memory map of this file, tuned to this value
        self._mapped_from: Path | None = None
        self._mapped_param = ann.get_param(self._index)

    @property
    def params(self) -> dict[str, Any]:
        """Type and parameters, all recoverable from the saved file (``recall`` is not)."""
        return ann.describe(self._index)

    def set_search_params(self, value: int) -> None:
        """Override the tuned breadth (``efSearch`` for hnsw, ``nprobe`` for ivf/ivfpq)."""
        if ann.param_name(self.index_type) is None:
            raise UsageError(f"a {self.index_type} index has no search parameter")
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise UsageError(f"search parameter must be a positive integer, got {value!r}")
        ann.set_param(self._index, int(value))
        self.recall = None

    def add(self, vectors: np.ndarray) -> None:
        v = self._check(vectors, "vectors")
        if self.index_type == "ivfpq" and self._rows is None:
            raise UsageError("an ivfpq index needs its float vectors to add rows")
        self._writable()
        self._index.add(v)
        if self._rows is not None:
            self._rows.append(v)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        q = self._check(queries, "queries")
        k = _check_k(k)
        total = len(self)
        ids = None if subset is None else _check_subset(subset, total)
        n = total if ids is None else len(ids)
        kk = min(k, n)
        if kk == 0:
            empty = np.empty((len(q), 0))
            return SearchResult(empty.astype(np.float32), empty.astype(np.int64))
        if self.index_type == "flat":
            return self._search_flat(q, kk, ids)
        if ids is not None and len(ids) <= ann.FLAT_MAX_ROWS:
            return self._exact(q, kk, ids)  # small filter: exact is cheap, ANN would miss hits
        boost = 1.0 if ids is None else total / len(ids)
        scores, found = self._candidates(q, kk + min(kk, TIE_MARGIN), ids, boost=boost)
        scores, found, short = _best(scores, found, kk)
        if short.any():  # probed lists / graph held fewer than k' hits: answer those exactly
            s, i = self._exact(q[short], kk, ids)
            scores[short], found[short] = s, i
        return SearchResult(scores, found)

    def save(self, path: Path) -> None:
        mapped = self._mapped_from
        if mapped is not None and ann.get_param(self._index) == self._mapped_param:
            # unchanged since load (faiss would write a mapped IVF as a reference to its file)
            if Path(path).resolve() != mapped.resolve():
                shutil.copyfile(mapped, path)
            return
        self._writable()
        _import_faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, vectors: np.ndarray | None = None) -> FaissIndex:
        """Memory-maps the file. ``vectors`` defaults to the ``vectors.npy`` beside ``path``
        and is only read for ``ivfpq``."""
        faiss = _import_faiss()
        path = Path(path)
        kind = ann.sniff_kind(path)
        flags = ann.read_flags(faiss, kind) | faiss.IO_FLAG_READ_ONLY
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise IndexFormatError(
                f"{path}: not a readable faiss index ({_first_line(exc)})"
            ) from None
        if index.d != dim:
            raise IndexFormatError(f"{path}: faiss index has dimension {index.d}, expected {dim}")
        index = ann.concrete(faiss, index)
        if vectors is None and ann.kind_of(index) == "ivfpq":
            vectors = load_vectors(path.with_name(NumpyIndex.file_name), dim)
        if vectors is not None and len(vectors) != index.ntotal:
            raise IndexFormatError(
                f"{path}: index has {index.ntotal} rows but its vectors have {len(vectors)}"
            )
        out = cls(dim, index, vectors=vectors)
        out._mapped_from = path
        return out

    # -- internals -------------------------------------------------------------------------

    def _search_flat(self, q: np.ndarray, kk: int, ids: np.ndarray | None) -> SearchResult:
        faiss = _import_faiss()
        sel = ann.Selector(faiss, ids, len(self))
        params = ann.search_parameters(faiss, self._index, sel.sel, None)
        scores, found = self._index.search(q, kk, params=params)
        self._check_ids(found)
        # faiss does not order equal scores; impose the same rule as the NumPy backend.
        order = np.lexsort((found, -scores), axis=1)
        return SearchResult(
            np.take_along_axis(scores, order, 1).astype(np.float32),
            np.take_along_axis(found, order, 1).astype(np.int64),
        )

    def _candidates(
        self,
        q: np.ndarray,
        fetch: int,
        ids: np.ndarray | None = None,
        *,
        boost: float = 1.0,
        value: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw approximate hits (``-1`` pads missing ones); ``ivfpq`` re-scored exactly.
        ``boost`` widens the search when a filter leaves only a fraction of the rows."""
        faiss = _import_faiss()
        sel = ann.Selector(faiss, ids, len(self))
        if value is None:
            value = ann.get_param(self._index)
        if boost > 1.0 and value is not None:
            value = int(min(np.ceil(value * boost), ann.HNSW_EF[-1] * 4))
        params = ann.search_parameters(faiss, self._index, sel.sel, value)
        if self.index_type != "ivfpq":
            scores, found = self._index.search(q, fetch, params=params)
            self._check_ids(found)
            return scores, found
        if self._rows is None:
            raise UsageError("an ivfpq index needs its float vectors to re-score candidates")
        wide = max(fetch * ann.PQ_RERANK, ann.PQ_MIN_CANDIDATES)
        _, found = self._index.search(q, wide, params=params)
        self._check_ids(found)
        return self._rows.scores(q, found), found

    def _exact(self, q: np.ndarray, kk: int, ids: np.ndarray | None) -> SearchResult:
        """Exact answer without a flat index: from the float rows when we have them, else from
        the HNSW storage (a flat index) or an IVF probing every list."""
        if self._rows is not None:
            return NumpyIndex(self.dim, self._rows.all()).search(q, kk, ids)
        faiss = _import_faiss()
        sel = ann.Selector(faiss, ids, len(self))
        if self.index_type == "hnsw":  # its storage is a flat index, scanned in id order
            storage = faiss.downcast_index(self._index.storage)  # owned by the index
            params = ann.search_parameters(faiss, storage, sel.sel, None)
            scores, found = storage.search(q, kk, params=params)
        else:  # lists are scanned one after another: leave room for ties across lists
            params = ann.search_parameters(faiss, self._index, sel.sel, self._index.nlist)
            scores, found = self._index.search(q, kk + min(kk, TIE_MARGIN), params=params)
        self._check_ids(found)
        s, i, _ = _best(scores, found, kk)
        return SearchResult(s, i)

    def _tune_search(self, q: np.ndarray, k: int, value: int) -> np.ndarray:
        """Ids as ``search`` would rank them, with the breadth set to ``value``."""
        return _best(*self._candidates(q, k, value=value), k)[1]

    def _check_ids(self, found: np.ndarray) -> None:
        if found.size and found.max() >= len(self):
            raise IndexFormatError("faiss index returned ids beyond its size: the file is damaged")

    def _writable(self) -> None:
        """A loaded index is a read-only memory map (faiss aborts the process on writes):
        read it fully into memory before the first change."""
        if self._mapped_from is None:
            return
        faiss, value = _import_faiss(), ann.get_param(self._index)
        try:
            index = ann.concrete(faiss, faiss.read_index(str(self._mapped_from)))
        except RuntimeError as exc:
            raise IndexFormatError(f"{self._mapped_from}: {_first_line(exc)}") from None
        if value is not None:
            ann.set_param(index, value)
        self._index, self._mapped_from = index, None


def build_vector_index(
    backend: str,
    dim: int,
    vectors: np.ndarray,
    index_type: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    *,
    target_recall: float = ann.TARGET_RECALL,
    seed: int = 0,
) -> VectorIndex:
    """Build the index for all of ``vectors`` ((n, dim) float32, typically the memory-mapped
    ``vectors.npy``), reading it in blocks so memory beyond the index itself stays bounded.

    ``auto`` is exact flat up to :data:`ann.FLAT_MAX_ROWS` rows and IVF above. Approximate
    types train on a bounded sample and then tune their search breadth on held-out rows to the
    cheapest one reaching ``target_recall``; read ``.params`` and ``.recall`` for the manifest.
    ``progress(rows_added, total)`` is called after each block."""
    backend = resolve_backend(backend)
    kind = resolve_index_type(backend, index_type)
    if dim <= 0:
        raise UsageError(f"vector dimension must be positive, got {dim}")
    if not isinstance(vectors, np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise UsageError(f"vectors must have shape (n, {dim}), got {vectors.shape}")
    n = len(vectors)
    if backend == "numpy":
        index: VectorIndex = NumpyIndex(dim, vectors)
        if progress is not None:
            progress(n, n)
        return index
    faiss = _import_faiss()
    kind = ann.choose_type(kind, n)
    raw = ann.new_index(faiss, kind, dim, n)
    rng = np.random.default_rng(seed)
    if not raw.is_trained:
        raw.train(ann.sample_rows(vectors, ann.train_rows(raw, n), rng))
    truth = (
        None if kind == "flat" else ann.ExactNeighbours(vectors, ann.TUNE_QUERIES, ann.TUNE_K, rng)
    )
    for start in range(0, n, ann.BLOCK_ROWS):
        block = np.ascontiguousarray(vectors[start : start + ann.BLOCK_ROWS], dtype=np.float32)
        raw.add(block)
        if truth is not None:
            truth.update(block, start)
        if progress is not None:
            progress(start + len(block), n)
    out = FaissIndex(dim, raw, vectors=vectors if kind == "ivfpq" else None)
    if truth is not None:
        _, out.recall = ann.tune(out._index, truth, out._tune_search, target_recall)
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


def load_vectors(path: Path, dim: int) -> np.ndarray:
    """Memory-map a ``.npy`` of float32 rows, checking its shape (never unpickles)."""
    try:
        vectors = memmap_npy(path)
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: file is missing") from None
    except (ValueError, OSError, EOFError) as exc:
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


def resolve_index_type(backend: str, index_type: str) -> str:
    """Check ``index_type`` against a resolved backend: NumPy only does exact flat search."""
    if index_type not in INDEX_TYPES:
        raise UsageError(
            f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}"
        )
    if backend == "numpy" and index_type not in ("auto", "flat"):
        raise UsageError(
            f"index type {index_type!r} needs the faiss backend "
            "(pip install faiss-cpu, and use backend 'faiss' or 'auto')"
        )
    return "flat" if backend == "numpy" else index_type


def index_class(backend: str) -> type[VectorIndex]:
    classes: dict[str, type[VectorIndex]] = {"faiss": FaissIndex, "numpy": NumpyIndex}
    return classes[resolve_backend(backend)]


def _best(
    scores: np.ndarray, ids: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort faiss hits by (score desc, id asc), drop ``-1`` pads, keep ``kk``; also return the
    rows that had fewer than ``kk`` real hits."""
    valid = ids >= 0
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    ids = np.where(valid, ids, np.iinfo(np.int64).max).astype(np.int64)
    order = np.lexsort((ids, -scores), axis=1)[:, :kk]
    short = valid.sum(axis=1) < kk
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1), short


def _check_subset(subset: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique int64 ids within ``[0, n)``."""
    ids = np.asarray(subset)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise UsageError(f"subset must be a 1-D array of integer ids, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise UsageError(f"subset ids must lie in [0, {n}), got {ids.min()}..{ids.max()}")
    if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
        ids = np.unique(ids)
    return ids


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise UsageError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _import_faiss():  # type: ignore[no-untyped-def]
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", package="faiss-cpu") from None
    return faiss


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
