"""The live generation opened for reading, safely against concurrent writers."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embed import Embedder
from ..errors import IndexFormatError
from ..index import FaissIndex, NumpyIndex, VectorIndex, index_class
from ..index.ann import MIN_APPROX_ROWS
from ..index.segmented import Part, SegmentedIndex, SegmentedVectors
from ..store.layout import IndexDir, Live
from ..store.manifest import FAISS, VECTORS, Manifest, check_files
from ..store.npy import load_vectors
from ..store.segments import Segment, SegmentedStore

log = logging.getLogger("semsearch")

#: How many times a reader re-resolves the live generation when a writer swaps generations under it.
_ATTEMPTS = 50


@dataclass
class View:
    """One generation, open: its manifest, its segments' chunk stores, vector indexes and
    vectors, read by global row. The stores are closed when the last search holding the
    view lets go of it."""

    gen: Path
    pointer: tuple[str, ...]
    manifest: Manifest
    store: SegmentedStore
    index: VectorIndex
    vectors: SegmentedVectors  # memory-mapped, per segment
    #: The model of these vectors: a query is embedded by the view it searches, so a handle
    #: that follows the index to another model (progressive phase 2) never mixes the two.
    embedder: Embedder

    def __post_init__(self) -> None:
        weakref.finalize(self, self.store.close)


#: Segments with fewer rows are searched exactly with NumPy, whatever the backend.
SMALL_EXACT_ROWS = MIN_APPROX_ROWS


def open_view(
    index_dir: IndexDir, embedder: Embedder, backend: str, live: Live | None = None
) -> View:
    """Open the live generation (``live``, when the caller has just read it); retry on the
    newer one when a writer swapped (or removed) it while we were opening it, so readers
    never see a missing or mixed generation."""
    last: Exception | None = None
    seen: tuple[str, ...] | None = None  # the pointer when the last failed attempt began
    for _ in range(_ATTEMPTS):
        try:
            live = live or index_dir.live()
            return _open(index_dir.path, live, embedder, backend)
        except (IndexFormatError, OSError) as exc:
            last, tried, live = exc, (live.pointer if live is not None else seen), None
            try:
                seen = index_dir.pointer()
            except IndexFormatError:
                break
            if seen == tried:  # the pointer did not move: the failure is the index's own
                break
    if isinstance(last, OSError):
        raise IndexFormatError(f"index at {index_dir.path} cannot be read: {last}") from None
    raise last if last is not None else IndexFormatError(f"cannot open {index_dir.path}")


def _open(root: Path, live: Live, embedder: Embedder, backend: str) -> View:
    pointer, gen, manifest = live
    problems = {p.split(":", 1)[0]: p for p in check_files(gen, manifest)}
    faiss_damaged = {k.rpartition("/")[0]: p for k, p in problems.items() if k.endswith(FAISS)}
    problems = {k: p for k, p in problems.items() if not k.endswith(FAISS)}
    if problems:
        raise IndexFormatError(f"index at {root} is damaged: {next(iter(problems.values()))}")
    if embedder.name != manifest.model:
        raise IndexFormatError(
            f"index at {root} was built with model {manifest.model!r}, not {embedder.name!r}"
        )
    if embedder.dim != manifest.dim:
        raise IndexFormatError(
            f"index at {root} has dimension {manifest.dim}, the model gives {embedder.dim}"
        )
    store = SegmentedStore.open(gen, manifest, mapped=True)
    try:
        parts, blocks = [], []
        for seg in store.segments:
            damaged = faiss_damaged.get("" if seg.ref.name == gen.name else seg.ref.name)
            index, vectors = _segment_index(seg, manifest.dim, backend, damaged, root)
            parts.append(Part(index, seg.offset, seg.ref.rows, seg.store.dead_rows()))
            blocks.append(vectors)
        one = len(parts) == 1 and not len(parts[0].dead)
        index = parts[0].searcher if one else SegmentedIndex(manifest.dim, parts)
    except BaseException:
        store.close()
        raise
    if len(index) != manifest.chunks:
        store.close()
        raise IndexFormatError(
            f"index at {root} is damaged: {len(index)} vectors for {manifest.chunks} chunks"
        )
    searched = SegmentedVectors(manifest.dim, blocks)
    return View(gen, pointer, manifest, store, index, searched, embedder)


def _segment_index(
    seg: Segment, dim: int, backend: str, faiss_damaged: str | None, root: Path
) -> tuple[VectorIndex, np.ndarray]:
    """One segment's vectors (memory-mapped) and the index searching them."""
    vectors = load_vectors(seg.path / VECTORS, dim, shared=True)
    if len(vectors) != seg.ref.rows:
        raise IndexFormatError(
            f"index at {root} is damaged: {seg.ref.name}/{VECTORS} has {len(vectors)} rows"
        )
    index: VectorIndex
    if faiss_damaged:
        # Derived from the vectors, which are intact: search them exactly instead.
        log.warning("%s; searching the vectors exactly until the next update", faiss_damaged)
        index = NumpyIndex(dim, vectors)
    elif seg.ref.rows < SMALL_EXACT_ROWS:
        # Always flat (no approximate type is built this small), so exact NumPy search gives
        # the same hits without importing faiss (~40 ms of a cold CLI query).
        index = NumpyIndex(dim, vectors)
    elif index_class(backend) is FaissIndex and (seg.path / FAISS).is_file():
        try:
            index = FaissIndex.load(seg.path / FAISS, dim, vectors=vectors)
        except IndexFormatError as exc:
            log.warning("%s; searching the vectors exactly until the next update", exc)
            index = NumpyIndex(dim, vectors)
    else:
        index = NumpyIndex(dim, vectors)
    if len(index) != seg.ref.rows:
        raise IndexFormatError(
            f"index at {root} is damaged: {len(index)} vectors in {seg.ref.name} for "
            f"{seg.ref.rows} rows"
        )
    return index, vectors
