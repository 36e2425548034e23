"""Progressive indexing: searchable in seconds, then upgraded in place to full quality.

Phase 1 is a normal build with the static model (keyword + static vectors), whose manifest
records the transformer it will be upgraded to. Phase 2 (:func:`upgrade_index`) embeds every
stored chunk again with that transformer, through the embedding cache, and publishes the
result as one generation: queries use the static vectors until that instant and the
transformer's from then on, never both. The chunks are the same (the static model chunks
with its teacher's tokenizer and limit) and so are their ids and terms, so the upgraded
index equals a transformer build of the same files. A killed phase 2 leaves phase 1
answering; run again, it finds the chunks already embedded in the cache.

:func:`run_phase_two` is phase 2 as one process runs it, in the foreground or as the
background worker (:mod:`.background`): under the index's one phase-2 lock, it first embeds
the live chunks into the embedding cache *without* the writer lock (so the index can still
be updated meanwhile: updates stay in phase 1), then publishes under the writer lock, where
every chunk is a cache hit but those added since. Its progress is written beside the index
(:mod:`semsearch.store.phase2`) for ``info``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from .. import config as _config
from .. import indexing as _build
from ..embed import DEFAULT_PRECISION, STATIC_MODEL, check_recorded_model, models
from ..embed.models import STATIC_TEACHER
from ..errors import IndexLockedError, UsageError
from ..indexing import writer as _writer
from ..indexing.settings import BuildStats, Requested
from ..store import phase2 as _phase2
from ..store.embedding_cache import encode_cached
from ..store.layout import IndexDir
from ..store.manifest import Manifest
from ..util import first_line

log = logging.getLogger("semsearch")

#: Chunks embedded at a time before the publish (memory stays flat whatever the corpus).
BLOCK = 256
#: Progress is written at most this often (seconds).
REPORT_EVERY = 0.5
#: The publish waits this long for another writer (an update, a watcher) to finish.
PUBLISH_LOCK_TIMEOUT = 120.0


def phase_one(
    requested: Requested, manifest: Manifest | None
) -> tuple[Requested, Mapping[str, str] | None]:
    """The request for phase 1 and the upgrade to record: a new index is built with the
    static model, to be upgraded to the transformer asked (the static model's teacher, the
    only one that chunks a tree as it does). An index that exists keeps its own model: a
    static one without a pending upgrade gets one, anything else is only updated."""
    if not _is_teacher(requested.model):
        raise UsageError(
            f"progressive indexing upgrades the static model to {STATIC_TEACHER}, the model "
            "it is distilled from (and chunks like); it cannot upgrade to another model"
        )
    target = {
        "model": STATIC_TEACHER,
        "precision": requested.precision or DEFAULT_PRECISION,
    }
    if manifest is None:
        return replace(requested, model=STATIC_MODEL, precision=None), target
    own = replace(requested, model=None, precision=None)  # the index's own model
    return own, target if manifest.model == STATIC_MODEL and not manifest.upgrade else None


def _is_teacher(model: str | None) -> bool:
    """The static model's teacher (the bundled model), by any of its names."""
    return STATIC_TEACHER == models.DEFAULT_MODEL and models.is_default_model(model)


def pending_upgrade(index: str | os.PathLike[str] | None = None) -> str | None:
    """The model phase 2 will re-embed the index with; None when the index is complete
    (or there is no index)."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    if not index_dir.exists():
        return None
    upgrade = index_dir.manifest()[1].upgrade
    return upgrade["model"] if upgrade else None


def upgrade_index(
    index: str | os.PathLike[str] | None = None,
    *,
    progress: _build.Progress | None = None,
    lock_timeout: float = 10.0,
    reuse: _writer.Writer | None = None,
) -> BuildStats | None:
    """Phase 2's publish: embed every chunk again with the transformer the index is waiting
    for (through the cache) and publish it at once (``progress`` counts chunks). None when
    no upgrade is pending. ``reuse``: a writer already opened for the upgrade, whose model
    and cache are used (the settings are the live index's)."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    manifest = index_dir.manifest()[1]
    if not manifest.upgrade:
        return None
    writer = _upgrade_writer(index_dir, manifest, reuse)
    try:
        return _build.build(
            index_dir, _build.Changes(reembed=True), writer.engine, writer.settings,
            progress=progress, lock_timeout=lock_timeout,
        )  # fmt: skip
    finally:
        writer.close()  # its engine; a writer reused is closed by its owner


def _upgrade_writer(
    index_dir: IndexDir, manifest: Manifest, reuse: _writer.Writer | None = None
) -> _writer.Writer:
    assert manifest.upgrade
    model, precision = manifest.upgrade["model"], manifest.upgrade["precision"]
    check_recorded_model(model, index_dir.path)  # loaded on the index's word: known only
    return _writer.open_writer(
        index_dir.path, manifest, Requested(model=model, precision=precision), rebuild=True,
        embedder=reuse.embedder if reuse else None, cache=reuse.cache if reuse else None,
    )  # fmt: skip


def run_phase_two(
    index: str | os.PathLike[str] | None = None,
    *,
    progress: _build.Progress | None = None,
    lock: _phase2.WorkerLock | None = None,
) -> BuildStats | None:
    """Phase 2 as one process runs it, under the index's phase-2 lock (taken here unless
    ``lock`` is given; IndexLockedError when another process holds it): embed the live
    chunks into the cache, then publish (see the module). Its progress is recorded beside
    the index. None when no upgrade is pending."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    path = index_dir.path
    own = lock is None
    lock = lock or _phase2.WorkerLock.take(path)
    if lock is None:
        pid = _phase2.holder(path)
        raise IndexLockedError(
            f"phase 2 of {path} is already running{f' (pid {pid})' if pid else ''}"
        )
    report = _Reporter(path, progress)
    try:
        manifest = index_dir.manifest()[1]
        if not manifest.upgrade:
            return None
        started = time.perf_counter()
        writer = _upgrade_writer(index_dir, manifest)
        try:
            report.step("embedding", 0, manifest.chunks)
            embedded = _embed_live(index_dir, writer, report)
            report.step("publishing", 0, report.total)
            log.info("phase 2: publishing %s's vectors", manifest.upgrade["model"])
            stats = upgrade_index(
                path, progress=report, lock_timeout=PUBLISH_LOCK_TIMEOUT, reuse=writer
            )
        finally:
            writer.close()
        if stats is None:  # another process published it meanwhile
            report.end("done")
            return None
        report.done = report.total = stats.chunks
        report.end("done")
        new = embedded + stats.embedded_chunks
        return replace(
            stats, embedded_chunks=new, cache_hits=max(stats.chunks - new, 0),
            seconds=time.perf_counter() - started,
        )  # fmt: skip
    except KeyboardInterrupt:
        report.end("stopped")
        raise
    except Exception as exc:
        report.end("failed", first_line(exc))
        raise
    finally:
        if own:
            lock.close()


def _embed_live(index_dir: IndexDir, writer: _writer.Writer, report: _Reporter) -> int:
    """Embed the live generation's chunks into the cache, a block at a time; the number
    the transformer really ran on (the rest were in the cache already)."""
    store = index_dir.open_store()
    embedded = 0
    try:
        total = store.count_chunks()
        report.step("embedding", 0, total)
        done = 0
        for at in range(0, store.rows, BLOCK):
            texts = store.chunk_texts(at, at + BLOCK)
            if texts:
                hits = encode_cached(writer.embedder, texts, writer.cache)[1]
                embedded += len(texts) - hits
            done += len(texts)
            report.step("embedding", done, total)
    finally:
        store.close()
    return embedded


class _Reporter:
    """Writes the worker's progress beside the index (at most every REPORT_EVERY seconds,
    and at every change of state) and passes the embedding's on to a progress bar; called
    as ``progress(done, total)`` by the builder while publishing."""

    def __init__(self, path: Path, progress: _build.Progress | None) -> None:
        self.path, self.progress = path, progress
        self.state, self.done, self.total = "starting", 0, 0
        self._last = 0.0

    def step(self, state: str, done: int, total: int) -> None:
        changed, self.state = state != self.state, state
        self.done, self.total = done, total
        if self.progress is not None and state == "embedding":
            self.progress(done, total)  # the publish is mostly cache hits: not shown
        now = time.monotonic()
        if changed or now - self._last >= REPORT_EVERY or done >= total:
            self._last = now
            self._write()

    def __call__(self, done: int, total: int) -> None:
        self.step(self.state, done, total)

    def end(self, state: str, error: str | None = None) -> None:
        self.state = state
        self._write(error)

    def _write(self, error: str | None = None) -> None:
        _phase2.write_progress(
            self.path, self.state, self.done, self.total, pid=os.getpid(), error=error
        )
