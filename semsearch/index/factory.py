"""Choosing and building a vector index: ``backend="auto"``, ``index_type="auto"``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import MissingDependencyError, UsageError
from ..store.npy import release
from . import ann
from .base import BACKENDS, VectorIndex
from .faiss_index import FaissIndex, import_faiss
from .numpy_index import NumpyIndex

INDEX_TYPES = ann.INDEX_TYPES


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
    faiss = import_faiss()
    kind = ann.choose_type(kind, n)
    raw = ann.new_index(faiss, kind, dim, n)
    rng = np.random.default_rng(seed)
    if not raw.is_trained:
        raw.train(ann.sample_rows(vectors, ann.train_rows(raw, n), rng))
    truth = (
        None if kind == "flat" else ann.ExactNeighbours(vectors, ann.TUNE_QUERIES, ann.TUNE_K, rng)
    )
    for start in range(0, n, ann.BLOCK_ROWS):  # read from the file, never mapped: bounded RSS
        block = ann.block_rows(vectors, start, start + ann.BLOCK_ROWS)
        raw.add(block)
        if truth is not None:
            truth.update(block, start)
        del block
        if progress is not None:
            progress(min(start + ann.BLOCK_ROWS, n), n)
    out = FaissIndex(dim, raw, vectors=vectors if kind in ("ivf", "ivfpq") else None)
    if truth is not None:
        out.tune(truth, target_recall)
        release(vectors)
    return out


def faiss_available() -> bool:
    try:
        import_faiss()
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
        import_faiss()
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
