"""Applying a batch of changed paths without walking the whole tree, when that is safe.

Most batches are edits of files the index already holds: a save in place, an editor's
temp-file-and-rename, a delete. Such a file was admitted by discovery when it was indexed,
and the ignore rules cannot have changed in a batch that touched no ignore file, so it is
updated (or removed) directly, and the build's cost follows the batch, not the tree.

Anything discovery would have to judge (a new file, a folder created, moved or deleted, an
ignore file edited, the root itself) makes :func:`classify` answer None, and the watcher
refreshes the root instead: the same walk and rules as ``semsearch index``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from ..indexing import Changes, build
from ..ingest.read import file_stat
from ..store.layout import IndexDir
from .delta import LazyEngine, MakeEngine, Refresh, settings_of

#: Ignore files change what discovery admits: any event on one means a full refresh.
RULE_FILES = frozenset({".gitignore", ".semsearchignore"})


@dataclass(frozen=True)
class Targeted:
    """Files the index holds that changed (``update``) or are gone (``remove``)."""

    update: tuple[Path, ...]
    remove: frozenset[str]


def classify(index_dir: IndexDir, paths: Collection[str]) -> Targeted | None:
    """The direct changes for ``paths``, or None when discovery must decide."""
    store = index_dir.open_store()
    try:
        update: list[Path] = []
        remove: set[str] = set()
        for p in sorted(paths):
            if os.path.basename(p) in RULE_FILES or os.path.isdir(p):
                return None
            if store.document(p) is not None:
                if file_stat(Path(p)) is not None:
                    update.append(Path(p))
                else:  # deleted, renamed away, or no longer a regular file (a FIFO)
                    remove.add(p)
            elif os.path.lexists(p) or store.document_ids(_literal(p) + "/*"):
                return None  # a new file, or a folder of indexed files that went away
        return Targeted(tuple(update), frozenset(remove))
    finally:
        store.close()


def apply(
    index_dir: IndexDir,
    make_engine: MakeEngine,
    targeted: Targeted,
    *,
    lock_timeout: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> Refresh:
    """One build (one generation, if anything really changed) for ``targeted``."""
    _, manifest = index_dir.manifest()
    engine = LazyEngine(make_engine, manifest)
    changes = Changes(items=targeted.update, remove=targeted.remove)
    try:
        stats = build(
            index_dir, changes, engine, settings_of(manifest), progress=progress,
            lock_timeout=lock_timeout,
        )  # fmt: skip
    finally:
        engine.close()
    files = tuple(dict.fromkeys([*map(str, targeted.update), *sorted(targeted.remove)]))
    return Refresh(stats, True, 0, (), files=files)


def _literal(text: str) -> str:
    """Escape SQLite GLOB metacharacters so a path matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
