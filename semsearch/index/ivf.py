"""An inverted file whose lists hold row numbers only, scored exactly from the float rows.

faiss's ``IndexIVFFlat`` stores a second full copy of every vector inside its inverted lists:
1.55 GB beside the 1.54 GB ``vectors.npy`` at a million 384-d rows, and as much memory while it
is built or opened. :class:`RowLists` keeps only the centroids, one offset per list and the row
numbers sorted by list (8 bytes a row); a search picks the ``nprobe`` nearest centroids and
scores every row of those lists exactly against the (memory-mapped) float rows. The candidates
are the ones ``IndexIVFFlat`` would scan with the same centroids, so recall and its build-time
tuning are unchanged, and every returned score is exact.

It mimics the faiss index attributes :mod:`semsearch.index.ann` reads (``d``, ``ntotal``,
``nlist``, ``nprobe``, ``is_trained``, ``train``, ``add``), so the build, tuning and
:class:`~semsearch.index.FaissIndex` treat it like the faiss types. Training (k-means on a
bounded sample) and the assignment of rows to lists use faiss.

File: a 32-byte header (:data:`MAGIC`, version, dim, nlist, nprobe, rows), then the centroids
(float32, nlist x dim), the list offsets (int64, nlist + 1) and the rows (int64), little-endian.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError
from .base import top_k

MAGIC = b"SsIV"
VERSION = 1
_HEADER = np.dtype(
    [
        ("magic", "S4"),
        ("version", "<u4"),
        ("dim", "<u4"),
        ("nlist", "<u4"),
        ("nprobe", "<u4"),
        ("pad", "<u4"),
        ("rows", "<u8"),
    ]
)
#: Rows assigned to their lists at once (bounds the distance matrix faiss allocates).
ASSIGN_BLOCK = 16_384


class RowLists:
    """Centroids plus row numbers grouped by nearest centroid. See the module docstring."""

    def __init__(self, faiss: Any, dim: int, nlist: int, niter: int = 10, seed: int = 0):
        self._faiss = faiss
        self.d = dim
        self.nlist = int(nlist)
        self.nprobe = 1
        self.niter = niter
        self.seed = seed
        self.centroids = np.zeros((0, dim), dtype=np.float32)
        self.offsets = np.zeros(self.nlist + 1, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []  # list numbers of rows added since the last seal
        self._quantizer: Any = None

    # -- faiss-like surface ---------------------------------------------------------------

    @property
    def is_trained(self) -> bool:
        return len(self.centroids) == self.nlist

    @property
    def ntotal(self) -> int:
        return len(self.rows) + sum(len(p) for p in self._pending)

    def train(self, sample: np.ndarray) -> None:
        """Spherical k-means on ``sample`` (unit-norm rows: centroids stay on the sphere)."""
        km = self._faiss.Kmeans(
            self.d, self.nlist, niter=self.niter, spherical=True, seed=self.seed,
            min_points_per_centroid=1, verbose=False,
        )  # fmt: skip
        km.train(np.ascontiguousarray(sample, dtype=np.float32))
        self.centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        self._quantizer = None

    def add(self, block: np.ndarray) -> None:
        """Rows ``ntotal ..`` go to their nearest centroid's list."""
        if not self.is_trained:
            raise IndexFormatError("internal error: an inverted file must be trained first")
        block = np.ascontiguousarray(block, dtype=np.float32)
        for start in range(0, len(block), ASSIGN_BLOCK):
            self._pending.append(self.assign(block[start : start + ASSIGN_BLOCK], 1)[:, 0])

    def assign(self, x: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` nearest lists of each row of ``x`` (inner product), best first."""
        if self._quantizer is None:
            self._quantizer = self._faiss.IndexFlatIP(self.d)
            self._quantizer.add(self.centroids)
        return np.asarray(self._quantizer.search(x, n)[1], dtype=np.int64)

    def clone(self) -> RowLists:
        self._seal()
        out = RowLists(self._faiss, self.d, self.nlist, self.niter, self.seed)
        out.nprobe, out.centroids = self.nprobe, self.centroids
        out.offsets, out.rows = self.offsets.copy(), self.rows.copy()
        return out

    # -- search ---------------------------------------------------------------------------

    def search(
        self,
        q: np.ndarray,
        k: int,
        vectors: np.ndarray,
        subset: np.ndarray | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` rows of the probed lists per query, scored exactly from ``vectors``
        (ties to the smaller row); ``-1`` / ``-inf`` pad queries with fewer candidates.
        ``subset`` (sorted unique rows) restricts the candidates."""
        self._seal()
        nprobe = max(1, min(self.nprobe if nprobe is None else int(nprobe), self.nlist))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        if self.ntotal == 0:
            return scores, ids
        lists = self.assign(q, nprobe) if nprobe < self.nlist else None
        for i in range(len(q)):
            cand = self._candidates(None if lists is None else lists[i], subset)
            if len(cand) == 0:
                continue
            s = np.asarray(vectors[cand], dtype=np.float32) @ q[i]
            kk = min(k, len(cand))
            best_s, best_i = top_k(s[None], cand[None], kk)
            scores[i, :kk], ids[i, :kk] = best_s[0], best_i[0]
        return scores, ids

    def _candidates(self, lists: np.ndarray | None, subset: np.ndarray | None) -> np.ndarray:
        """Sorted rows of ``lists`` (all rows when None), within ``subset`` if given."""
        if lists is None:
            cand = np.sort(self.rows)
        else:
            off = self.offsets
            cand = np.sort(np.concatenate([self.rows[off[j] : off[j + 1]] for j in lists]))
        if subset is not None and len(cand):
            pos = np.minimum(np.searchsorted(subset, cand), max(len(subset) - 1, 0))
            cand = cand[subset[pos] == cand] if len(subset) else cand[:0]
        return cand

    def _seal(self) -> None:
        """Fold the rows added since the last search into the sorted lists."""
        if not self._pending:
            return
        start = len(self.rows)
        new = np.concatenate(self._pending)
        old_lists = np.repeat(np.arange(self.nlist, dtype=np.int64), np.diff(self.offsets))
        all_lists = np.concatenate([old_lists, new])
        all_rows = np.concatenate([self.rows, np.arange(start, start + len(new), dtype=np.int64)])
        order = np.argsort(all_lists, kind="stable")  # rows stay ascending within a list
        self.rows = all_rows[order]
        counts = np.bincount(all_lists, minlength=self.nlist)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._pending = []

    # -- file -----------------------------------------------------------------------------

    def write(self, path: Path) -> None:
        self._seal()
        head = np.zeros(1, dtype=_HEADER)
        head[0] = (MAGIC, VERSION, self.d, self.nlist, self.nprobe, 0, len(self.rows))
        with open(path, "wb") as f:
            f.write(head.tobytes())
            for arr, dtype in ((self.centroids, "<f4"), (self.offsets, "<i8"), (self.rows, "<i8")):
                f.write(np.ascontiguousarray(arr, dtype=dtype).tobytes())
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def read(cls, faiss: Any, path: Path) -> RowLists:
        """Memory-maps the lists; raises IndexFormatError for anything inconsistent."""
        try:
            size = path.stat().st_size
            if size < _HEADER.itemsize:
                raise ValueError("shorter than its header")
            head = np.fromfile(path, dtype=_HEADER, count=1)[0]
            if head["magic"] != MAGIC or head["version"] != VERSION:
                raise ValueError("not a row-list inverted file of a known version")
            dim, nlist, n = int(head["dim"]), int(head["nlist"]), int(head["rows"])
            if dim <= 0 or nlist <= 0:
                raise ValueError("empty dimension or list count")
            expected = _HEADER.itemsize + 4 * nlist * dim + 8 * (nlist + 1) + 8 * n
            if size != expected:
                raise ValueError(f"file is {size} bytes, its header implies {expected}")
            base = _HEADER.itemsize
            centroids = np.memmap(path, "<f4", "r", base, (nlist, dim))
            base += 4 * nlist * dim
            offsets = np.array(np.memmap(path, "<i8", "r", base, (nlist + 1,)))
            rows = np.memmap(path, "<i8", "r", base + 8 * (nlist + 1), (n,)) if n else None
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{path}: not a readable inverted file ({exc})") from None
        if offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) < 0):
            raise IndexFormatError(f"{path}: inverted file has inconsistent list offsets")
        if rows is not None and (rows.min() < 0 or rows.max() >= n):
            raise IndexFormatError(f"{path}: inverted file lists rows beyond its size")
        out = cls(faiss, dim, nlist)
        out.nprobe = max(1, min(int(head["nprobe"]), nlist))
        out.centroids = np.asarray(centroids)
        out.offsets = offsets
        out.rows = np.zeros(0, dtype=np.int64) if rows is None else np.asarray(rows)
        return out


def sniff(path: Path) -> bool:
    """Whether ``path`` starts like a :class:`RowLists` file."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False
