"""Refreshing an index from the folders it remembers: a cheap check first, a build only if needed.

The check reads the manifest and the documents table (no vectors, no model, no embedding
cache), walks the remembered roots with the same discovery rules as ``semsearch index`` and
runs the builder's own stat-first plan: one ``stat`` per file, bytes hashed only where the
stat moved. Only when that finds a change is an engine made (loading the model) and a
build run, which plans again under the writer lock and publishes one generation. So an
unchanged tree costs a walk and a stat per file, and the rest grows with what changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, IndexLockedError, UsageError
from ..indexing import (
    BuildStats,
    Changes,
    ChunkParams,
    Engine,
    Item,
    Processed,
    Requested,
    Settings,
)
from ..indexing.engine import EngineCounts
from ..indexing.plan import Plan, make_plan
from ..ingest.discover import discover
from ..ingest.document import Document
from ..ingest.read import expand_items
from ..store.layout import IndexDir
from ..store.manifest import Manifest
from ..store.records import SkippedFile, StoredDocument
from . import fingerprint

log = logging.getLogger("semsearch")

_GLOB_CHARS = set("*?[")

#: Makes the engine that chunks and embeds; called only when something changed.
MakeEngine = Callable[[Manifest], Engine]


@dataclass(frozen=True)
class Delta:
    """What the cheap check found: the files discovered under the present roots and how
    the builder's plan classifies them against the live generation."""

    manifest: Manifest
    pointer: tuple[str, ...]
    roots: tuple[str, ...]
    missing: tuple[str, ...]
    files: tuple[Path, ...]
    plan: Plan
    #: What a build is given: the files, with data files (JSONL/CSV) read into their rows.
    items: tuple[Item, ...] = ()

    @property
    def changed(self) -> bool:
        return self.plan.changed

    @property
    def sources(self) -> tuple[str, ...]:
        """The files to add, update or remove, each once, in order."""
        queued = (i.source if isinstance(i, Document) else str(i) for i in self.plan.process)
        return tuple(dict.fromkeys([*queued, *sorted(self.plan.drop)]))

    @property
    def pending(self) -> int:
        """Documents to add, update or remove."""
        return self.plan.added + self.plan.updated + self.plan.removed


@dataclass(frozen=True)
class Refresh:
    """What a refresh did. ``complete`` is False when changes were found but not applied
    (the time budget ran out, or another writer held the index); ``pending`` counts them."""

    stats: BuildStats
    complete: bool
    pending: int
    missing: tuple[str, ...]
    reason: str = ""
    #: The files found added, changed or gone (for a watcher's batch line).
    files: tuple[str, ...] = ()


class LazyEngine(Engine):
    """An engine made on first use: a build that only removes documents, or finds on its
    own plan that nothing is left to embed, never loads the model."""

    def __init__(self, make: MakeEngine, manifest: Manifest) -> None:
        self._make, self._manifest = make, manifest
        self._engine: Engine | None = None
        self.counts = EngineCounts()

    def _get(self) -> Engine:
        if self._engine is None:
            self._engine = self._make(self._manifest)
            self._engine.counts = self.counts
        return self._engine

    def process(self, items: Sequence[Item], params: ChunkParams) -> Iterator[Processed | None]:
        return self._get().process(items, params) if items else iter(())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._get().encode(texts)

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()


class _OutOfTime(Exception):
    """Raised from the progress callback to abandon a build that outran its budget; the
    builder removes its temporary generation, so the live index is untouched."""


def root_present(root: str) -> bool:
    """A remembered root is present when it is a folder or a regular file (for a glob: its
    fixed leading folder exists). Anything else (gone, or swapped for a FIFO) is "missing"."""
    base = watch_base(root)
    return os.path.isdir(base) or (base == root and os.path.isfile(root))


def watch_base(root: str) -> str:
    """The folder or file to look at for a root: a glob's longest leading non-glob folder."""
    if not _GLOB_CHARS & set(root):
        return root
    fixed: list[str] = []
    for part in Path(root).parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else os.sep


def discover_roots(manifest: Manifest, roots: Sequence[str]) -> list[Path]:
    """The files ``semsearch index ROOTS`` would index now (the same discovery and ignore
    rules, as the index remembers them); roots that vanished are simply not walked."""
    return discover(
        roots, list(manifest.globs), allow_empty=True, excludes=manifest.excludes,
        follow_symlinks=manifest.follow_symlinks,
    )  # fmt: skip


def check(
    index_dir: IndexDir, roots: Collection[str] | None = None, *, full: bool = False
) -> Delta:
    """The cheap delta check of the index's remembered roots (or of ``roots`` among them).

    A root that is missing right now (an unmounted disk, a folder being replaced) is left
    out, so its documents are kept until it is back. When the tree's fingerprint shows it
    unchanged since a check found it in sync, ``files`` is empty; ``full`` always walks.
    """
    for attempt in range(3):
        try:
            return _check(index_dir, roots, full)
        except IndexFormatError:
            # A writer published (and tidied away the generation we had just resolved):
            # look again at the new one; a real problem repeats and is raised.
            if attempt == 2:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")  # pragma: no cover


def _check(index_dir: IndexDir, roots: Collection[str] | None, full: bool) -> Delta:
    pointer = index_dir.pointer()
    _, manifest = index_dir.manifest()
    wanted = list(manifest.roots) if roots is None else [str(r) for r in roots]
    if not wanted:
        raise UsageError(
            f"the index at {index_dir.path} remembers no folders to refresh; "
            "name the paths to index"
        )
    present = tuple(r for r in wanted if root_present(r))
    missing = tuple(r for r in wanted if r not in present)
    key = fingerprint.key(pointer, wanted)
    digest = fingerprint.fingerprint([watch_base(r) for r in wanted])  # before the full check
    known = fingerprint.remembered(index_dir.path, key)
    if known is not None and known["fingerprint"] == digest and not full:
        plan = Plan(unchanged=known["unchanged"], skipped=known["skipped"])
        return Delta(manifest, pointer, present, missing, (), plan)
    files = discover_roots(manifest, present)
    items = expand_items(files)  # a data file's rows are its documents, as when indexed
    docs, skipped = _documents(index_dir)
    plan = make_plan(Changes(items=items, roots=[Path(r) for r in present]), docs, skipped)
    if not plan.changed:
        fingerprint.remember(index_dir.path, key, digest, plan.unchanged, plan.skipped)
    return Delta(manifest, pointer, present, missing, tuple(files), plan, tuple(items))


def _documents(index_dir: IndexDir) -> tuple[dict[str, StoredDocument], dict[str, SkippedFile]]:
    """The generation's documents by id, and the files it skipped by path."""
    store = index_dir.open_store()
    try:
        return {d.doc_id: d for d in store.documents()}, store.skipped_files()
    finally:
        store.close()


def settings_of(manifest: Manifest) -> Settings:
    """The settings the index was built with: a refresh never changes them."""
    return Requested(backend="auto").resolve(
        manifest, manifest.model, manifest.precision, manifest.dim, rebuild=False
    )


def unchanged_stats(delta: Delta, seconds: float) -> BuildStats:
    """Stats of a refresh that found nothing to do (no build was run)."""
    m, plan = delta.manifest, delta.plan
    return BuildStats(
        documents=m.documents, chunks=m.chunks, added=0, updated=0, removed=0,
        unchanged=plan.unchanged, skipped=plan.skipped, embedded_chunks=0, cache_hits=0,
        seconds=seconds, backend=m.backend, changed=False,
        skipped_sources=tuple(plan.skipped_sources),
    )  # fmt: skip


def refresh(
    index_dir: IndexDir,
    make_engine: MakeEngine,
    *,
    roots: Collection[str] | None = None,
    budget: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    lock_timeout: float = 10.0,
    settings: Settings | None = None,
) -> Refresh:
    """Check the remembered roots (or ``roots``) and apply what changed as one generation.

    ``budget`` (seconds) bounds the whole refresh: when the check alone uses it up, or the
    build outruns it, nothing is published (vectors already embedded stay in the embedding
    cache for next time) and the result says so, with the live index as it was. Without a
    budget a busy index is waited for up to ``lock_timeout`` seconds, then IndexLockedError.
    """
    started = time.monotonic()
    deadline = None if budget is None else started + budget
    delta = check(index_dir, roots)
    if not delta.changed:
        stats = unchanged_stats(delta, time.monotonic() - started)
        return Refresh(stats, True, 0, delta.missing)
    from ..indexing.builder import build  # the write: loaded only when something changed

    if deadline is not None and time.monotonic() >= deadline:
        return _unapplied(delta, started, "time budget used up by the check")
    manifest = delta.manifest
    changes = Changes(
        items=delta.items, roots=[Path(r) for r in delta.roots],
        globs=manifest.globs, excludes=manifest.excludes,
        follow_symlinks=manifest.follow_symlinks,
    )  # fmt: skip
    engine = LazyEngine(make_engine, manifest)
    wait = lock_timeout if deadline is None else max(deadline - time.monotonic(), 0.0)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime

    try:
        stats = build(
            index_dir, changes, engine, settings or settings_of(manifest),
            progress=tick, lock_timeout=wait,
        )  # fmt: skip
    except _OutOfTime:
        return _unapplied(delta, started, "time budget ran out while embedding")
    except IndexLockedError:
        if deadline is None:
            raise
        return _unapplied(delta, started, "another process is writing the index")
    finally:
        engine.close()
    return Refresh(stats, True, 0, delta.missing, files=delta.sources)


def _unapplied(delta: Delta, started: float, reason: str) -> Refresh:
    stats = unchanged_stats(delta, time.monotonic() - started)
    return Refresh(stats, False, delta.pending, delta.missing, reason)


def warn_missing(missing: Sequence[str]) -> None:
    for root in missing:
        log.warning("%s is missing; its documents are kept until it is back", root)
