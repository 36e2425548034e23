"""Checking an index file by file, and repairing it from its intact segments.

``verify_index`` checks every file of the live generation and of every segment it searches
against the manifest's checksums, whatever their size, and names each damaged file with the
segment holding it. ``repair_index`` rewrites the index from what is intact: a segment whose
chunk database is damaged (the only copy of its texts) is left out, derived files (vectors,
faiss) are rebuilt from the chunks, and then the remembered folders are checked again, so the
left-out documents that came from files are read and embedded anew. Until the repaired
generation is published, the live one answers exactly as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import config as _config
from ..store.layout import IndexDir
from ..store.manifest import CHUNKS, check_files, segment_refs


@dataclass(frozen=True)
class Damage:
    """One damaged file: the segment (generation directory) holding it, its name, why."""

    segment: str
    file: str
    problem: str

    @property
    def line(self) -> str:
        return f"{self.segment}/{self.file}: {self.problem}"


@dataclass(frozen=True)
class Verified:
    """What ``verify_index`` found in the live generation ``generation``."""

    generation: str
    segments: int
    files: int
    damage: tuple[Damage, ...]

    @property
    def ok(self) -> bool:
        return not self.damage


@dataclass(frozen=True)
class Repaired:
    """What ``repair_index`` did: the segments left out (with the live documents their
    manifest recorded), the documents read again from their files, and the result."""

    dropped: tuple[str, ...]
    dropped_documents: int
    reread: int
    documents: int
    chunks: int
    changed: bool
    missing_roots: tuple[str, ...] = ()


def verify_index(index: str | os.PathLike[str] | None = None) -> Verified:
    """Check every file the live generation uses against its checksum (never loads the
    model; works on an index too damaged to open for searching)."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    gen, manifest = index_dir.manifest()
    refs = segment_refs(gen, manifest)
    damage = []
    for problem in check_files(gen, manifest, checksums=True):
        where, _, why = problem.partition(": ")
        holder, _, name = where.rpartition("/")
        damage.append(Damage(holder or gen.name, name, why))
    files = len(manifest.files) + sum(len(r.files) for r in refs if r.name != gen.name)
    return Verified(gen.name, len(refs), files, tuple(damage))


def repair_index(index: str | os.PathLike[str] | None = None) -> Repaired:
    """Rebuild the index from its intact segments, then read again from their files the
    documents of any segment that had to be left out."""
    from ..indexing.writer import engine_maker
    from ..watch.delta import refresh
    from .operations import optimize_index

    where = index if index is not None else _config.load().index_dir
    index_dir = IndexDir(where)
    found = verify_index(where)
    lost = sorted({d.segment for d in found.damage if d.file == CHUNKS})
    gen, manifest = index_dir.manifest()
    recorded = {r.name: max(r.documents, 0) for r in segment_refs(gen, manifest)}
    stats = optimize_index(where)
    reread = 0
    missing: tuple[str, ...] = ()
    if lost and manifest.roots:
        result = refresh(index_dir, engine_maker(index_dir.path))
        stats, reread, missing = result.stats, result.stats.added, result.missing
    return Repaired(
        tuple(lost), sum(recorded.get(s, 0) for s in lost), reread, stats.documents,
        stats.chunks, stats.changed or reread > 0, missing,
    )  # fmt: skip
