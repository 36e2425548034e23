"""Deciding what a build must do, cheaply: stat first, hash only what changed.

A file whose size, mtime and inode equal those recorded is unchanged without being read.
Otherwise its bytes are hashed; equal content with a new stat is still unchanged (its
new stat is recorded when a generation is written anyway). So re-checking an unchanged
tree costs one ``stat`` per file, and the cost grows with the number of changed files.
A file that was skipped (binary, corrupt, unreadable) is remembered with its stat in the
same way, so it is not read, counted as added, or published again until it changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..ingest.document import Document
from ..ingest.read import file_stat
from ..store.records import SkippedFile, StoredDocument
from .settings import Changes, Item


@dataclass
class Plan:
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    skipped: int = 0
    removed: int = 0
    process: list[Item] = field(default_factory=list)
    drop: set[str] = field(default_factory=set)  # old doc ids not copied over
    #: Unchanged documents whose file stat moved (touched, copied back): recorded anew.
    restat: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    skipped_sources: list[str] = field(default_factory=list)
    #: Files skipped before whose stat has not moved: carried into the next generation.
    still_skipped: dict[str, SkippedFile] = field(default_factory=dict)
    #: The stat of each new or changed file queued, remembered if it turns out unreadable.
    stats: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.process or self.drop)


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, streamed; None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def make_plan(
    changes: Changes,
    old: Mapping[str, StoredDocument],
    skipped: Mapping[str, SkippedFile] | None = None,
) -> Plan:
    """Classify ``changes.items`` against the old index's documents (``doc_id`` -> record,
    looked up one at a time unless ``changes.roots`` asks what disappeared) and the files
    it skipped (path -> record; tried again on ``rebuild``)."""
    plan = Plan()
    seen: set[str] = set()
    for item in changes.items:
        sha: str | None
        if isinstance(item, Document):
            doc_id, sha = item.doc_id, item.sha256
        else:
            doc_id = str(item)
            prev = old.get(doc_id)
            st = file_stat(item)
            if st is None:
                plan.skipped += 1
                plan.skipped_sources.append(doc_id)
                if prev is not None:
                    seen.add(doc_id)  # unreadable now: keep what was indexed
                continue
            if prev is not None and (prev.size, prev.mtime_ns, prev.inode) == st:
                seen.add(doc_id)
                plan.unchanged += 1
                continue
            was = (skipped or {}).get(doc_id)
            if prev is None and was is not None and was[1:4] == st and not changes.rebuild:
                plan.skipped += 1
                plan.still_skipped[doc_id] = was
                continue
            plan.stats[doc_id] = st
            sha = file_sha256(item) if prev is not None else None
            if prev is not None and sha == prev.sha256:
                seen.add(doc_id)
                plan.unchanged += 1
                plan.restat[doc_id] = st
                continue
        seen.add(doc_id)
        prev = old.get(doc_id)
        if prev is not None and prev.sha256 == sha and not changes.rebuild:
            plan.unchanged += 1
            continue
        plan.process.append(item)
        if prev is not None:
            plan.updated += 1
            plan.drop.add(doc_id)
        else:
            plan.added += 1
    prefixes = [str(r).rstrip("/") for r in changes.roots]
    if prefixes:  # what is gone from the roots: every document must be looked at
        for doc_id in old:
            under_root = any(doc_id == p or doc_id.startswith(p + "/") for p in prefixes)
            if doc_id not in seen and under_root:
                plan.drop.add(doc_id)
    plan.drop.update(d for d in changes.remove if d in old)
    plan.removed = len(plan.drop) - plan.updated
    return plan
