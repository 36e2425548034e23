"""Inner-product search with faiss: exact flat, or an approximate type tuned at build time."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError, MissingDependencyError, UsageError
from ..store.manifest import FAISS
from ..store.npy import load_vectors, release, warm
from ..util import first_line
from . import ann, rescore
from .base import (
    TIE_MARGIN,
    Pool,
    SearchResult,
    VectorIndex,
    best_of,
    best_order,
    check_k,
    check_subset,
)
from .numpy_index import NumpyIndex

#: The search of a re-scoring index after which its float rows are mapped in the background.
WARM_AT_SEARCH = 2


class FaissIndex(VectorIndex):
    """Inner-product search with a faiss index: exact ``IndexFlatIP`` by default, or any type
    :func:`build_vector_index` makes. ``vectors`` (the float rows, usually memory-mapped) is
    needed by ``ivf`` and ``ivfpq``: their lists hold compressed codes (a small fraction of
    the vectors, no second copy), and their candidates are re-scored exactly from the rows."""

    backend = "faiss"
    file_name = FAISS

    def __init__(self, dim: int, index: Any = None, *, vectors: np.ndarray | None = None) -> None:
        super().__init__(dim)
        faiss = import_faiss()
        self._index = faiss.IndexFlatIP(dim) if index is None else ann.concrete(faiss, index)
        self.index_type = ann.kind_of(self._index)
        if self.index_type not in ann.INDEX_TYPES:
            raise IndexFormatError(f"unsupported faiss index type {self.index_type}")
        self.recall = 1.0 if self.index_type == "flat" else None
        self._rows = rescore.Rows(vectors) if vectors is not None else None
        # set by load(): the index is a read-only memory map of this file, tuned to this value
        self._mapped_from: Path | None = None
        self._mapped_param = ann.get_param(self._index)
        self._searches = 0
        self._warm_asked = False

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

    @property
    def needs_rows(self) -> bool:
        """Whether searching reads the float rows (``vectors.npy``)."""
        return ann.rescored(self._index)

    @property
    def legacy(self) -> bool:
        """An ``IndexIVFFlat`` keeping its own copy of the vectors (converted on a write)."""
        return type(self._index).__name__ == "IndexIVFFlat"

    def add(self, vectors: np.ndarray) -> None:
        v = self._check(vectors, "vectors")
        if self.needs_rows and self._rows is None:
            raise UsageError(f"an {self.index_type} index needs its float vectors to add rows")
        self._writable()
        self._index.add(v)
        if self._rows is not None:
            self._rows.append(v)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> SearchResult:
        q = self._check(queries, "queries")
        k = check_k(k)
        total = len(self)
        ids = None if subset is None else check_subset(subset, total)
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
        self._searched()
        scores, found, _ = self._candidates(q, kk + min(kk, TIE_MARGIN), ids, boost=boost)
        scores, found, short = best_of(scores, found, kk)
        if short.any():  # probed lists / graph held fewer than k' hits: answer those exactly
            s, i = self._exact(q[short], kk, ids)
            scores[short], found[short] = s, i
        return SearchResult(scores, found)

    def search_pool(
        self, queries: np.ndarray, k: int, pool: int, subset: np.ndarray | None = None
    ) -> Pool:
        """``ivf``/``ivfpq``: every candidate :meth:`search` re-scores for ``k`` (at most
        ``pool``), best first, with the vectors it read to re-score them (for at most
        :data:`rescore.SCORE_QUERIES` queries); the first ``k`` are :meth:`search`'s."""
        q = self._check(queries, "queries")
        kk = check_k(k)
        total = len(self)
        ids = None if subset is None else check_subset(subset, total)
        exact = ids is not None and len(ids) <= ann.FLAT_MAX_ROWS  # as search answers it
        if not ann.rescored(self._index) or exact or kk >= (total if ids is None else len(ids)):
            return super().search_pool(queries, k, pool, subset)
        boost = 1.0 if ids is None else total / len(ids)
        self._searched()
        keep = len(q) <= rescore.SCORE_QUERIES
        scores, found, gathered = self._candidates(
            q, kk + min(kk, TIE_MARGIN), ids, boost=boost, keep_rows=keep
        )
        wanted = max(kk, min(pool, found.shape[1]))
        scores, found, _, at = best_order(scores, found, wanted)
        if ((found >= 0).sum(axis=1) < kk).any():  # too few in the probed lists: exactly
            return super().search_pool(queries, k, pool, subset)
        named = np.isfinite(scores)
        rows = None
        if gathered is not None:
            rows = gathered.take(at)
            if not named.all():
                rows[~named] = 0.0
        return Pool(scores, np.where(named, found, -1), rows)

    def save(self, path: Path) -> None:
        mapped = self._mapped_from
        if mapped is not None and ann.get_param(self._index) == self._mapped_param:
            # unchanged since load (faiss would write a mapped IVF as a reference to its file)
            if Path(path).resolve() != mapped.resolve():
                shutil.copyfile(mapped, path)
            return
        self._writable()
        import_faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, vectors: np.ndarray | None = None) -> FaissIndex:
        """Memory-maps the file. ``vectors`` defaults to the ``vectors.npy`` beside ``path``
        and is only read for ``ivf`` and ``ivfpq``."""
        faiss = import_faiss()
        path = Path(path)
        flags = ann.read_flags(faiss, ann.sniff_kind(path)) | faiss.IO_FLAG_READ_ONLY
        try:
            index = ann.concrete(faiss, faiss.read_index(str(path), flags))
        except RuntimeError as exc:
            raise IndexFormatError(
                f"{path}: not a readable faiss index ({first_line(exc)})"
            ) from None
        if index.d != dim:
            raise IndexFormatError(f"{path}: faiss index has dimension {index.d}, expected {dim}")
        if vectors is None and ann.rescored(index):
            vectors = load_vectors(path.with_name(NumpyIndex.file_name), dim)
        if vectors is not None and len(vectors) != index.ntotal:
            raise IndexFormatError(
                f"{path}: index has {index.ntotal} rows but its vectors have {len(vectors)}"
            )
        out = cls(dim, index, vectors=vectors)
        out._mapped_from = path
        return out

    # -- internals -------------------------------------------------------------------------

    def _searched(self) -> None:
        """Count a search; at the second, map the float rows' pages in the background
        (:func:`semsearch.store.npy.warm`): re-scoring reads ~1,000 scattered rows a query,
        each a page fault on a fresh map. Not at the first, so a one-query process (a CLI
        query) does not spend the CPU."""
        if self._warm_asked:
            return
        self._searches += 1  # (racy between threads: warm is asked at most once per map)
        if self._searches >= WARM_AT_SEARCH and self._rows is not None:
            self._warm_asked = True
            warm(self._rows.all())

    def _search_flat(self, q: np.ndarray, kk: int, ids: np.ndarray | None) -> SearchResult:
        faiss = import_faiss()
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
        keep_rows: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, rescore.Gathered | None]:
        """Raw approximate hits (``-1`` pads missing ones); ``ivf``/``ivfpq`` scored exactly,
        and with ``keep_rows`` the rows read to score them (else None).
        ``boost`` widens the search when a filter leaves only a fraction of the rows."""
        if value is None:
            value = ann.get_param(self._index)
        if boost > 1.0 and value is not None:
            value = int(min(np.ceil(value * boost), ann.HNSW_EF[-1] * 4))
        faiss = import_faiss()
        sel = ann.Selector(faiss, ids, len(self))
        params = ann.search_parameters(faiss, self._index, sel.sel, value)
        if not ann.rescored(self._index):
            scores, found = self._index.search(q, fetch, params=params)
            self._check_ids(found)
            return scores, found, None
        if self._rows is None:
            raise UsageError(f"an {self.index_type} index needs its float vectors to re-score")
        wide = ann.rerank_width(self._index, fetch)
        _, found = self._index.search(q, wide, params=params)
        self._check_ids(found)
        scores, gathered = self._rows.scores(q, found, keep_rows)
        return scores, found, gathered

    def _exact(self, q: np.ndarray, kk: int, ids: np.ndarray | None) -> SearchResult:
        """Exact answer without a flat index: from the float rows when we have them, else from
        the HNSW storage (a flat index) or an IVF probing every list."""
        if self._rows is not None:
            return NumpyIndex(self.dim, self._rows.all()).search(q, kk, ids)
        faiss = import_faiss()
        sel = ann.Selector(faiss, ids, len(self))
        if self.index_type == "hnsw":  # its storage is a flat index, scanned in id order
            storage = faiss.downcast_index(self._index.storage)  # owned by the index
            params = ann.search_parameters(faiss, storage, sel.sel, None)
            scores, found = storage.search(q, kk, params=params)
        else:  # lists are scanned one after another: leave room for ties across lists
            params = ann.search_parameters(faiss, self._index, sel.sel, self._index.nlist)
            scores, found = self._index.search(q, kk + min(kk, TIE_MARGIN), params=params)
        self._check_ids(found)
        s, i, _ = best_of(scores, found, kk)
        return SearchResult(s, i)

    def tune(self, truth: ann.ExactNeighbours, target: float) -> None:
        """Set the cheapest search breadth whose measured recall@k reaches ``target``."""
        rows = self._rows
        reading = rows.read_from_file() if rows is not None else contextlib.nullcontext()
        with reading:  # a build's tuning reads its scattered rows from the file, not the map
            _, self.recall = ann.tune(self._index, truth, self._tune_search, target)

    def _tune_search(self, q: np.ndarray, k: int, value: int) -> np.ndarray:
        """Ids as ``search`` would rank them, with the breadth set to ``value``. Re-scoring
        types drop the mapped pages of their rows every few queries: tuning touches ~1,000
        scattered rows per query, and the kernel maps pages around each one, so 200 queries
        would otherwise hold most of ``vectors.npy`` in the process (1.5 GB at 1M)."""
        if self._rows is None:
            return best_of(*self._candidates(q, k, value=value)[:2], k)[1]
        out = []
        for start in range(0, len(q), ann.TUNE_BLOCK):
            block = q[start : start + ann.TUNE_BLOCK]
            out.append(best_of(*self._candidates(block, k, value=value)[:2], k)[1])
            release(self._rows.all())
        return np.vstack(out) if out else np.empty((0, k), dtype=np.int64)

    def _check_ids(self, found: np.ndarray) -> None:
        if found.size and found.max() >= len(self):
            raise IndexFormatError("faiss index returned ids beyond its size: the file is damaged")

    def _writable(self) -> None:
        """A loaded index is a read-only memory map (faiss aborts the process on writes):
        read it fully into memory before the first change."""
        if self._mapped_from is None:
            return
        faiss, value = import_faiss(), ann.get_param(self._index)
        try:
            index = ann.concrete(faiss, faiss.read_index(str(self._mapped_from)))
        except RuntimeError as exc:
            raise IndexFormatError(f"{self._mapped_from}: {first_line(exc)}") from None
        if value is not None:
            ann.set_param(index, value)
        self._index, self._mapped_from = index, None


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", package="faiss-cpu") from None
    return faiss
