"""The Python API: :class:`SemanticIndex` composes chunking, embedding, the vector index
and the chunk store; it implements none of them.

Every change is written as a new on-disk generation by :mod:`semsearch.build`; an index
made in Python without a path lives in a temporary directory until :meth:`save`.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import build as _build
from .cache import EmbeddingCache, encode_cached
from .chunk import DEFAULT_CHUNK_TOKENS, sentence_spans
from .chunkstore import ChunkRecord, ChunkStore
from .embed import DEFAULT_MODEL, DEFAULT_PRECISION, Embedder, load_embedder
from .engine import Engine, LocalEngine
from .errors import IndexFormatError, UsageError
from .index import (
    FaissIndex,
    NumpyIndex,
    VectorIndex,
    index_class,
    load_vectors,
    resolve_backend,
)
from .retrieve import DEFAULT_MODE, Mode, Options, retrieve
from .sources import bundled_seeds, discover
from .store import CHUNKS, MANIFEST, VECTORS, IndexDir, Manifest, check_files

log = logging.getLogger("semsearch")

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


@dataclass
class _View:
    """The live generation opened for reading."""

    manifest: Manifest
    store: ChunkStore
    index: VectorIndex
    vectors: np.ndarray  # memory-mapped


class SemanticIndex:
    """A searchable collection of chunked documents, backed by an index directory."""

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "auto",
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = 0,
        embedder: Embedder | None = None,
        path: str | os.PathLike[str] | None = None,
        index_type: str = "auto",
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        self.embedder = embedder if embedder is not None else load_embedder(model, precision)
        self.settings = _build.Settings(
            model=self.embedder.name,
            precision=self.embedder.precision,
            dim=self.embedder.dim,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            backend=resolve_backend(backend),
            index_type=index_type,
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="semsearch-")
            path = Path(self._tmp.name) / "index"
        self._dir = IndexDir(path)
        self._view: _View | None = None
        self._warned_long = False
        self.engine: Engine = local_engine(self.embedder)
        if self._dir.exists():
            self._reload()

    @property
    def path(self) -> Path | None:
        """Where the index lives on disk; None while it is only temporary."""
        return None if self._tmp is not None else self._dir.path

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
        **kw: Any,
    ) -> SemanticIndex:
        index = cls(**kw)
        index.add_texts(texts, ids=ids, metadata=metadata)
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
    ) -> _build.BuildStats:
        """Add new documents from strings; an id already present is an error (see upsert)."""
        texts = list(texts)
        if ids is None:
            start = self._view.manifest.documents if self._view else 0
            ids = [f"text-{start + n}" for n in range(len(texts))]
        docs = _build.documents_from_texts(texts, ids, metadata)
        present = self._existing_ids([d.doc_id for d in docs])
        if present:
            raise UsageError(f"document {present[0]!r} is already in the index (use upsert)")
        return self._apply(_build.Changes(items=docs))

    def upsert(
        self,
        texts: Iterable[str],
        ids: Iterable[str],
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
        *,
        progress: _build.Progress | None = None,
    ) -> _build.BuildStats:
        """Add or replace documents by id; unchanged texts keep their chunks and vectors."""
        docs = _build.documents_from_texts(texts, ids, metadata)
        return self._apply(_build.Changes(items=docs), progress)

    def add_paths(
        self, paths: Iterable[str | os.PathLike[str]], *, glob: str | None = None
    ) -> _build.BuildStats:
        """Index files, directories and globs; re-running it updates what changed and drops
        files that disappeared from the given directories."""
        given = list(paths)
        files = discover(given, glob)
        roots = [Path(p).expanduser().resolve() for p in given if Path(p).expanduser().exists()]
        return self._apply(_build.Changes(items=files, roots=roots))

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id or source (globs allowed); returns how many were removed."""
        wanted = [str(i) for i in ids]
        found: set[str] = set()
        store = self._view.store if self._view else None
        for pattern in wanted:
            matches = store.document_ids(pattern) if store else []
            if not matches and Path(pattern).exists():
                matches = store.document_ids(str(Path(pattern).resolve())) if store else []
            if not matches:
                raise UsageError(f"no document in the index matches {pattern!r}")
            found.update(matches)
        self._apply(_build.Changes(remove=frozenset(found)))
        return len(found)

    def _existing_ids(self, ids: Sequence[str]) -> list[str]:
        if self._view is None:
            return []
        hits: list[str] = []
        for doc_id in ids:
            if self._view.store.document_ids(_glob_literal(doc_id)):
                hits.append(doc_id)
        return hits

    def _apply(
        self, changes: _build.Changes, progress: _build.Progress | None = None
    ) -> _build.BuildStats:
        stats = _build.build(self._dir, changes, self.engine, self.settings, progress=progress)
        if stats.changed or self._view is None:
            self._reload()
        return stats

    # --- searching ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: Mode = DEFAULT_MODE,
        where: Mapping[str, Any] | None = None,
        per_source: int | None = None,
        diverse: bool = False,
        min_score: float | None = None,
    ) -> list[Hit]:
        """Best ``k`` chunks for ``query``, best first.

        ``mode``: "dense" (cosine similarity), "keyword" (BM25) or "hybrid" (their
        min-max-normalised blend, scores in [0, 1]; the default, measured best).
        ``where`` restricts candidates before ranking, so ``k`` hits come back whenever
        ``k`` chunks match: ``{"source": "*.md"}`` (a glob on the path) and metadata
        equality. ``per_source`` caps hits per source; ``diverse`` re-ranks with MMR;
        ``min_score`` drops weak hits (the score is the mode's own).
        """
        return self.search_batch(
            [query],
            k,
            mode=mode,
            where=where,
            per_source=per_source,
            diverse=diverse,
            min_score=min_score,
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        mode: Mode = DEFAULT_MODE,
        where: Mapping[str, Any] | None = None,
        per_source: int | None = None,
        diverse: bool = False,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Best ``k`` chunks for each query; queries are embedded together."""
        if isinstance(queries, str):
            raise UsageError("search_batch takes a list of queries; use search() for one")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise UsageError("query is empty")
        opts = Options(k, mode, where, per_source, diverse, min_score)
        opts.check()
        if not queries:
            return []
        if self._view is None:
            return [[] for _ in queries]
        self._warn_if_truncated(queries)
        v = self._view
        ranked = retrieve(
            queries, opts, embedder=self.embedder, index=v.index, store=v.store, vectors=v.vectors
        )
        records = v.store.fetch(np.unique(np.concatenate([r.rows for r in ranked])))
        return [
            [_hit(records[int(i)], float(s)) for i, s in zip(r.rows, r.scores, strict=True)]
            for r in ranked
        ]

    def best_sentences(self, query: str, hits: Sequence[Hit]) -> list[tuple[int, int]]:
        """For each hit, the span (within ``hit.text``) of the sentence closest to ``query``:
        what a person should read first. One batch of embeddings for all hits."""
        spans = [sentence_spans(h.text) or [(0, len(h.text))] for h in hits]
        texts = [h.text[a:b] for h, sp in zip(hits, spans, strict=True) for a, b in sp]
        if not texts:
            return []
        qvec = self.embedder.encode([query], kind="query")[0]
        scores = self.embedder.encode(texts) @ qvec
        out, pos = [], 0
        for sp in spans:
            out.append(sp[int(np.argmax(scores[pos : pos + len(sp)]))])
            pos += len(sp)
        return out

    def _warn_if_truncated(self, queries: Sequence[str]) -> None:
        """The model reads at most ``max_tokens`` tokens: say so instead of cutting silently."""
        counts = self.embedder.count_tokens(queries)
        if not self._warned_long and max(counts) > self.embedder.max_tokens:
            self._warned_long = True
            log.warning(
                "a query is longer than the model's %d-token input; only its start is used",
                self.embedder.max_tokens,
            )

    def __len__(self) -> int:
        return len(self._view.index) if self._view else 0

    # --- disk --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Copy the live generation to the index directory ``path``, atomically."""
        target = IndexDir(path)
        if self._view is None:
            raise UsageError("nothing to save: the index is empty")
        if target.path.resolve() == self._dir.path.resolve():
            return self._dir.current()
        source = self._dir.current()
        with target.lock():
            target.cleanup()
            tmp = target.new_tmp()
            try:
                for f in source.iterdir():
                    if f.name != MANIFEST:
                        shutil.copyfile(f, tmp / f.name)
                gen = target.publish(tmp, self._view.manifest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return gen

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
        _, manifest = index_dir.manifest()
        if embedder is None:
            embedder = load_embedder(
                model if model is not None else manifest.model, manifest.precision
            )
        self = cls.__new__(cls)
        self.embedder = embedder
        self._tmp = None
        self._dir = index_dir
        self.engine = local_engine(embedder)
        self._view = None
        self._warned_long = False
        self.settings = _build.Settings(
            model=manifest.model,
            precision=manifest.precision,
            dim=manifest.dim,
            chunk_tokens=manifest.chunk_tokens,
            overlap=manifest.overlap,
            backend=manifest.backend if backend in (None, "auto") else resolve_backend(backend),
            index_type=str(manifest.index_params.get("requested", manifest.index_type)),
        )
        self._reload()
        return self

    def _reload(self) -> None:
        """Open the live generation; retry once if a writer swapped it while we opened it."""
        for attempt in range(3):
            gen = self._dir.current()
            try:
                self._view = _open_generation(self._dir, gen, self.embedder, self.settings.backend)
                return
            except IndexFormatError:
                if attempt == 2 or self._dir.current() == gen:
                    raise

    def info(self) -> IndexInfo:
        if self._view is None:
            raise UsageError("the index is empty")
        m = self._view.manifest
        return IndexInfo(
            path=str(self.path) if self.path else None,
            documents=m.documents,
            chunks=m.chunks,
            model=m.model,
            precision=m.precision,
            dim=m.dim,
            backend=self._view.index.backend,
            index_type=m.index_type,
            chunk_tokens=m.chunk_tokens,
            overlap=m.overlap,
            size_bytes=self._dir.size_on_disk(),
            recall_at_10=m.recall_at_10,
        )

    def verify(self) -> list[str]:
        """Full check of every file against the manifest's checksums; returns the problems."""
        gen, manifest = self._dir.manifest()
        return check_files(gen, manifest, checksums=True)


def _open_generation(index_dir: IndexDir, gen: Path, embedder: Embedder, backend: str) -> _View:
    root = index_dir.path
    gen, manifest = index_dir.manifest(gen)
    problems = check_files(gen, manifest)
    if problems:
        raise IndexFormatError(f"index at {root} is damaged: {problems[0]}")
    if embedder.name != manifest.model:
        raise IndexFormatError(
            f"index at {root} was built with model {manifest.model!r}, not {embedder.name!r}"
        )
    if embedder.dim != manifest.dim:
        raise IndexFormatError(
            f"index at {root} has dimension {manifest.dim}, the model gives {embedder.dim}"
        )
    store = ChunkStore.open_readonly(gen / CHUNKS)
    vectors = load_vectors(gen / VECTORS, manifest.dim)
    if len(vectors) != manifest.chunks:
        raise IndexFormatError(f"index at {root} is damaged: vectors.npy has {len(vectors)} rows")
    cls = index_class(backend)
    if cls is FaissIndex and (gen / cls.file_name).is_file():
        index: VectorIndex = FaissIndex.load(gen / cls.file_name, manifest.dim, vectors=vectors)
    else:
        index = NumpyIndex(manifest.dim, vectors)
    if len(index) != manifest.chunks:
        raise IndexFormatError(
            f"index at {root} is damaged: {len(index)} vectors for {manifest.chunks} chunks"
        )
    return _View(manifest, store, index, vectors)


def _hit(r: ChunkRecord, score: float) -> Hit:
    fields = {k: v for k, v in asdict(r).items() if k in Hit.__dataclass_fields__}
    return Hit(score=score, **fields)


def _glob_literal(text: str) -> str:
    """Escape SQLite GLOB metacharacters so an id matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


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
    index_type: str = "auto",
    precision: str = DEFAULT_PRECISION,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
) -> _build.BuildStats:
    """Build or update the on-disk index at ``index`` from files, streaming in batches.

    ``engine="ray"`` hands reading, chunking and embedding to a Ray cluster (``ray_address``:
    None starts Ray in this process, "auto" or "ray://host:10001" joins one); the result on
    disk is the same as a local build's.
    """
    files = discover(paths, glob)
    roots = [Path(p).expanduser().resolve() for p in paths if Path(p).expanduser().exists()]
    embedder = embedder if embedder is not None else load_embedder(model, precision)
    settings = _build.Settings(
        model=embedder.name,
        precision=embedder.precision,
        dim=embedder.dim,
        chunk_tokens=chunk_tokens,
        overlap=overlap,
        backend=backend,
        index_type=index_type,
    )
    index_dir = IndexDir(index if index is not None else default_index_dir())
    changes = _build.Changes(items=files, roots=roots)
    worker = _make_engine(engine, embedder, ray_address, ray_workers)
    try:
        return _build.build(index_dir, changes, worker, settings, progress=progress)
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            close()


def local_engine(embedder: Embedder) -> LocalEngine:
    """In-process engine whose embeddings go through the shared cache: re-indexing text
    already seen (in any index, same model and precision) costs only a hash lookup."""
    return LocalEngine(embedder, functools.partial(encode_cached, embedder, cache=EmbeddingCache()))


def _make_engine(
    engine: str, embedder: Embedder, address: str | None, workers: int | None
) -> Engine:
    if engine == "local":
        return local_engine(embedder)
    if engine == "ray":
        from .engine_ray import RayEngine

        model = None if embedder.name == DEFAULT_MODEL else embedder.name
        return RayEngine(
            model,
            address=address,
            num_workers=workers,
            make_embedder=functools.partial(load_embedder, model, embedder.precision),
            expect=(embedder.name, embedder.precision, embedder.dim),
        )
    raise UsageError(f"unknown engine {engine!r}: choose local or ray")


def remove_documents(sources: Sequence[str], index: str | os.PathLike[str] | None = None) -> int:
    """Remove documents by source path, id or glob from the on-disk index."""
    return SemanticIndex.load(index).delete(sources)


def ensure_seed_index(
    index: str | os.PathLike[str], progress: _build.Progress | None = None
) -> bool:
    """Build the bundled sample corpus into ``index`` if no index is there; True if built."""
    if IndexDir(index).exists():
        return False
    index_paths([bundled_seeds()], index, progress=progress)
    return True
