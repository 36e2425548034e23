"""Streaming, incremental builds: every change to an index is a new generation.

The builder keeps what has not changed (rows, chunk ids and vectors copied in bulk, never
re-embedded), drops what is gone, and asks an engine to chunk and embed only new and
changed documents, writing them in fixed-size batches. Memory is bounded by the batch,
not the corpus.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .chunkstore import ChunkStore
from .engine import ChunkParams, Engine, Item, Processed
from .errors import IndexFormatError, UsageError
from .index import (
    VectorIndex,
    build_vector_index,
    load_vectors,
    resolve_backend,
    resolve_index_type,
)
from .sources import Document, content_hash, read_document
from .store import (
    CHUNKS,
    FORMAT_VERSION,
    VECTORS,
    IndexDir,
    Manifest,
    VectorWriter,
    check_files,
)

log = logging.getLogger("semsearch")

#: Rows copied or added to a faiss index at a time.
COPY_BLOCK = 65_536

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Settings:
    """What decides the vectors and their layout; old vectors are reused only if these match."""

    model: str
    precision: str
    dim: int
    chunk_tokens: int
    overlap: int
    backend: str
    index_type: str = "auto"

    @property
    def chunking(self) -> ChunkParams:
        return ChunkParams(self.chunk_tokens, self.overlap)


@dataclass(frozen=True)
class Changes:
    """What a build should do to the live index.

    ``items`` are added or refreshed (a path or a Document; unchanged content is kept as is).
    Documents under ``roots`` that are not among ``items`` are removed, as are ``remove``.
    """

    items: Sequence[Item] = ()
    roots: Sequence[Path] = ()
    remove: frozenset[str] = frozenset()
    replace_all: bool = False


@dataclass(frozen=True)
class BuildStats:
    documents: int
    chunks: int
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: int
    embedded_chunks: int
    cache_hits: int
    seconds: float
    backend: str
    changed: bool

    @property
    def cache_hit_rate(self) -> float:
        total = self.embedded_chunks + self.cache_hits
        return self.cache_hits / total if total else 0.0


def build(
    index_dir: IndexDir,
    changes: Changes,
    engine: Engine,
    settings: Settings,
    *,
    progress: Progress | None = None,
    lock_timeout: float = 10.0,
) -> BuildStats:
    """Apply ``changes`` to the index at ``index_dir`` as one atomic new generation."""
    started = time.perf_counter()
    settings = replace(settings, backend=resolve_backend(settings.backend))
    resolve_index_type(settings.backend, settings.index_type)  # fail before any work
    with index_dir.lock(lock_timeout):
        index_dir.cleanup()
        gen = _Generation(index_dir, engine, settings, changes)
        try:
            stats = gen.run(progress)
        finally:
            gen.close()
    return replace(stats, seconds=time.perf_counter() - started)


@dataclass
class _Plan:
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    skipped: int = 0
    removed: int = 0
    process: list[Item] = field(default_factory=list)
    drop: set[str] = field(default_factory=set)  # old doc ids not copied over


class _Generation:
    """One build: owns the temporary generation until it is published or removed."""

    def __init__(
        self, index_dir: IndexDir, engine: Engine, settings: Settings, changes: Changes
    ) -> None:
        self.index_dir, self.engine, self.settings, self.changes = (
            index_dir,
            engine,
            settings,
            changes,
        )
        self.tmp: Path | None = None
        self.old_store: ChunkStore | None = None
        self.old_vectors: np.ndarray | None = None
        self.old_hashes: dict[str, str] = {}
        self.next_chunk_id = 0
        self._open_old()

    def _open_old(self) -> None:
        """Reuse the live generation only if it was built with the same settings."""
        if self.changes.replace_all or not self.index_dir.exists():
            return
        try:
            gen, m = self.index_dir.manifest()
            problems = check_files(gen, m)
        except IndexFormatError as exc:
            problems = [str(exc)]
        if problems:
            log.warning("rebuilding from scratch: the existing index is damaged (%s)", problems[0])
            return
        s = self.settings
        built_with = (m.model, m.precision, m.dim, m.chunk_tokens, m.overlap)
        if built_with != (s.model, s.precision, s.dim, s.chunk_tokens, s.overlap):
            return
        self.old_store = ChunkStore.open_readonly(gen / CHUNKS)
        self.old_vectors = load_vectors(gen / VECTORS, m.dim)
        self.old_hashes = {d.doc_id: d.sha256 for d in self.old_store.documents()}
        self.next_chunk_id = m.next_chunk_id

    def run(self, progress: Progress | None) -> BuildStats:
        plan = self._plan()
        if self.old_store is not None and not plan.process and not plan.drop:
            return self._stats(plan, changed=False)
        self.tmp = self.index_dir.new_tmp()
        self.store = ChunkStore.create(self.tmp / CHUNKS)
        self.writer = VectorWriter(self.tmp / VECTORS, self.settings.dim)
        self.row = 0
        self._copy_kept(plan.drop)
        total = len(plan.process)
        for done, result in enumerate(self.engine.process(plan.process, self.settings.chunking), 1):
            if result is None:
                plan.skipped += 1
            else:
                self._write(result)
            if progress:
                progress(done, total)
        self.store.commit()
        documents, chunks = self.store.count_documents(), self.store.count_chunks()
        if chunks == 0:
            raise UsageError("no text to index: every file was empty, binary or unreadable")
        self.store.close()
        self.writer.close()
        self._write_vector_index()
        self.index_dir.publish(self.tmp, self._manifest(documents, chunks))
        self.tmp = None
        return self._stats(plan, changed=True, documents=documents, chunks=chunks)

    def close(self) -> None:
        if self.tmp is not None:  # failed or interrupted: the live generation is untouched
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.old_store is not None:
            self.old_store.close()

    # --- deciding ---------------------------------------------------------------------------

    def _plan(self) -> _Plan:
        """Classify items by content hash; paths are read once here just to hash them."""
        plan = _Plan()
        seen: set[str] = set()
        check = bool(self.old_hashes)
        for item in self.changes.items:
            if isinstance(item, Document):
                doc_id, sha = item.doc_id, item.sha256
            elif check:
                doc = read_document(item)
                if doc is None:
                    plan.skipped += 1
                    continue
                doc_id, sha = doc.doc_id, doc.sha256
            else:
                doc_id, sha = str(item), None
            seen.add(doc_id)
            old = self.old_hashes.get(doc_id)
            if old is not None and old == sha:
                plan.unchanged += 1
                continue
            plan.process.append(item)
            if old is not None:
                plan.updated += 1
                plan.drop.add(doc_id)
            else:
                plan.added += 1
        prefixes = [str(r).rstrip("/") for r in self.changes.roots]
        for doc_id in self.old_hashes:
            gone = doc_id not in seen and any(
                doc_id == p or doc_id.startswith(p + "/") for p in prefixes
            )
            if gone or doc_id in self.changes.remove:
                plan.drop.add(doc_id)
        plan.removed = len(plan.drop) - plan.updated
        return plan

    # --- writing ----------------------------------------------------------------------------

    def _copy_kept(self, drop: set[str]) -> None:
        """Bulk-copy every old document not dropped: rows renumbered, ids and vectors kept."""
        if self.old_store is None or self.old_vectors is None:
            return
        kept_rows = self.store.copy_documents_from(self.old_store, drop)
        for start in range(0, len(kept_rows), COPY_BLOCK):
            block = kept_rows[start : start + COPY_BLOCK]
            self.writer.append(np.asarray(self.old_vectors[block], dtype=np.float32))
        self.row = len(kept_rows)

    def _write(self, result: Processed) -> None:
        reuse = self._old_ids_by_text(result.doc.doc_id)
        rows = []
        for i, r in enumerate(result.rows):
            chunk_id = reuse.pop(r[7], None)
            if chunk_id is None:
                chunk_id, self.next_chunk_id = self.next_chunk_id, self.next_chunk_id + 1
            rows.append((self.row + i, chunk_id, *r[2:]))
        self.row += len(rows)
        d = result.doc
        self.store.add_document(d.doc_id, d.source, d.sha256, rows, d.meta)
        self.writer.append(result.vectors)

    def _old_ids_by_text(self, doc_id: str) -> dict[str, int]:
        """An updated document keeps the ids of chunks whose text did not change."""
        if self.old_store is None or doc_id not in self.old_hashes:
            return {}
        out: dict[str, int] = {}
        for r in self.old_store.document_rows(doc_id):
            out.setdefault(r[7], r[1])
        return out

    def _write_vector_index(self) -> None:
        """Exact or approximate (tuned to recall@10 >= 0.95) index over the finished vectors."""
        if self.tmp is None:
            raise RuntimeError("internal error: no generation to write into")
        s = self.settings
        vectors = load_vectors(self.tmp / VECTORS, s.dim)
        index = build_vector_index(s.backend, s.dim, vectors, s.index_type)
        if index.file_name != VECTORS:  # the NumPy backend searches vectors.npy itself
            index.save(self.tmp / index.file_name)
        self.built = index

    def _manifest(self, documents: int, chunks: int) -> Manifest:
        return new_manifest(self.settings, documents, chunks, self.next_chunk_id, self.built)

    def _stats(
        self, plan: _Plan, *, changed: bool, documents: int = -1, chunks: int = -1
    ) -> BuildStats:
        if documents < 0 and self.old_store is not None:
            documents, chunks = self.old_store.count_documents(), self.old_store.count_chunks()
        return BuildStats(
            documents=documents,
            chunks=chunks,
            added=plan.added,
            updated=plan.updated,
            removed=plan.removed,
            unchanged=plan.unchanged,
            skipped=plan.skipped,
            embedded_chunks=self.engine.counts.embedded,
            cache_hits=self.engine.counts.cache_hits,
            seconds=0.0,
            backend=self.settings.backend,
            changed=changed,
        )


def new_manifest(
    s: Settings, documents: int, chunks: int, next_chunk_id: int, index: VectorIndex
) -> Manifest:
    """A manifest for a generation built with settings ``s`` into ``index``."""
    fields: dict[str, Any] = dict(
        format_version=FORMAT_VERSION,
        semsearch_version=__version__,
        model=s.model,
        precision=s.precision,
        dim=s.dim,
        chunk_tokens=s.chunk_tokens,
        overlap=s.overlap,
        backend=s.backend,
        index_type=index.index_type,
        index_params={**index.params, "requested": s.index_type},
        recall_at_10=index.recall,
        documents=documents,
        chunks=chunks,
        next_chunk_id=next_chunk_id,
        created=time.time(),
    )
    return Manifest(**fields)


def documents_from_texts(
    texts: Iterable[str],
    ids: Iterable[str] | None = None,
    metadata: Iterable[Mapping[str, Any] | None] | None = None,
) -> list[Document]:
    """Wrap raw strings as documents; ids default to ``text-<n>``."""
    items = list(texts)
    for t in items:
        if not isinstance(t, str):
            raise UsageError(f"texts must be strings, got {type(t).__name__}")
    id_list = [str(i) for i in ids] if ids is not None else [f"text-{n}" for n in range(len(items))]
    metas = list(metadata) if metadata is not None else [None] * len(items)
    if len(id_list) != len(items) or len(metas) != len(items):
        raise UsageError(
            f"got {len(items)} texts, {len(id_list)} ids and {len(metas)} metadata entries"
        )
    if len(set(id_list)) != len(id_list):
        raise UsageError("document ids must be unique")
    return [
        Document(i, i, t, content_hash(t), dict(m) if m else None)
        for i, t, m in zip(id_list, items, metas, strict=True)
    ]
