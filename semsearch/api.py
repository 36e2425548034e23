"""The Python API: :class:`SemanticIndex` composes chunking, embedding, the vector index
and the chunk store; it implements none of them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import build as _build
from .chunk import DEFAULT_CHUNK_TOKENS
from .chunkstore import ChunkRecord, ChunkStore
from .embed import Embedder, load_embedder
from .errors import IndexFormatError, UsageError
from .index import VectorIndex, index_class, load_vectors, resolve_backend
from .sources import bundled_seeds, discover
from .store import CHUNKS, MANIFEST, VECTORS, IndexDir, Manifest, VectorWriter, check_files

__all__ = ["Hit", "IndexInfo", "SemanticIndex", "default_index_dir", "index_paths"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk, its score and where it sits in its source."""

    score: float
    text: str
    source: str
    doc_id: str
    chunk_id: int
    start: int
    end: int
    line_start: int
    line_end: int
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IndexInfo:
    path: str | None
    documents: int
    chunks: int
    model: str
    precision: str
    dim: int
    backend: str
    index_type: str
    chunk_tokens: int
    overlap: int
    size_bytes: int
    recall_at_10: float | None


def default_index_dir() -> Path:
    """``$SEMSEARCH_INDEX``, else ``$XDG_DATA_HOME/semsearch/index`` (~/.local/share/...)."""
    env = os.environ.get("SEMSEARCH_INDEX")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "semsearch" / "index"


class SemanticIndex:
    """Chunks, their vectors and the search over them, in memory or loaded from disk."""

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "auto",
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = 0,
        embedder: Embedder | None = None,
    ) -> None:
        self.embedder = embedder if embedder is not None else load_embedder(model)
        self.settings = _build.Settings(
            model=self.embedder.name,
            precision=self.embedder.precision,
            dim=self.embedder.dim,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            backend=resolve_backend(backend),
        )
        self.path: Path | None = None
        self._store = ChunkStore.create(":memory:")
        self._vectors: list[np.ndarray] = []
        self._index: VectorIndex = index_class(self.settings.backend)(self.settings.dim)
        self._next_chunk_id = 0
        self._rows = 0

    # --- building --------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], ids: Iterable[str] | None = None, **kw: Any
    ) -> SemanticIndex:
        index = cls(**kw)
        index.add_texts(texts, ids=ids)
        return index

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike[str]], *, glob: str | None = None, **kw: Any
    ) -> SemanticIndex:
        index = cls(**kw)
        index.add_paths(paths, glob=glob)
        return index

    def add_texts(
        self,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
    ) -> int:
        """Add raw strings (ids default to ``text-<n>``); returns the number of chunks added."""
        texts = list(texts)
        if ids is None:
            ids = [f"text-{self._store.count_documents() + n}" for n in range(len(texts))]
        docs = _build.documents_from_texts(texts, ids)
        metas = list(metadata) if metadata is not None else [None] * len(docs)
        if len(metas) != len(docs):
            raise UsageError(f"got {len(docs)} texts but {len(metas)} metadata entries")
        return self._add_documents(docs, metas)

    def add_paths(self, paths: Iterable[str | os.PathLike[str]], *, glob: str | None = None) -> int:
        """Add files, directories and glob matches; binary files are skipped with a warning."""
        from .sources import read_document

        docs = [d for d in (read_document(p) for p in discover(paths, glob)) if d is not None]
        if not docs:
            raise UsageError("no text to index: every file was empty, binary or unreadable")
        return self._add_documents(docs, [None] * len(docs))

    def _add_documents(self, docs: Sequence[Any], metas: Sequence[Mapping[str, Any] | None]) -> int:
        self._make_writable()
        existing = {d.doc_id for d in self._store.documents()}
        added = 0
        for start in range(0, len(docs), 64):
            batch_rows, texts = [], []
            for doc, meta in zip(docs[start : start + 64], metas[start : start + 64], strict=True):
                if doc.doc_id in existing:
                    raise UsageError(f"document {doc.doc_id!r} is already in the index")
                existing.add(doc.doc_id)
                rows = _build.chunk_rows(doc, self.embedder, self.settings, self._next_chunk_id)
                self._next_chunk_id += len(rows)
                rows = [(self._rows + i, *r[1:]) for i, r in enumerate(rows)]
                self._rows += len(rows)
                self._store.add_document(doc.doc_id, doc.source, doc.sha256, rows, meta)
                batch_rows.extend(rows)
                texts.extend(r[7] for r in rows)
            if texts:
                vectors = self.embedder.encode(texts)
                self._vectors.append(vectors)
                self._index.add(vectors)
            added += len(texts)
        self._store.commit()
        return added

    def _make_writable(self) -> None:
        """A loaded index is read-only on disk; copy it into memory before changing it."""
        if self.path is None:
            return
        self._store = self._store.copy_to_memory()
        vectors = np.array(self._all_vectors(), dtype=np.float32)
        self._vectors = [vectors]
        self._index = index_class(self.settings.backend)(self.settings.dim)
        self._index.add(vectors)
        self.path = None

    def _all_vectors(self) -> np.ndarray:
        if len(self._vectors) == 1:
            return self._vectors[0]
        if not self._vectors:
            return np.zeros((0, self.settings.dim), dtype=np.float32)
        self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0]

    # --- searching -------------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """Best ``k`` chunks for each query, best first."""
        if isinstance(queries, str):
            raise UsageError("search_batch takes a list of queries; use search() for one")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise UsageError("query is empty")
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise UsageError(f"k must be a positive integer, got {k!r}")
        if not queries:
            return []
        vectors = self.embedder.encode(list(queries), kind="query")
        result = self._index.search(vectors, k)
        records = self._store.fetch(np.unique(result.ids))
        return [
            [_hit(records[int(i)], float(s)) for s, i in zip(srow, irow, strict=True)]
            for srow, irow in zip(result.scores, result.ids, strict=True)
        ]

    def __len__(self) -> int:
        return len(self._index)

    # --- disk --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as a new generation of the index directory at ``path``."""
        index_dir = IndexDir(path)
        with index_dir.lock():
            index_dir.cleanup()
            tmp = index_dir.new_tmp()
            try:
                self._store.copy_to(tmp / CHUNKS)
                writer = VectorWriter(tmp / VECTORS, self.settings.dim)
                writer.append(self._all_vectors())
                writer.close()
                if self._index.file_name != VECTORS:
                    self._index.save(tmp / self._index.file_name)
                gen = index_dir.publish(tmp, self._manifest())
            except BaseException:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return gen

    def _manifest(self) -> Manifest:
        s = self.settings
        from ._version import __version__
        from .store import FORMAT_VERSION

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
            documents=self._store.count_documents(),
            chunks=self._store.count_chunks(),
            next_chunk_id=self._next_chunk_id,
            created=time.time(),
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        backend: str | None = None,
    ) -> SemanticIndex:
        """Open an index directory. Checks the format, the files, and that the model matches."""
        index_dir = IndexDir(path if path is not None else default_index_dir())
        for attempt in range(3):
            gen = index_dir.current()
            try:
                return cls._load_generation(index_dir.path, gen, model, embedder, backend)
            except IndexFormatError:
                # A writer may have replaced this generation just now; retry on the new one.
                if attempt == 2 or index_dir.current() == gen:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(
        cls,
        root: Path,
        gen: Path,
        model: str | None,
        embedder: Embedder | None,
        backend: str | None,
    ) -> SemanticIndex:
        manifest = Manifest.from_file(gen / MANIFEST)
        problems = check_files(gen, manifest)
        if problems:
            raise IndexFormatError(f"index at {root} is damaged: {problems[0]}")
        if embedder is None:
            embedder = load_embedder(model if model is not None else manifest.model)
        if embedder.name != manifest.model:
            raise IndexFormatError(
                f"index at {root} was built with model {manifest.model!r}, not {embedder.name!r}"
            )
        if embedder.dim != manifest.dim:
            raise IndexFormatError(
                f"index at {root} has dimension {manifest.dim}, model gives {embedder.dim}"
            )
        chosen = manifest.backend if backend in (None, "auto") else resolve_backend(backend)
        self = cls.__new__(cls)
        self.embedder = embedder
        self.settings = _build.Settings(
            model=manifest.model,
            precision=manifest.precision,
            dim=manifest.dim,
            chunk_tokens=manifest.chunk_tokens,
            overlap=manifest.overlap,
            backend=chosen,
            index_type=manifest.index_type,
        )
        self.path = root
        self._store = ChunkStore.open_readonly(gen / CHUNKS)
        vectors = load_vectors(gen / VECTORS, manifest.dim)
        if len(vectors) != manifest.chunks:
            raise IndexFormatError(
                f"index at {root} is damaged: {len(vectors)} vectors for {manifest.chunks} chunks"
            )
        self._vectors = [vectors]
        cls_ = index_class(chosen)
        if cls_.file_name == VECTORS or not (gen / cls_.file_name).is_file():
            self._index = index_class("numpy").load(gen / VECTORS, manifest.dim)
            self.settings = _build.Settings(**{**self.settings.__dict__, "backend": "numpy"})
        else:
            self._index = cls_.load(gen / cls_.file_name, manifest.dim)
        if len(self._index) != manifest.chunks:
            raise IndexFormatError(
                f"index at {root} is damaged: vector index holds {len(self._index)} of "
                f"{manifest.chunks} chunks"
            )
        self._next_chunk_id = manifest.next_chunk_id
        self._rows = manifest.chunks
        self.manifest = manifest
        return self

    def info(self) -> IndexInfo:
        size = IndexDir(self.path).size_on_disk() if self.path is not None else 0
        s = self.settings
        return IndexInfo(
            path=str(self.path) if self.path else None,
            documents=self._store.count_documents(),
            chunks=self._store.count_chunks(),
            model=s.model,
            precision=s.precision,
            dim=s.dim,
            backend=s.backend,
            index_type=s.index_type,
            chunk_tokens=s.chunk_tokens,
            overlap=s.overlap,
            size_bytes=size,
            recall_at_10=getattr(getattr(self, "manifest", None), "recall_at_10", None),
        )


def _hit(r: ChunkRecord, score: float) -> Hit:
    return Hit(
        score=score,
        text=r.text,
        source=r.source,
        doc_id=r.doc_id,
        chunk_id=r.chunk_id,
        start=r.start,
        end=r.end,
        line_start=r.line_start,
        line_end=r.line_end,
        metadata=r.metadata,
    )


def index_paths(
    paths: Sequence[str | os.PathLike[str]],
    index: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    backend: str = "auto",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = 0,
    glob: str | None = None,
    progress: _build.Progress | None = None,
    embedder: Embedder | None = None,
) -> _build.BuildStats:
    """Build or update the on-disk index at ``index`` from files, streaming in batches."""
    files = discover(paths, glob)
    roots = [Path(p).expanduser().resolve() for p in paths if Path(p).expanduser().exists()]
    embedder = embedder if embedder is not None else load_embedder(model)
    settings = _build.Settings(
        model=embedder.name,
        precision=embedder.precision,
        dim=embedder.dim,
        chunk_tokens=chunk_tokens,
        overlap=overlap,
        backend=backend,
    )
    index_dir = IndexDir(index if index is not None else default_index_dir())
    return _build.build(index_dir, files, roots, embedder, settings, progress=progress)


def ensure_seed_index(
    index: str | os.PathLike[str], progress: _build.Progress | None = None
) -> bool:
    """Build the bundled sample corpus into ``index`` if no index is there; True if built."""
    if IndexDir(index).exists():
        return False
    index_paths([bundled_seeds()], index, progress=progress)
    return True
