"""The Python API: :class:`SemanticIndex` composes chunking, embedding, the vector index
and the chunk store; it implements none of them.

Every change is written as a new on-disk generation by :mod:`semsearch.indexing`; an index
made in Python without a path lives in a temporary directory until :meth:`save`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config as _config
from .. import indexing as _build
from ..embed import Embedder
from ..errors import UsageError
from ..indexing.settings import Requested, Settings
from ..search.request import DEFAULT_MODE, Grouping, Mode, SearchOptions
from ..search.rerank import Reranker
from ..store.embedding_cache import EmbeddingCache
from ..store.layout import IndexDir, Live
from . import names, reading
from .directory import verify_files
from .hits import (
    ChunkContext,
    DocumentView,
    Hit,
    IndexInfo,
    Passage,
)
from .live import LiveHandle, Opener
from .searching import LongQueryWarning, search_view
from .view import open_view

if TYPE_CHECKING:
    from ..watch.delta import Refresh


class SemanticIndex:
    """A searchable collection of chunked documents, backed by an index directory.

    Settings left as None are the existing index's own (or the defaults for a new one);
    naming a setting that differs from an existing index's is an error unless the build
    asks to rebuild. Safe to share between threads: searches run concurrently, writes one
    at a time.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "auto",
        chunk_tokens: int | None = None,
        overlap: int | None = None,
        embedder: Embedder | None = None,
        path: str | os.PathLike[str] | None = None,
        index_type: str | None = None,
        precision: str | None = None,
        cache: EmbeddingCache | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="semsearch-")
            path = Path(self._tmp.name) / "index"
        self._dir = IndexDir(path)
        requested = Requested(model, precision, chunk_tokens, overlap, backend, index_type)
        self._open(requested, embedder, cache)

    def _open(
        self,
        requested: Requested,
        embedder: Embedder | None,
        cache: EmbeddingCache | None = None,
        live: Live | None = None,
    ) -> None:
        """Open ``self._dir``; ``live`` is its live generation when the caller read it."""
        #: The live generation this handle searches and the writer it was opened with.
        self.live = LiveHandle(
            self._dir, requested, embedder=embedder, cache=cache, live=live, opener=self._opener()
        )
        self._long_queries = LongQueryWarning()

    def _opener(self) -> Opener:
        """How this handle opens a generation for searching (a sharded index fans out)."""
        return open_view

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        backend: str = "auto",
    ) -> SemanticIndex:
        """Open an existing index directory (default: the configured one). Checks the
        format, the files, and that the model matches."""
        index = cls.__new__(cls)
        index._tmp = None
        index._dir = IndexDir(path if path is not None else _config.load().index_dir)
        live = index._dir.live()  # a clear error when there is no readable index here
        index._open(Requested(model, backend=backend), embedder, live=live)
        return index

    @property
    def path(self) -> Path | None:
        """Where the index lives on disk; None while it is only temporary."""
        return None if self._tmp is not None else self._dir.path

    @property
    def generation(self) -> str | None:
        """The name of the generation this handle searches (None before the first write)."""
        v = self.live.view
        return v.gen.name if v is not None else None

    @property
    def embedder(self) -> Embedder:
        """The model of the vectors searched (it follows the index, unless one was named)."""
        return self.live.embedder

    @property
    def settings(self) -> Settings:
        """The settings the index is written with."""
        return self.live.settings

    @property
    def engine(self) -> _build.Engine:
        """The local engine, made on first write: reading never opens the embedding cache."""
        return self.live.engine

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "(temporary)"
        v = self.live.view
        docs, chunks = (v.manifest.documents, v.manifest.chunks) if v else (0, 0)
        return (
            f"<SemanticIndex {where}: {docs} documents, {chunks} chunks, "
            f"model {self.embedder.name} ({self.embedder.precision})>"
        )

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
        **kw: Any,
    ) -> SemanticIndex:
        """A new index of ``texts``; ``kw`` are the constructor's (model, path, ...)."""
        index = cls(**kw)
        index.add_texts(texts, ids=ids, metadata=metadata)
        return index

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike[str]], *, glob: str | None = None, **kw: Any
    ) -> SemanticIndex:
        """A new index of files, directories and glob patterns (``glob`` filters the files
        found in directories); ``kw`` are the constructor's: ``model``, ``path`` (where the
        index lives, temporary by default), ``chunk_tokens``, ``overlap``, ``precision``,
        ``backend``, ``index_type``, ``embedder``."""
        index = cls(**kw)
        index.add_paths(paths, glob=glob)
        return index

    def add_texts(
        self,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
    ) -> _build.BuildStats:
        """Add new documents from strings; an id already present is an error (see upsert).
        Default ids are ``text-<n>``, numbered after the highest one in the index."""
        from ..ingest.document import documents_from_texts

        texts = list(texts)
        with self.live.lock:
            v = self.live.view
            if ids is None:
                ids = names.new_text_ids(v, len(texts))
            docs = documents_from_texts(texts, ids, metadata)
            names.check_new(v, [d.doc_id for d in docs])
            return self.live.apply(_build.Changes(items=docs))

    def upsert(
        self,
        texts: Iterable[str],
        ids: Iterable[str],
        metadata: Iterable[Mapping[str, Any] | None] | None = None,
        *,
        progress: _build.Progress | None = None,
    ) -> _build.BuildStats:
        """Add or replace documents by id; unchanged texts keep their chunks and vectors."""
        from ..ingest.document import documents_from_texts

        docs = documents_from_texts(texts, ids, metadata)
        return self.live.apply(_build.Changes(items=docs), progress)

    def add_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        glob: str | Sequence[str] | None = None,
        text_field: str | None = None,
    ) -> _build.BuildStats:
        """Index files, directories and globs; re-running it updates what changed and drops
        files that disappeared from the given directories. Rows of JSONL/CSV files become
        documents whose text is ``text_field`` (default: text, content, body, ...)."""
        from ..ingest.discover import discover  # reading files: not on the search path
        from ..ingest.read import expand_items

        given, globs = list(paths), names.globs(glob)
        files = expand_items(discover(given, globs), text_field)
        return self.live.apply(_build.Changes(items=files, roots=names.roots(given), globs=globs))

    def rebuild(self, progress: _build.Progress | None = None) -> _build.BuildStats:
        """Chunk and embed every document again under this object's settings (after changing
        model, precision or chunking); nothing indexed is dropped."""
        return self.live.apply(_build.Changes(rebuild=True), progress)

    def optimize(self) -> _build.BuildStats:
        """Merge every segment into one, dropping deleted rows (searches answer the same)."""
        return self.live.apply(_build.Changes(compact=True))

    def delete(self, ids: Iterable[str], *, glob: bool = False) -> int:
        """Remove documents by id or source path; returns how many were removed. Each name
        matches exactly (``a[1]`` is the id ``a[1]``) unless ``glob`` is True, when it is a
        glob on ids and sources. A name that matches nothing is an error: nothing is removed.
        """
        wanted = [str(i) for i in ids]
        with self.live.lock:
            found = names.named_documents(self.live.view, wanted, glob=glob)
            self.live.apply(_build.Changes(remove=found))
            return len(found)

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
        group: Grouping | None = None,
        collapse: bool = True,
        rerank: str | os.PathLike[str] | Reranker | None = None,
    ) -> list[Hit]:
        """Best ``k`` chunks for ``query``, best first.

        ``mode``: "dense" (cosine similarity), "keyword" (BM25) or "hybrid" (both, fused;
        the default, measured best). ``where`` restricts candidates before ranking, so ``k``
        hits come back whenever ``k`` chunks match: ``{"source": "*.md"}`` (a glob on the
        path) and metadata equality (``None`` matches null). ``per_source`` caps hits per
        source; ``diverse`` re-ranks with MMR; ``min_score`` drops hits whose ``score`` is
        below it. ``group="file"`` returns files instead of chunks: one hit per document
        (its best chunk, with its next best in ``Hit.more``), scored by all its chunks'
        evidence and code-aware signals (:mod:`semsearch.search.group`). ``collapse`` folds
        copies of one passage in other files into the first hit, whose ``also_in`` names
        them. ``rerank`` (a local sentence-transformers CrossEncoder directory, or a loaded
        :class:`Reranker`) re-scores the best ``max(k, RERANK_DEPTH)`` hits; each hit's
        ``score`` is then the cross-encoder's (``min_score`` applies before it).
        """
        return self.search_batch(
            [query], k, mode=mode, where=where, per_source=per_source, diverse=diverse,
            min_score=min_score, group=group, collapse=collapse, rerank=rerank,
        )[0]  # fmt: skip

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
        group: Grouping | None = None,
        collapse: bool = True,
        rerank: str | os.PathLike[str] | Reranker | None = None,
    ) -> list[list[Hit]]:
        """Best ``k`` chunks for each query; queries are embedded together (``rerank``: as
        in :meth:`search`)."""
        opts = SearchOptions(
            k=k, mode=mode, where=where, per_source=per_source, diverse=diverse,
            min_score=min_score, group=group, collapse=collapse,
        )  # fmt: skip
        return self.search_with(queries, opts, rerank=rerank)

    def search_with(
        self,
        queries: Sequence[str],
        opts: SearchOptions,
        *,
        rerank: str | os.PathLike[str] | Reranker | None = None,
    ) -> list[list[Hit]]:
        """Best hits for each query by options built once (every front end's way in);
        ``rerank`` as in :meth:`search`."""
        return search_view(
            self.live.view, queries, opts, root=self._dir.path, long_queries=self._long_queries,
            rerank=rerank,
        )  # fmt: skip

    def best_sentences(self, query: str, hits: Sequence[Hit]) -> list[tuple[int, int]]:
        """For each hit, the span (within ``hit.text``) of the sentence closest to ``query``:
        what a person should read first. One batch of embeddings for all hits."""
        return reading.best_sentences(self.embedder, query, hits)

    def __len__(self) -> int:
        v = self.live.view
        return len(v.index) if v else 0

    # --- reading -----------------------------------------------------------------------------

    def document(self, doc_id: str) -> DocumentView:
        """A whole document as indexed (its text rebuilt from the index, not read from disk)."""
        return reading.document(self.live.require().store, doc_id)

    def chunk(self, chunk_id: int, context: int = 1) -> ChunkContext:
        """A chunk by id with up to ``context`` chunks of its document on each side."""
        return reading.chunk(self.live.require().store, chunk_id, context)

    def passages(self, doc_id: str) -> tuple[Passage, ...]:
        """A document's chunks in order, with their lines, pages and sections: what a
        location (``path:12``, ``path p. 3``, ``path › Section``) is looked up in."""
        return reading.passages(self.live.require().store, doc_id)

    # --- disk --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Copy the live generation to the index directory ``path``, atomically."""
        v = self.live.view
        if v is None:
            raise UsageError("nothing to save: the index is empty")
        if IndexDir(path).path.resolve() == self._dir.path.resolve():
            return v.gen
        return reading.copy_generation(v, IndexDir(path))

    def refresh(self, *, budget: float | None = None) -> Refresh:
        """Apply what changed in the folders this index was built from, as one generation.

        Nothing changed costs a walk and a ``stat`` per file. ``budget`` (seconds) bounds the
        whole refresh: past it nothing is published and ``complete`` is False, so a search
        that follows answers from the index as it was (see :func:`semsearch.watch.refresh`).
        """
        return self.live.refresh(budget=budget)

    def reload_if_changed(self) -> bool:
        """Pick up a generation published by another process or thread; True if it did.
        Costs one read of the small live-generation pointer when nothing changed."""
        return self.live.reload_if_changed()

    def info(self) -> IndexInfo:
        """What the live generation holds and how it was built."""
        return reading.describe(self.live.require(), self.path)

    def verify(self) -> list[str]:
        """Full check of every file against the manifest's checksums; returns the problems."""
        return verify_files(self._dir.path)[1]
