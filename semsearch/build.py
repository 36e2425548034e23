"""Streaming, incremental index builds into a new on-disk generation.

Documents flow through in fixed-size batches: read → chunk → embed → append to the
generation's SQLite and vector file. Memory is bounded by the batch, not the corpus.
When an index already exists, documents whose content hash is unchanged keep their
chunks, chunk ids and vectors (copied, never re-embedded); only new and changed
documents are embedded, and documents under the given roots that are gone are dropped.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .chunk import chunk_text
from .chunkstore import ChunkStore
from .embed import Embedder
from .errors import UsageError
from .index import index_class, load_vectors, resolve_backend
from .sources import Document, content_hash, read_document
from .store import CHUNKS, FORMAT_VERSION, VECTORS, IndexDir, Manifest, VectorWriter

#: Chunks embedded per batch; bounds memory and gives the progress bar its steps.
EMBED_BATCH = 256
#: Rows added to a faiss index at a time when building from the vector file.
ADD_BLOCK = 65_536

#: A chunk as stored: (row, chunk_id, ordinal, start, end, line_start, line_end, text).
Row = tuple[int, int, int, int, int, int, int, str]
Progress = Callable[[int, int], None]
Embed = Callable[[Sequence[str]], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class Settings:
    """What decides the vectors and their layout; an index is reused only if these match."""

    model: str
    precision: str
    dim: int
    chunk_tokens: int
    overlap: int
    backend: str
    index_type: str = "flat"


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


@dataclass
class _Pending:
    doc: Document
    rows: list[Row]
    vectors: np.ndarray | None  # None until embedded


@dataclass
class _Old:
    manifest: Manifest
    store: ChunkStore
    vectors: np.ndarray
    hashes: dict[str, str]


def build(
    index_dir: IndexDir,
    paths: Sequence[Path],
    roots: Sequence[Path],
    embedder: Embedder,
    settings: Settings,
    *,
    embed: Embed | None = None,
    progress: Progress | None = None,
    lock_timeout: float = 10.0,
) -> BuildStats:
    """Bring the index at ``index_dir`` in line with ``paths`` (files found under ``roots``)."""
    started = time.perf_counter()
    settings = replace(settings, backend=resolve_backend(settings.backend))
    embed = embed or (lambda texts: (embedder.encode(texts), 0))
    with index_dir.lock(lock_timeout):
        index_dir.cleanup()
        old = _open_old(index_dir, settings)
        builder = _Generation(index_dir, embedder, settings, embed, old)
        try:
            stats = builder.run(paths, roots, progress)
        except BaseException:
            builder.abort()
            raise
    return replace(stats, seconds=time.perf_counter() - started)


def _open_old(index_dir: IndexDir, settings: Settings) -> _Old | None:
    """The live generation if it was built with the same settings; else a full rebuild."""
    if not index_dir.exists():
        return None
    gen = index_dir.current()
    manifest = Manifest.from_file(gen / "manifest.json")
    same = (
        manifest.model == settings.model
        and manifest.precision == settings.precision
        and manifest.dim == settings.dim
        and manifest.chunk_tokens == settings.chunk_tokens
        and manifest.overlap == settings.overlap
    )
    if not same:
        return None
    store = ChunkStore.open_readonly(gen / CHUNKS)
    vectors = load_vectors(gen / VECTORS, manifest.dim)
    hashes = {d.doc_id: d.sha256 for d in store.documents()}
    return _Old(manifest, store, vectors, hashes)


class _Generation:
    """One build: owns the temporary generation until it is published or removed."""

    def __init__(
        self,
        index_dir: IndexDir,
        embedder: Embedder,
        settings: Settings,
        embed: Embed,
        old: _Old | None,
    ) -> None:
        self.index_dir, self.embedder, self.settings, self.embed, self.old = (
            index_dir,
            embedder,
            settings,
            embed,
            old,
        )
        self.tmp: Path | None = None
        self.next_chunk_id = old.manifest.next_chunk_id if old else 0
        self.row = 0
        self.pending: list[_Pending] = []
        self.counts = dict(added=0, updated=0, unchanged=0, skipped=0, embedded=0, hits=0)
        self._meta_from_old: dict[str, Mapping[str, Any] | None] = {}

    def run(
        self, paths: Sequence[Path], roots: Sequence[Path], progress: Progress | None
    ) -> BuildStats:
        old = self.old
        wanted = {str(p) for p in paths}
        removed = self._removed(wanted, roots)
        if old is not None and not removed and self._all_unchanged(paths):
            self.counts["unchanged"] = len(paths)
            return self._stats(
                changed=False, removed=0, docs=old.manifest.documents, chunks=old.manifest.chunks
            )
        self.tmp = self.index_dir.new_tmp()
        self.store = ChunkStore.create(self.tmp / CHUNKS)
        self.writer = VectorWriter(self.tmp / VECTORS, self.settings.dim)
        for done, path in enumerate(paths, 1):
            doc = read_document(path)
            if doc is None:
                self.counts["skipped"] += 1
            else:
                self._add(doc)
            if progress:
                progress(done, len(paths))
        if old is not None:  # documents outside this run's roots are kept as they are
            for d in old.store.documents():
                if d.doc_id not in wanted and d.doc_id not in removed:
                    self._copy_old(d.doc_id, d.source, d.sha256)
        self._flush()
        documents, chunks = self.store.count_documents(), self.store.count_chunks()
        if chunks == 0:
            raise UsageError("no text to index: every file was empty, binary or unreadable")
        self.store.commit()
        self.store.close()
        self.writer.close()
        self._write_vector_index()
        self.index_dir.publish(self.tmp, self._manifest(documents, chunks))
        self.tmp = None
        return self._stats(changed=True, removed=len(removed), docs=documents, chunks=chunks)

    def abort(self) -> None:
        import shutil

        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- per document ----------------------------------------------------------------------

    def _removed(self, wanted: set[str], roots: Sequence[Path]) -> set[str]:
        if self.old is None:
            return set()
        prefixes = [str(r) for r in roots]
        return {
            doc_id
            for doc_id in self.old.hashes
            if doc_id not in wanted
            and any(doc_id == p or doc_id.startswith(p.rstrip("/") + "/") for p in prefixes)
        }

    def _all_unchanged(self, paths: Sequence[Path]) -> bool:
        """Cheap pre-pass: hash every file; if all match, nothing needs writing."""
        assert self.old is not None
        for path in paths:
            doc = read_document(path)
            if doc is not None and self.old.hashes.get(doc.doc_id) != doc.sha256:
                return False
        return len(paths) > 0

    def _add(self, doc: Document) -> None:
        old_hash = self.old.hashes.get(doc.doc_id) if self.old else None
        if old_hash == doc.sha256:
            self.counts["unchanged"] += 1
            self._copy_old(doc.doc_id, doc.source, doc.sha256)
            return
        self.counts["updated" if old_hash else "added"] += 1
        rows = chunk_rows(doc, self.embedder, self.settings, self.next_chunk_id)
        self.next_chunk_id += len(rows)
        empty = np.zeros((0, self.settings.dim), dtype=np.float32)
        self._queue(_Pending(doc, rows, None if rows else empty))

    def _copy_old(self, doc_id: str, source: str, sha256: str) -> None:
        assert self.old is not None
        rows = self.old.store.document_rows(doc_id)
        vectors = np.asarray(self.old.vectors[[r[0] for r in rows]], dtype=np.float32)
        doc = Document(doc_id, source, "", sha256)
        self._queue(_Pending(doc, rows, vectors.reshape(len(rows), self.settings.dim)))
        self._meta_from_old[doc_id] = self.old.store.document_meta(doc_id)

    def _queue(self, item: _Pending) -> None:
        self.pending.append(item)
        if sum(len(p.rows) for p in self.pending if p.vectors is None) >= EMBED_BATCH:
            self._flush()

    def _flush(self) -> None:
        """Embed what is waiting in one batch, then write everything in order."""
        texts = [r[7] for p in self.pending if p.vectors is None for r in p.rows]
        if texts:
            vectors, hits = self.embed(texts)
            self.counts["embedded"] += len(texts) - hits
            self.counts["hits"] += hits
            pos = 0
            for p in self.pending:
                if p.vectors is None:
                    p.vectors = vectors[pos : pos + len(p.rows)]
                    pos += len(p.rows)
        for p in self.pending:
            if p.vectors is None:
                raise RuntimeError("internal error: chunk left without a vector")
            rows = [(self.row + i, *r[1:]) for i, r in enumerate(p.rows)]
            self.row += len(rows)
            meta = self._meta_from_old.pop(p.doc.doc_id, None)
            self.store.add_document(p.doc.doc_id, p.doc.source, p.doc.sha256, rows, meta)
            self.writer.append(p.vectors)
        self.pending.clear()

    # --- finishing ---------------------------------------------------------------------------

    def _write_vector_index(self) -> None:
        assert self.tmp is not None
        cls = index_class(self.settings.backend)
        if cls.file_name == VECTORS:
            return  # the NumPy backend searches vectors.npy itself
        vectors = load_vectors(self.tmp / VECTORS, self.settings.dim)
        index = cls(self.settings.dim)
        for start in range(0, len(vectors), ADD_BLOCK):
            index.add(np.asarray(vectors[start : start + ADD_BLOCK]))
        index.save(self.tmp / cls.file_name)

    def _manifest(self, documents: int, chunks: int) -> Manifest:
        s = self.settings
        return Manifest(
            format_version=FORMAT_VERSION,
            semsearch_version=__version__,
            model=s.model,
            precision=s.precision,
            dim=s.dim,
            chunk_tokens=s.chunk_tokens,
            overlap=s.overlap,
            backend=s.backend,
            index_type=s.index_type,
            index_params={},
            recall_at_10=None,
            documents=documents,
            chunks=chunks,
            next_chunk_id=self.next_chunk_id,
            created=time.time(),
        )

    def _stats(self, *, changed: bool, removed: int, docs: int, chunks: int) -> BuildStats:
        c = self.counts
        return BuildStats(
            documents=docs,
            chunks=chunks,
            added=c["added"],
            updated=c["updated"],
            removed=removed,
            unchanged=c["unchanged"],
            skipped=c["skipped"],
            embedded_chunks=c["embedded"],
            cache_hits=c["hits"],
            seconds=0.0,
            backend=self.settings.backend,
            changed=changed,
        )


def chunk_rows(doc: Document, embedder: Embedder, settings: Settings, first_id: int) -> list[Row]:
    """Chunk a document into store rows (row, chunk_id, ordinal, start, end, line_start,
    line_end, text); ``row`` is a placeholder the writer fills in."""
    chunks = chunk_text(
        doc.text,
        doc_id=doc.doc_id,
        source=doc.source,
        token_spans=embedder.token_spans,
        max_tokens=settings.chunk_tokens,
        overlap=settings.overlap,
    )
    lines = _LineIndex(doc.text)
    rows = []
    for n, c in enumerate(chunks):
        first, last = lines.span(c.start, c.end)
        rows.append((0, first_id + n, c.ordinal, c.start, c.end, first, last, c.text))
    return rows


class _LineIndex:
    """Maps character offsets to 1-based line numbers with a binary search."""

    def __init__(self, text: str) -> None:
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def span(self, start: int, end: int) -> tuple[int, int]:
        first = bisect.bisect_left(self.newlines, start) + 1
        last = bisect.bisect_left(self.newlines, max(end - 1, start)) + 1
        return first, last


def documents_from_texts(texts: Iterable[str], ids: Iterable[str] | None = None) -> list[Document]:
    """Wrap raw strings as documents; ids default to ``text-<n>``."""
    items = list(texts)
    id_list = [str(i) for i in ids] if ids is not None else [f"text-{n}" for n in range(len(items))]
    if len(id_list) != len(items):
        raise UsageError(f"got {len(items)} texts but {len(id_list)} ids")
    if len(set(id_list)) != len(id_list):
        raise UsageError("document ids must be unique")
    return [Document(i, i, t, content_hash(t)) for i, t in zip(id_list, items, strict=True)]
