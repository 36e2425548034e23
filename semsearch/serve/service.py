"""The warm index behind every front end (HTTP, MCP, the page): one embedder, a small pool of
open readers, and a cheap check for new generations before each request.

Why a pool: each ``SemanticIndex`` holds one SQLite connection, and SQLite serialises the
statements of one connection. With one reader per worker thread, the keyword query of one
request and the ONNX Runtime / faiss work of another (both release the GIL) run on different
cores at the same time. The readers share the embedder (an ONNX Runtime session is safe to
run from several threads) and the memory-mapped vectors, so a second reader costs little.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from .. import api
from ..api import SemanticIndex
from ..api.hits import hit_record
from ..errors import IndexFormatError, SemsearchError, UsageError
from . import params as P
from .reading import read_chunk, read_document


class IndexGone(SemsearchError):
    """The index directory (or its live-generation pointer) disappeared while serving."""


class WritesDisabled(SemsearchError):
    """A write was asked of a server started without ``--allow-writes``."""


class DeadlineExceeded(SemsearchError):
    """A request ran past its deadline (HTTP 503); the work done so far is dropped."""


#: What a request says once the index it served is deleted.
_GONE = "the index at {} is gone (directory or its live-generation pointer deleted)"

#: Queries ranked per step of a batch search; the deadline is checked between steps.
QUERIES_PER_STEP = 8


class Engine(Protocol):
    """How the service opens its readers: in this process, or fanning out to shards on Ray
    (:mod:`semsearch.shard.serving`). Both give a :class:`SemanticIndex`, so every front end
    reads the same hits either way."""

    def open(self, path: Path, embedder: Any) -> SemanticIndex: ...

    def health(self) -> dict[str, Any]:
        """Extra fields for /health; raises ``ServiceUnavailable`` when it cannot answer.
        Called on the event loop: must not block."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Readers in this process."""

    def open(self, path: Path, embedder: Any) -> SemanticIndex:
        return SemanticIndex.load(path, embedder=embedder)

    def health(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class _Pool:
    """Open readers of one generation, lent out one per request."""

    def __init__(
        self, stamp: tuple[int, int, int], generation: str, readers: list[SemanticIndex]
    ) -> None:
        self.stamp = stamp
        self.generation = generation
        self.readers = readers
        self.chunks = len(readers[0])
        self.free: queue.SimpleQueue[SemanticIndex] = queue.SimpleQueue()
        for r in readers:
            self.free.put(r)


class SearchService:
    """Thread-safe search, read, info and (optionally) writes over one index directory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        workers: int = 2,
        allow_writes: bool = False,
        embedder: Any = None,
        engine: Engine | None = None,
    ) -> None:
        self.path = Path(path)
        self.engine: Engine = engine or LocalEngine()
        self.workers = max(1, workers)
        self.allow_writes = allow_writes
        self._embedder = embedder
        #: No model given: follow the index's own, also when progressive indexing changes it.
        self._follows = embedder is None
        self._reload_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pool: _Pool | None = None
        self._gone: str | None = None
        self.generations_loaded = 0
        self._refresh()
        if self._pool is None:
            raise IndexFormatError(self._gone or f"no index at {self.path}")

    # --- generations ---------------------------------------------------------------------

    def _refresh(self) -> _Pool:
        """The pool for the live generation, reopening it when a new one went live. A stat
        per request; the reopen happens in one request while the others keep the old pool."""
        try:
            stamp = api.live_stamp(self.path)
        except OSError:
            if self._pool is None:
                api.check_index(self.path)  # raises the store's own "no index at ..." line
            self._gone = _GONE.format(self.path)
            raise IndexGone(self._gone) from None
        pool = self._pool
        if pool is not None and pool.stamp == stamp:
            return pool
        if pool is not None and not self._reload_lock.acquire(blocking=False):
            return pool  # another request is reopening; this one answers from the old pool
        if pool is None:
            self._reload_lock.acquire()
        try:
            if self._pool is not None and self._pool.stamp == stamp:
                return self._pool
            self._pool = self._open(stamp)
            self._gone = None
            self.generations_loaded += 1
            return self._pool
        except IndexFormatError as exc:
            if self._pool is None or not self.path.exists():
                self._gone = str(exc)
                raise IndexGone(str(exc)) from None
            return self._pool  # a half-written swap: keep answering from what we have
        finally:
            self._reload_lock.release()

    def _open(self, stamp: tuple[int, int, int]) -> _Pool:
        try:
            first = self.engine.open(self.path, self._embedder)
        except IndexFormatError:
            if not self._follows or self._embedder is None:
                raise
            first = self.engine.open(self.path, None)  # now another model (progressive phase 2)
        self._embedder = first.embedder
        readers = [first]
        for _ in range(self.workers - 1):
            readers.append(self.engine.open(self.path, self._embedder))
        return _Pool(stamp, first.generation or "", readers)

    @contextlib.contextmanager
    def reader(self) -> Iterator[SemanticIndex]:
        pool = self._refresh()
        r = pool.free.get()
        try:
            yield r
        finally:
            pool.free.put(r)

    @contextlib.contextmanager
    def writer(self) -> Iterator[SemanticIndex]:
        """A handle opened in the calling thread: the embedding cache's SQLite connection
        (used by writes) may only be used by the thread that opened it."""
        self._refresh()
        yield SemanticIndex.load(self.path, embedder=self._embedder)

    # --- requests ------------------------------------------------------------------------

    def search(self, req: P.SearchRequest, *, deadline: float | None = None) -> dict[str, Any]:
        """The hits of each query, ranked a few queries at a time so that a batch stops at
        ``deadline`` (a ``time.monotonic()`` value) instead of holding its worker; with
        ``highlight``, only the first ``P.HIGHLIGHT_HITS`` hits of each query get a span."""
        t0 = time.perf_counter()
        opts = req.options

        def check() -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(
                    "the search ran out of time; ask for fewer queries, a smaller k or no highlight"
                )

        results = []
        with self.reader() as index:
            generation = index.generation
            for at in range(0, len(req.queries), QUERIES_PER_STEP):
                check()
                step = list(req.queries[at : at + QUERIES_PER_STEP])
                batches = index.search_with(step, opts)
                for q, hits in zip(step, batches, strict=True):
                    spans: list[tuple[int, int]] = []
                    if req.highlight:
                        check()
                        spans = index.best_sentences(q, hits[: P.HIGHLIGHT_HITS])
                    shown = [
                        _hit(h, spans[i] if i < len(spans) else None) for i, h in enumerate(hits)
                    ]
                    results.append({"query": q, "hits": shown})
        took = round((time.perf_counter() - t0) * 1000, 3)
        head = {"mode": opts.mode, "k": opts.k, "generation": generation}
        if req.batch:
            return {**head, "results": results, "took_ms": took}
        return {**head, **results[0], "took_ms": took}

    def read(self, req: P.ReadRequest) -> dict[str, Any]:
        with self.reader() as index:
            if req.doc_id is not None:
                return read_document(index, req.doc_id, req.offset, req.max_chars)
            return read_chunk(index, int(req.chunk_id or 0), req.context, req.max_chars)

    def info(self) -> dict[str, Any]:
        with self.reader() as index:
            info = asdict(index.info())
        info["generation"] = self._pool.generation if self._pool else None
        info["writes"] = self.allow_writes
        return info

    def health(self) -> dict[str, Any]:
        """Cheap enough for the event loop: one stat, no reader, no reopening (the next
        search or read picks up a new generation)."""
        try:
            api.live_stamp(self.path)
        except OSError:
            self._gone = _GONE.format(self.path)
            raise IndexGone(self._gone) from None
        pool = self._pool
        return {"status": "ok", "chunks": pool.chunks if pool else 0, **self.engine.health()}

    # --- writes --------------------------------------------------------------------------

    def upsert(self, items: list[P.UpsertItem]) -> dict[str, Any]:
        self._check_writes()
        with self._write_lock, self.writer() as index:
            stats = index.upsert(
                [i.text for i in items],
                ids=[i.id for i in items],
                metadata=[i.metadata for i in items],
            )
        self._refresh()
        return {"upserted": len(items), "stats": _plain(stats)}

    def delete(self, ids: list[str]) -> dict[str, Any]:
        self._check_writes()
        with self._write_lock, self.writer() as index:
            removed = index.delete(ids)
        self._refresh()
        return {"deleted": removed}

    def refresh(self) -> dict[str, Any]:
        """Re-check the folders the index was built from (new, changed and deleted files, as
        ``semsearch index`` with no path does), then answer from the new generation."""
        from ..api import refresh_index

        self._check_writes()
        with self._write_lock:
            stats = refresh_index(self.path)
        pool = self._refresh()
        return {"stats": _plain(stats), "generation": pool.generation}

    def _check_writes(self) -> None:
        if not self.allow_writes:
            raise WritesDisabled("writes are disabled: start the server with --allow-writes")


def _hit(hit: Any, span: tuple[int, int] | None) -> dict[str, Any]:
    out = hit_record(hit)
    if span is not None:
        out["highlight"] = [int(span[0]), int(span[1])]
    return out


def _plain(value: Any) -> Any:
    try:
        return asdict(value)
    except TypeError:
        return value if isinstance(value, dict | list | int | float | str | None) else str(value)


__all__ = ["DeadlineExceeded", "IndexGone", "SearchService", "UsageError", "WritesDisabled"]
