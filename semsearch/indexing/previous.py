"""The live generation a build starts from: its manifest, segments, tombstones and skipped
files, checked before anything is carried from it (a damaged chunk database stops the
write in one line; damaged derived files are marked for repair)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, UsageError
from ..index import ann
from ..store.layout import IndexDir
from ..store.manifest import (
    CHUNKS,
    FAISS,
    TOMBSTONES,
    VECTORS,
    VERIFY_ON_LOAD_BYTES,
    Manifest,
    check_files,
    file_ok,
)
from ..store.npy import load_vectors
from ..store.records import SkippedFile, StoredDocument
from ..store.segments import (
    LiveDocuments,
    Segment,
    SegmentedStore,
    Tombstones,
    read_skipped,
    read_tombstones,
)
from .settings import Settings

log = logging.getLogger("semsearch")


class Previous:
    """The live generation a build starts from (empty when there is none)."""

    def __init__(self) -> None:
        self.gen: Path | None = None
        self.manifest: Manifest | None = None
        self.store: SegmentedStore | None = None
        self.docs: Mapping[str, StoredDocument] = {}
        self.tombstones: Tombstones = {}
        #: Segments to rewrite whatever the policy says: damaged derived files, old terms.
        self.repair: set[str] = set()
        self.bad_vectors: set[str] = set()
        #: Live documents and chunks of each segment.
        self.live: dict[str, tuple[int, int]] = {}
        #: Files skipped as of the live generation (path -> record).
        self.skipped: dict[str, SkippedFile] = {}

    def home(self, doc_id: str) -> str | None:
        """The segment holding a live document."""
        docs = self.docs
        return docs.home(doc_id) if isinstance(docs, LiveDocuments) else None

    @classmethod
    def open(
        cls, index_dir: IndexDir, settings: Settings, rebuild: bool, *, salvage: bool = False
    ) -> Previous:
        """The live generation, checked. A damaged chunk database stops a write in one
        line; when ``salvage`` (optimize), its segment is left out instead, with a warning,
        and the intact segments make the new index."""
        old = cls()
        root = index_dir.path
        if not index_dir.exists():
            if index_dir.has_generations():  # damaged, not new: never start over silently
                try:
                    index_dir.current()
                    reason = "its CURRENT pointer is not a plain file"
                except IndexFormatError as exc:
                    reason = str(exc)
                raise IndexFormatError(
                    f"cannot update the index: {reason}. Nothing was changed; it holds "
                    f"generations, so move {root} aside to start a new index"
                )
            return old
        try:
            gen, m = index_dir.manifest()
        except IndexFormatError as exc:
            raise IndexFormatError(
                f"cannot update the index: {exc}. Nothing was changed; move {root} aside "
                "to start a new index"
            ) from None
        diff = settings.differences(m)
        if diff and not rebuild:
            raise UsageError(
                f"the index was built with {'; '.join(diff)}; drop the option to keep the "
                "index's settings, or add --rebuild to re-embed every document"
            )
        lost: set[str] = set()
        for problem in check_files(gen, m, checksums=salvage):
            where, _, _ = problem.partition(":")
            holder, _, name = where.rpartition("/")
            holder = holder or gen.name
            if name == CHUNKS and salvage:
                log.warning(
                    "%s; the documents of segment %s are left out (index their files again)",
                    problem, holder,
                )  # fmt: skip
                lost.add(holder)
                continue
            if name in (CHUNKS, TOMBSTONES):
                raise IndexFormatError(
                    f"cannot update the index at {root}: {problem}. Nothing was changed; "
                    "its documents cannot be recovered from a damaged chunk database, so "
                    + (
                        "semsearch repair rebuilds the index from its intact segments and "
                        "reads the damaged one's files again"
                        if name == CHUNKS
                        else f"move {root} aside and index your files into a new one"
                    )
                )
            if name == FAISS:
                log.warning("%s; it is rebuilt from the vectors", problem)
            else:
                log.warning("%s; the vectors are re-embedded from the chunk texts", problem)
                old.bad_vectors.add(holder)
            old.repair.add(holder)
        old.gen, old.manifest = gen, m
        old.tombstones = read_tombstones(gen, m)
        old.skipped = read_skipped(gen, m)
        old.store = SegmentedStore.open(gen, m, skip=lost)
        old.repair |= lost  # left out of the new generation
        old.docs = LiveDocuments(old.store)
        old.live = {  # recorded by the manifest; counted only for older ones
            s.ref.name: (s.ref.documents, s.ref.chunks)
            if s.ref.documents >= 0 and s.ref.chunks >= 0
            else (s.store.count_documents(), s.store.count_chunks())
            for s in old.store.segments
        }
        for seg in old.store.segments:
            if not seg.store.terms_current() or ann.is_legacy(seg.path / FAISS):
                old.repair.add(seg.ref.name)  # old terms, or an IVF with a copy of the vectors
        counts = tuple(map(sum, zip(*old.live.values(), strict=True))) or (0, 0)
        if not lost and counts != (m.documents, m.chunks):
            old.close()
            raise IndexFormatError(
                f"cannot update the index at {root}: chunks.sqlite does not hold what the "
                "manifest says. Nothing was changed"
            )
        return old

    def check_chunks(self, seg: Segment) -> None:
        """Refuse to carry chunk rows whose file fails its checksum: a large database is not
        checksummed on load, and same-size damage would otherwise pass into a segment with
        a fresh, valid checksum (and its text and keyword index would disagree)."""
        size = seg.ref.files.get(CHUNKS, {}).get("size", 0)
        if size > VERIFY_ON_LOAD_BYTES and not file_ok(seg.path, seg.ref.files, CHUNKS):
            raise IndexFormatError(
                f"cannot update the index at {seg.path.parent}: {seg.ref.name}/{CHUNKS} does "
                "not match its checksum (file altered). Nothing was changed; its documents "
                "cannot be recovered from a damaged chunk database, so index your files into "
                "a new one"
            )

    def vectors(self, seg: Segment) -> np.ndarray | None:
        """A segment's vectors, fully verified first when too large to have been checked on
        load (so damage is never carried into a segment with a fresh, valid checksum)."""
        if self.manifest is None or seg.ref.name in self.bad_vectors:
            return None
        info = seg.ref.files.get(VECTORS, {})
        if info.get("size", 0) > VERIFY_ON_LOAD_BYTES and not file_ok(
            seg.path, seg.ref.files, VECTORS
        ):
            log.warning("vectors.npy does not match its checksum; re-embedding from the chunks")
            self.bad_vectors.add(seg.ref.name)
            return None
        try:
            return load_vectors(seg.path / VECTORS, self.manifest.dim)
        except IndexFormatError as exc:
            log.warning("%s; re-embedding from the chunks", exc)
            self.bad_vectors.add(seg.ref.name)
            return None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
