"""Phase 1 on every core: worker processes read, chunk, analyse and embed; this process writes.

With the static model, a build's work is reading, chunking (token counts), static vectors and
keyword analysis (about two thirds of its CPU), then SQLite rows and postings. ``PipelineEngine``
hands the first part to a pool of worker processes, a *task* (a run of consecutive files, at
most ``TASK_FILES`` files or ``TASK_BYTES`` bytes) at a time, while the builder writes what
came back in this process. It yields exactly what ``LocalEngine`` yields, in input order, so
the index is the same: the same chunks and rows, bit-identical vectors (a static vector does
not depend on its batch) and the same postings (terms are numbered here, sorted at commit).

Bounded: at most ``IN_FLIGHT`` tasks per worker are queued or done and not yet written, and
a file over ``BIG_FILE`` bytes is read and streamed through in this process, in pieces, as
``LocalEngine`` does, so memory never grows with the tree or with one file.

Safe: workers start by ``forkserver`` (``spawn`` where there is none), never by ``fork``, so a
process with threads (a server, a watcher, the tokenizer's pool) can build. A worker that
dies ends the build with one error and the temporary generation removed, the live index
untouched; a file that cannot be read is skipped with its warning, given here as the worker
gave it. Small inputs, one CPU, ``Document`` items and a main script without a main guard (which
every worker would run again) stay in this process.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..embed import Embedder
from ..errors import IndexWriteError
from ..ingest.document import Document
from ..store.inverted import Analyser
from ..util import usable_cpus
from .engine import Engine, LocalEngine, Processed
from .settings import ChunkParams, Item

log = logging.getLogger("semsearch")

#: Files and bytes of one task: the unit handed to a worker and returned whole.
TASK_FILES = 8
TASK_BYTES = 128 << 10
#: A file larger than this is processed in this process, streamed in pieces.
BIG_FILE = 8 << 20
#: Tasks per worker submitted ahead of the one being written.
IN_FLIGHT = 4
#: Imported once by the fork server, not by each worker on its first file (each is
#: optional: one not installed is skipped): the static encoder's and the readers' libraries.
_PRELOAD = ("scipy.sparse", "selectolax.lexbor", "markdown_it")
#: Below these, starting workers (about half a second) costs more than it saves.
MIN_FILES = 48
MIN_BYTES = 3 << 20


class _Task(NamedTuple):
    items: list[Item]
    #: Processed here (``Document`` items, big files) rather than by a worker.
    here: bool
    #: Bytes of its files (0 for what is processed here).
    size: int = 0


class _Done(NamedTuple):
    """What a worker hands back for one task."""

    pieces: list[Processed | None]
    skipped: list[tuple[str, str]]  # (item, why)
    warnings: list[tuple[int, str]]  # (level, message) logged while reading
    embedded: int
    cpu: float  # the worker's CPU seconds on the task


class PipelineEngine(Engine):
    """``LocalEngine``'s results made by ``workers`` processes (default: one per CPU), each
    with its own embedder from ``make_embedder`` (picklable, the same model as ``embedder``)."""

    def __init__(
        self,
        embedder: Embedder,
        make_embedder: Callable[[], Embedder],
        *,
        workers: int | None = None,
        min_files: int | None = None,
        min_bytes: int | None = None,
    ) -> None:
        self.local = LocalEngine(embedder)
        self.counts = self.local.counts
        self.max_tokens = embedder.max_tokens
        self.make_embedder = make_embedder
        self.workers = usable_cpus() if workers is None else workers
        self.min_files = MIN_FILES if min_files is None else min_files
        self.min_bytes = MIN_BYTES if min_bytes is None else min_bytes
        #: CPU seconds the workers spent on this engine's tasks (benchmarks report it).
        self.worker_cpu = 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode(texts)

    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        tasks = _tasks(items)
        pooled = [t for t in tasks if not t.here]
        files, size = sum(len(t.items) for t in pooled), sum(t.size for t in pooled)
        small = files < self.min_files or size < self.min_bytes
        if self.workers < 2 or small or not _main_reimport_safe():
            yield from self.local.process(items, params)
            return
        # This process does the first task itself while the workers start (~0.5 s).
        tasks[0] = tasks[0]._replace(here=True)
        pool = ProcessPoolExecutor(
            self.workers, mp_context=_context(), initializer=_start,
            initargs=(self.make_embedder,),
        )  # fmt: skip
        try:
            yield from self._pipelined(pool, tasks, params)
        except BrokenProcessPool:
            raise IndexWriteError(
                "an indexing worker process stopped unexpectedly (killed, or out of memory);"
                " the index is unchanged"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _pipelined(
        self, pool: ProcessPoolExecutor, tasks: list[_Task], params: ChunkParams
    ) -> Iterator[Processed | None]:
        """The tasks' pieces in order, up to ``IN_FLIGHT`` tasks per worker ahead."""
        ahead: deque[tuple[_Task, Future[_Done] | None]] = deque()
        pending = iter(tasks)
        while True:
            while len(ahead) < IN_FLIGHT * self.workers:
                task = next(pending, None)
                if task is None:
                    break
                future = None if task.here else pool.submit(_run, task.items, params)
                ahead.append((task, future))
            if not ahead:
                break
            task, future = ahead.popleft()
            if future is None:
                yield from self.local.process(task.items, params)
            else:
                yield from self._taken(future)

    def _taken(self, future: Future[_Done]) -> list[Processed | None]:
        """A task's pieces, its warnings logged and its counts added here."""
        done = future.result()
        for level, message in done.warnings:
            log.log(level, "%s", message)
        for item, why in done.skipped:
            self.counts.skipped.append(item)
            self.counts.reasons[item] = why
        self.counts.embedded += done.embedded
        self.worker_cpu += done.cpu
        return done.pieces


def static_engine(embedder: Embedder) -> Engine:
    """The engine of a static-model build: the pipeline, whose workers load the same table."""
    from ..embed.static import StaticEmbedder

    if not isinstance(embedder, StaticEmbedder):
        return LocalEngine(embedder)
    return PipelineEngine(embedder, functools.partial(StaticEmbedder, embedder.model_dir))


def _tasks(items: Sequence[Item]) -> list[_Task]:
    """Consecutive items in tasks: runs of files for the workers, bounded by ``TASK_FILES``
    and ``TASK_BYTES``, and runs of what this process handles (documents, big files)."""
    tasks: list[_Task] = []
    run: list[Item] = []
    here, size = False, 0
    for item in items:
        n = _size(item)
        mine = isinstance(item, Document) or n > BIG_FILE
        bytes_ = 0 if mine else n
        if run and (mine != here or (not here and (len(run) >= TASK_FILES or size >= TASK_BYTES))):
            tasks.append(_Task(run, here, size))
            run, size = [], 0
        run.append(item)
        here = mine
        size += bytes_
    if run:
        tasks.append(_Task(run, here, size))
    return tasks


def _size(item: Item) -> int:
    if isinstance(item, Document):
        return len(item.text)
    try:
        return os.stat(item).st_size
    except OSError:
        return 0  # the worker finds out why, and says so


def _main_reimport_safe() -> bool:
    """Whether a worker may import this process's main script again, as ``forkserver`` and
    ``spawn`` do: a script that indexes at top level, with no ``if __name__ == "__main__"``
    guard, would index again in every worker. Such a script builds in process instead
    (``-m`` modules, console scripts, notebooks and the REPL are safe)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    if main is None or getattr(spec, "name", None) or path is None:
        return True
    try:
        return "__main__" in Path(path).read_text(errors="replace")
    except OSError:
        return False


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (its server imports this module once, then forks a worker in
    milliseconds), else ``spawn``: never ``fork``, which is unsafe in a process with threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, *_PRELOAD])
        return ctx
    return multiprocessing.get_context("spawn")


# --- in the worker process -------------------------------------------------------------------

_engine: LocalEngine | None = None
_analyse: Analyser | None = None
_logged: list[tuple[int, str]] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _logged.append((record.levelno, record.getMessage()))


def _start(make_embedder: Callable[[], Embedder]) -> None:
    """Load the model once per worker; its warnings are collected and handed back."""
    global _engine, _analyse
    # One tokenizer thread per worker: the pool is the parallelism.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    worker_log = logging.getLogger("semsearch")
    worker_log.handlers[:] = [_Collect()]
    worker_log.propagate = False
    worker_log.setLevel(logging.INFO)
    _engine = LocalEngine(make_embedder())
    _analyse = Analyser()


def _run(items: list[Item], params: ChunkParams) -> _Done:
    """One task: ``LocalEngine``'s pieces, each with its chunks' keyword terms."""
    if _engine is None or _analyse is None:
        raise RuntimeError("indexing worker not started")
    # What earlier tasks left alive (the memos of pieces, words and terms: about a million
    # objects on Python's library) is kept for the worker's life: frozen, the collector
    # stops walking it again at every full collection (0.5 s of a worker's CPU there).
    gc.freeze()
    _logged.clear()
    began = time.process_time()
    counts = _engine.counts
    counts.skipped.clear()
    counts.reasons.clear()
    counts.embedded = 0
    pieces: list[Processed | None] = []
    for piece in _engine.process(items, params):
        if piece is not None:
            doc = dataclasses.replace(piece.doc, sections=())  # not needed past chunking
            piece = dataclasses.replace(piece, doc=doc, terms=_analyse(r.text for r in piece.rows))
        pieces.append(piece)
    skipped = [(s, counts.reasons.get(s, "could not be read")) for s in counts.skipped]
    took = time.process_time() - began
    return _Done(pieces, skipped, list(_logged), counts.embedded, took)
