"""Approximate faiss indexes: which one to build, how to build it, and how to tune it.

Exact search reads every vector for every query, so its latency grows linearly with the corpus.
Above :data:`FLAT_MAX_ROWS` rows ``auto`` switches to an inverted-file index (IVF) whose search
breadth (``nprobe``) is tuned at build time against exact search on the corpus's own rows, so
the recall promise (:data:`TARGET_RECALL`) is measured, not assumed. Everything here is a recipe
on raw faiss objects; :class:`semsearch.index.FaissIndex` wraps the result.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..store.npy import RowFile

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf", "ivfpq")

#: ``auto`` stays exact up to this many rows. Measured on the 2-core dev box shared with other
#: jobs (faiss 1.15.1, 384-d clustered data, k=10, one OpenMP thread, median of 200 single
#: queries, three sessions at load 4-12): exact flat takes 0.5-0.7 ms at 10k rows, 1.2-1.6 ms
#: at 20k (one very busy run: 6 ms), 1.9-7 ms at 30k, 15-37 ms at 50k and 20-100 ms at 100k,
#: where the vectors no longer stay in cache. A tuned IVF takes 0.2 / 0.5 / 0.8 / 0.9 / 1.9 ms
#: at the same sizes: 3x faster at 20k (not worth losing exactness), ~8x from 30k on. Flat
#: crosses "a few ms" between 20k and 30k rows.
FLAT_MAX_ROWS = 25_000
#: What ``auto`` builds above the crossover. Measured at 1M x 384 on the same box (load ~12,
#: so absolute times are ~3x an idle machine): IVF2048 built in 148 s, tuned nprobe=6, recall@10
#: 0.952 on held-out rows / 0.962 on fresh queries, 0.69 ms per query; HNSW32 built in 794 s,
#: tuned efSearch=48, recall 0.952 / 0.944, 0.30 ms per query; exact flat 373 ms. Both are far
#: past 10x; IVF builds 5x faster, needs no graph (~0.25 GB at 1M), keeps its recall on fresh
#: queries, and handles duplicates and ``subset`` filters better (a graph walk loses both).
AUTO_APPROX = "ivf"
#: Below this many rows an approximate type is pointless (and IVF/PQ cannot train): build flat.
MIN_APPROX_ROWS = 256
#: Recall@10 that build-time tuning must reach on held-out corpus rows.
TARGET_RECALL = 0.95
TUNE_QUERIES = 200
TUNE_K = 10
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)
#: k-means sample per list: faiss warns below 39, and more only adds training time.
IVF_TRAIN_PER_LIST = 40
IVF_KMEANS_ITER = 10
#: ivfpq: PQ candidates fetched per wanted hit, then re-scored exactly from the float vectors.
PQ_RERANK = 8
PQ_MIN_CANDIDATES = 64
#: ivf (4-bit fast-scan codes): candidates per wanted hit and at least, re-scored exactly.
#: Measured on the 100k stand-in rows (nlist 512): 4x reaches recall@10 0.954 at nprobe 64
#: in 0.84 ms, where IndexIVFFlat took 3.3 ms (load 11); 1x tops out near 0.93.
IVF_RERANK = 4
IVF_MIN_CANDIDATES = 1024
#: Tuning queries between two releases of the mapped rows' pages (see FaissIndex.tune).
TUNE_BLOCK = 4
#: Rows per block when streaming vectors from the memory-mapped source: 24 MB at 384-d, and
#: the exact ground truth's scores for the tuning queries 13 MB (65,536 rows held ~300 MB).
BLOCK_ROWS = 16_384

_FOURCC = {b"IxFI": "flat", b"IHNf": "hnsw", b"IwFl": "ivf", b"IwPf": "ivf", b"IwPQ": "ivfpq"}
#: The four-byte tag of faiss's ``IndexIVFFlat``, which kept a copy of the vectors in its lists.
LEGACY_IVF = b"IwFl"


def concrete(faiss: Any, index: Any) -> Any:
    """The index as its concrete class, taking over ownership of the C++ object (a bare
    ``downcast_index`` leaves it owned by the generic proxy, which frees it when collected)."""
    if type(index) is not faiss.Index:
        return index
    out = faiss.downcast_index(index)
    if index.this.own():
        index.this.disown()
        out.this.own(True)
    return out


def choose_type(index_type: str, n: int) -> str:
    """The concrete type to build for ``n`` rows (``auto`` resolved, tiny corpora made flat)."""
    if index_type == "auto":
        return "flat" if n <= FLAT_MAX_ROWS else AUTO_APPROX
    return "flat" if n < MIN_APPROX_ROWS else index_type


def ivf_lists(n: int) -> int:
    """About 2·sqrt(n) lists (a power of two), with enough rows per list to train k-means."""
    target = 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n))))
    return max(1, min(target, n // IVF_TRAIN_PER_LIST))


def pq_shape(dim: int, n: int) -> tuple[int, int]:
    """(sub-quantizers, bits): 8-d sub-vectors of 8 bits, fewer bits when rows are scarce."""
    m = max(s for s in range(1, max(1, dim // 8) + 1) if dim % s == 0)
    nbits = max(1, min(8, int(math.log2(max(2, n // IVF_TRAIN_PER_LIST)))))
    return m, nbits


def new_index(faiss: Any, kind: str, dim: int, n: int) -> Any:
    """An empty (untrained) faiss index of ``kind`` sized for ``n`` rows."""
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = concrete(faiss, faiss.index_factory(dim, f"HNSW{HNSW_M},Flat", ip))
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index
    nlist = ivf_lists(n)
    if kind == "ivf":  # 4-bit codes scanned in SIMD registers, candidates re-scored exactly
        spec = f"IVF{nlist},PQ{fastscan_m(dim)}x4fs"
    else:
        m, nbits = pq_shape(dim, n)
        spec = f"IVF{nlist},PQ{m}x{nbits}"
    index = concrete(faiss, faiss.index_factory(dim, spec, ip))
    index.cp.niter = IVF_KMEANS_ITER
    index.cp.spherical = True  # unit-norm data: keep centroids on the sphere
    index.cp.min_points_per_centroid = 1  # we size the sample ourselves; silences warnings
    index.pq.cp.min_points_per_centroid = 1
    index.pq.cp.niter = IVF_KMEANS_ITER
    if kind == "ivfpq":
        index.do_polysemous_training = False  # the factory's default; costs a minute, unused
    return index


def fastscan_m(dim: int) -> int:
    """Sub-quantizers of the ``ivf`` codes: 4-d sub-vectors (an even count where possible),
    i.e. half a byte per 4 dimensions, 1/32 of the float rows."""
    divisors = [s for s in range(1, max(1, dim // 4) + 1) if dim % s == 0]
    even = [s for s in divisors if s % 2 == 0]
    return max(even or divisors)


def rescored(index: Any) -> bool:
    """Whether ``index`` holds compressed codes whose candidates are re-scored exactly from
    the float rows (``ivf`` and ``ivfpq``), so searching needs ``vectors.npy``."""
    return hasattr(index, "pq")


def rerank_width(index: Any, fetch: int) -> int:
    """Candidates fetched from the codes and re-scored exactly for ``fetch`` wanted hits."""
    if kind_of(index) == "ivf":
        return max(fetch * IVF_RERANK, IVF_MIN_CANDIDATES)
    return max(fetch * PQ_RERANK, PQ_MIN_CANDIDATES)


def train_rows(index: Any, n: int) -> int:
    """How many rows to train on: bounded, so memory and time do not grow with the corpus."""
    if not hasattr(index, "nlist"):
        return 0
    want = index.nlist * IVF_TRAIN_PER_LIST
    if hasattr(index, "pq"):
        want = max(want, (1 << index.pq.nbits) * IVF_TRAIN_PER_LIST)
    return min(n, want)


def sample_rows(vectors: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random rows, gathered in sorted order. A memory map's rows are read from its
    file (:class:`RowFile`): faulting them in mapped the pages around every row, so 82,000
    rows scattered over a 1M-row ``vectors.npy`` mapped nearly all 1.5 GB of it."""
    rows = np.sort(rng.choice(len(vectors), size=count, replace=False))
    return take_rows(vectors, rows)


def take_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]`` as float32; read from the file when ``vectors`` maps a whole file."""
    reader = RowFile.of(vectors)
    if reader is not None:
        return np.asarray(reader.take(rows), dtype=np.float32)
    return np.asarray(vectors[rows], dtype=np.float32)


def block_rows(vectors: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop-1`` as contiguous float32 (from the file for a whole-file map)."""
    reader = RowFile.of(vectors)
    if reader is not None:
        return np.asarray(reader.block(start, stop), dtype=np.float32)
    return np.ascontiguousarray(vectors[start:stop], dtype=np.float32)


def kind_of(index: Any) -> str:
    """The index type; ``IndexIVFFlat`` (what ``ivf`` built before its codes) is one too."""
    name = type(index).__name__
    kinds = {"IndexFlatIP": "flat", "IndexHNSWFlat": "hnsw", "IndexIVFFlat": "ivf"}
    kinds["IndexIVFPQFastScan"] = "ivf"
    return kinds.get(name, "ivfpq" if name == "IndexIVFPQ" else name)


def sniff_kind(path: Path) -> str | None:
    """Index type from the file's four-byte tag, to pick the memory-mapping flags."""
    return _FOURCC.get(_tag(path))


def is_legacy(path: Path) -> bool:
    """An ``IndexIVFFlat`` file (a second copy of the vectors): converted on the next write."""
    return _tag(path) == LEGACY_IVF


def _tag(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError:
        return b""


def read_flags(faiss: Any, kind: str | None) -> int:
    """Flags that memory-map the bulk of each type (measured on faiss 1.15: combining the IVF
    and flat-codes flags fails for IVF, and plain IO_FLAG_MMAP copies flat codes)."""
    if kind in ("ivf", "ivfpq"):
        return int(faiss.IO_FLAG_MMAP)
    if kind == "hnsw":
        return int(faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC)
    return int(faiss.IO_FLAG_MMAP_IFC)


def param_name(kind: str) -> str | None:
    return {"hnsw": "efSearch", "ivf": "nprobe", "ivfpq": "nprobe"}.get(kind)


def get_param(index: Any) -> int | None:
    if hasattr(index, "hnsw"):
        return int(index.hnsw.efSearch)
    if hasattr(index, "nprobe"):
        return int(index.nprobe)
    return None


def set_param(index: Any, value: int) -> None:
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(value)
    elif hasattr(index, "nprobe"):
        index.nprobe = int(min(value, index.nlist))


def param_candidates(index: Any) -> list[int]:
    """Search breadths to try, cheapest first, ending with the widest sensible one."""
    if hasattr(index, "hnsw"):
        return list(HNSW_EF)
    if hasattr(index, "nlist"):
        steps = sorted({int(b * 2**e) for e in range(20) for b in (1, 1.5)})
        return [s for s in steps if s < index.nlist] + [int(index.nlist)]
    return []


def search_parameters(faiss: Any, index: Any, sel: Any, value: int | None) -> Any:
    """A SearchParameters of the subclass the index reads (a plain one would drop the tuned
    nprobe/efSearch back to faiss defaults), or None when nothing differs from the index."""
    if hasattr(index, "hnsw"):
        ef = index.hnsw.efSearch if value is None else value
        return faiss.SearchParametersHNSW(sel=sel, efSearch=int(ef))
    if hasattr(index, "nprobe"):
        nprobe = index.nprobe if value is None else min(value, index.nlist)
        return faiss.SearchParametersIVF(sel=sel, nprobe=int(nprobe))
    return None if sel is None else faiss.SearchParameters(sel=sel)


def describe(index: Any) -> dict[str, Any]:
    """The parameters that define ``index``, for the manifest (all recoverable from the file)."""
    kind = kind_of(index)
    out: dict[str, Any] = {"index_type": kind}
    if kind == "hnsw":
        out.update(
            M=int(index.hnsw.nb_neighbors(1)),
            efConstruction=int(index.hnsw.efConstruction),
            efSearch=int(index.hnsw.efSearch),
        )
    elif kind in ("ivf", "ivfpq"):
        out.update(nlist=int(index.nlist), nprobe=int(index.nprobe))
        if kind == "ivf" and rescored(index):
            out.update(pq_m=int(index.pq.M), pq_nbits=4, rerank=IVF_RERANK)
        if kind == "ivfpq":
            out.update(pq_m=int(index.pq.M), pq_nbits=int(index.pq.nbits), rerank=PQ_RERANK)
    return out


class Selector:
    """A faiss bitmap selector over ``ids`` that keeps its bitmap alive (faiss holds a raw
    pointer). One bit per row: cheaper to build than a hash set for large filters."""

    def __init__(self, faiss: Any, ids: np.ndarray | None, n: int) -> None:
        self.sel = None  # no filter
        if ids is not None:
            mask = np.zeros(n, dtype=bool)
            mask[ids] = True
            self.bits = np.packbits(mask, bitorder="little")
            self.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(self.bits))


class ExactNeighbours:
    """Exact top-k of a few corpus rows (used as queries) over the corpus streamed in blocks:
    the tuning ground truth, built in the same pass that adds the rows so the corpus is read
    once. Each row is left out of its own answer (and the index's): a row finds itself at
    score 1 (IVF always probes its list), a free hit that would overstate recall by up to 1/k.
    Left out, it estimates recall for queries near but not in the corpus; at 1M rows it was
    within 0.01 of the recall on fresh queries. Queries unlike any document score lower."""

    def __init__(self, vectors: np.ndarray, n_queries: int, k: int, rng: np.random.Generator):
        n = len(vectors)
        self.rows = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
        self.queries = np.ascontiguousarray(take_rows(vectors, self.rows))
        self._vectors = vectors
        self.k = min(k, n - 1)
        self._scores = np.empty((len(self.rows), 0), dtype=np.float32)
        self._ids = np.empty((len(self.rows), 0), dtype=np.int64)

    def update(self, block: np.ndarray, start: int) -> None:
        if self.k <= 0:
            return
        scores = self.queries @ block.T
        inside = (self.rows >= start) & (self.rows < start + len(block))
        scores[np.flatnonzero(inside), self.rows[inside] - start] = -np.inf
        ids = np.broadcast_to(np.arange(start, start + len(block), dtype=np.int64), scores.shape)
        scores = np.hstack([self._scores, scores])
        ids = np.hstack([self._ids, ids])
        keep = min(self.k, scores.shape[1])
        part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        self._scores = np.take_along_axis(scores, part, 1)
        self._ids = np.take_along_axis(ids, part, 1)

    def recall(self, search: Callable[[np.ndarray, int], np.ndarray]) -> float:
        """Mean recall@k of ``search(queries, k) -> ids`` with each query's own row dropped.

        A returned row scoring at least the true k-th score counts as found: with tied
        scores any of the tied rows is an equally correct answer."""
        found = search(self.queries, self.k + 1)
        hits = 0
        for q, row, kth, got in zip(
            self.queries, self.rows, self._scores[:, -1], found, strict=True
        ):
            got = got[(got != row) & (got >= 0) & (got < len(self._vectors))]
            got = np.unique(got[: self.k])
            if len(got):
                scores = take_rows(self._vectors, got) @ q
                hits += int(np.count_nonzero(scores >= kth - 1e-5))
        return hits / (self.k * len(self.rows))


def tune(
    index: Any,
    truth: ExactNeighbours,
    search: Callable[[np.ndarray, int, int], np.ndarray],
    target: float = TARGET_RECALL,
    candidates: Sequence[int] | None = None,
) -> tuple[int | None, float | None]:
    """Smallest search breadth whose measured recall reaches ``target`` (else the widest tried),
    set on ``index``. Returns (breadth, recall); (None, None) when nothing can be measured."""
    options = list(param_candidates(index) if candidates is None else candidates)
    if not options or truth.k <= 0:
        return None, None
    value, recall = options[-1], 0.0
    for value in options:
        recall = truth.recall(functools.partial(_with_breadth, search, value))
        if recall >= target:
            break
    set_param(index, value)
    return get_param(index), recall


def _with_breadth(
    search: Callable[[np.ndarray, int, int], np.ndarray], value: int, q: np.ndarray, k: int
) -> np.ndarray:
    return search(q, k, value)
