"""A generation read as one store: its segments' chunk stores behind global row numbers.

Segment ``i`` owns rows ``offsets[i] .. offsets[i] + rows_i - 1`` of the generation (dead
rows included, so numbers never move while the generation lives). Tombstoned documents are
hidden inside each segment's store (:meth:`ChunkStore.open_readonly`), so every query here
sees live chunks only. Searches fan out to the segments and merge.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError
from ..util import first_line
from .chunkstore import ChunkStore
from .manifest import CHUNKS, SKIPPED, TOMBSTONES, Manifest, SegmentRef, segment_refs
from .records import ChunkMention, ChunkRecord, ChunkRow, SkippedFile, StoredDocument
from .segmented_keyword import SegmentedKeyword

#: Tombstones of one generation: segment name -> deleted document ids.
Tombstones = dict[str, list[str]]


def read_tombstones(gen: Path, m: Manifest) -> Tombstones:
    """The generation's tombstones (none for a version 1 or 2 generation)."""
    if TOMBSTONES not in m.files:
        return {}
    path = gen / TOMBSTONES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexFormatError(f"{path}: cannot be read ({first_line(exc)})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in data.values()
    ):
        raise IndexFormatError(f"{path}: not a mapping of segment to document ids")
    return {str(k): list(v) for k, v in data.items()}


def read_skipped(gen: Path, m: Manifest) -> dict[str, SkippedFile]:
    """The files skipped as of generation ``gen`` (kept in its own store before format 3)."""
    if m.format_version < 3:
        if CHUNKS not in m.files:
            return {}
        store = ChunkStore.open_readonly(gen / CHUNKS)
        try:
            return store.skipped_files()
        finally:
            store.close()
    if SKIPPED not in m.files:
        return {}
    path = gen / SKIPPED
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = [SkippedFile(str(p), int(a), int(b), int(c), str(r)) for p, a, b, c, r in data]
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        raise IndexFormatError(f"{path}: cannot be read ({first_line(exc)})") from None
    return {f.path: f for f in files}


@dataclass(frozen=True)
class Segment:
    """One open segment: where its files are, its first global row, its store."""

    ref: SegmentRef
    path: Path
    offset: int
    store: ChunkStore


class SegmentedStore:
    """The read API of :class:`ChunkStore` over every segment of one generation."""

    def __init__(
        self, segments: Sequence[Segment], skipped: Mapping[str, SkippedFile] | None = None
    ) -> None:
        self.segments = tuple(segments)
        self._skipped = dict(skipped or {})
        self.offsets = np.array([s.offset for s in self.segments], dtype=np.int64)
        self.rows = sum(s.ref.rows for s in self.segments)
        self._keyword: SegmentedKeyword | None = None
        self._kinds: dict[str, bool] = {}

    @classmethod
    def open(
        cls, gen: Path, m: Manifest, skip: Collection[str] = (), *, mapped: bool = False
    ) -> SegmentedStore:
        """Open generation ``gen``'s segments but ``skip`` (files already checked by the
        caller); ``mapped``: for searching (:meth:`ChunkStore.open_readonly`)."""
        dead = read_tombstones(gen, m)
        segments: list[Segment] = []
        offset = 0
        try:
            for ref in segment_refs(gen, m):
                if ref.name in skip:
                    continue
                path = gen.parent / ref.name
                store = ChunkStore.open_readonly(
                    path / CHUNKS, dead.get(ref.name, ()), mapped=mapped
                )
                segments.append(Segment(ref, path, offset, store))
                offset += ref.rows
        except BaseException:
            for s in segments:
                s.store.close()
            raise
        try:
            skipped = read_skipped(gen, m)
        except BaseException:
            for s in segments:
                s.store.close()
            raise
        return cls(segments, skipped)

    def skipped_files(self) -> dict[str, SkippedFile]:
        """The files skipped as of this generation, by path."""
        return dict(self._skipped)

    def close(self) -> None:
        for s in self.segments:
            s.store.close()

    # --- rows ------------------------------------------------------------------------------

    def split(self, rows: Iterable[int]) -> Iterator[tuple[Segment, np.ndarray, np.ndarray]]:
        """``(segment, positions, local rows)`` for the given global rows, per segment."""
        arr = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, np.int64)
        if len(self.segments) == 1:
            yield self.segments[0], np.arange(len(arr)), arr
            return
        which = np.searchsorted(self.offsets, arr, side="right") - 1
        for i, seg in enumerate(self.segments):
            pos = np.flatnonzero(which == i)
            if len(pos):
                yield seg, pos, arr[pos] - seg.offset

    def fetch(self, rows: Iterable[int]) -> dict[int, ChunkRecord]:
        out: dict[int, ChunkRecord] = {}
        for seg, _, local in self.split(rows):
            out.update(seg.store.fetch(local.tolist(), seg.offset))
        return out

    def texts_unless(self, rows: Iterable[int], kind: str) -> dict[int, str]:
        """:meth:`ChunkStore.texts_unless` over every segment (global rows)."""
        out: dict[int, str] = {}
        for seg, _, local in self.split(rows):
            out.update((r + seg.offset, t) for r, t in seg.store.texts_unless(local, kind).items())
        return out

    def mentions(self, rows: Iterable[int], names: Sequence[str]) -> list[ChunkMention]:
        """:meth:`ChunkStore.mentions` over every segment (global rows)."""
        out: list[ChunkMention] = []
        for seg, _, local in self.split(rows):
            out += seg.store.mentions(local, names, seg.offset)
        return out

    def holds_kind(self, kind: str) -> bool:
        """:meth:`ChunkStore.holds_kind` of any segment (asked once per generation)."""
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = any(s.store.holds_kind(kind) for s in self.segments)
        return found

    def doc_ids_of(self, rows: np.ndarray) -> list[str]:
        """The document of each chunk row, in the order given."""
        out = [""] * len(rows)
        for seg, pos, local in self.split(rows):
            for p, d in zip(pos.tolist(), seg.store.doc_ids_of(local.tolist()), strict=True):
                out[p] = d
        return out

    def chunk_texts(self, start: int, stop: int) -> list[str]:
        """Texts of the live rows ``start..stop-1`` in row order."""
        out: list[str] = []
        for seg in self.segments:
            lo, hi = max(start - seg.offset, 0), min(stop - seg.offset, seg.ref.rows)
            if lo < hi:
                out += seg.store.chunk_texts(lo, hi)
        return out

    def rows_where(self, where: Mapping[str, Any]) -> np.ndarray:
        parts = [s.store.rows_where(where) + s.offset for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def dead_rows(self) -> np.ndarray:
        parts = [s.store.dead_rows() + s.offset for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # --- documents -------------------------------------------------------------------------

    def holder(self, doc_id: str) -> Segment | None:
        """The segment holding a live document (newest first: a document lives in one)."""
        for seg in reversed(self.segments):
            if seg.store.document(doc_id) is not None:
                return seg
        return None

    def document_ids(self, pattern: str | None = None) -> list[str]:
        return [i for s in self.segments for i in s.store.document_ids(pattern)]

    def documents_named(self, name: str) -> list[str]:
        """Ids of live documents whose id or source is exactly ``name``."""
        return [i for s in self.segments for i in s.store.documents_named(name)]

    def documents(self) -> Iterator[StoredDocument]:
        yield from heapq.merge(
            *(s.store.documents() for s in self.segments), key=lambda d: d.doc_id
        )

    def document(self, doc_id: str) -> tuple[StoredDocument, Mapping[str, Any] | None] | None:
        seg = self.holder(doc_id)
        return None if seg is None else seg.store.document(doc_id)

    def document_text(self, doc_id: str) -> str:
        seg = self.holder(doc_id)
        return "" if seg is None else seg.store.document_text(doc_id)

    def document_rows(self, doc_id: str) -> list[ChunkRow]:
        """A document's chunks with their segment-local rows."""
        seg = self.holder(doc_id)
        return [] if seg is None else seg.store.document_rows(doc_id)

    def document_records(
        self, doc_id: str, first: int = 0, last: int | None = None
    ) -> list[ChunkRecord]:
        seg = self.holder(doc_id)
        if seg is None:
            return []
        recs = seg.store.document_records(doc_id, first, last)
        return [r._replace(row=r.row + seg.offset) for r in recs]

    def chunk_by_id(self, chunk_id: int) -> ChunkRecord | None:
        for seg in reversed(self.segments):
            rec = seg.store.chunk_by_id(chunk_id)
            if rec is not None:
                return rec._replace(row=rec.row + seg.offset)
        return None

    def count_documents(self) -> int:
        return sum(s.store.count_documents() for s in self.segments)

    def count_chunks(self) -> int:
        return sum(s.store.count_chunks() for s in self.segments)

    def keyword_index(self) -> SegmentedKeyword:
        if self._keyword is None:
            self._keyword = SegmentedKeyword(self)
        return self._keyword


class LiveDocuments(Mapping[str, StoredDocument]):
    """The live documents of a generation by id, looked up one at a time (a write touching
    a few documents never reads them all); iterating reads them all, once."""

    def __init__(self, store: SegmentedStore) -> None:
        self._store = store
        self._found: dict[str, tuple[StoredDocument, str] | None] = {}
        self._all: dict[str, StoredDocument] | None = None

    def home(self, doc_id: str) -> str | None:
        """The segment holding a live document."""
        got = self._lookup(doc_id)
        return None if got is None else got[1]

    def _lookup(self, doc_id: str) -> tuple[StoredDocument, str] | None:
        if doc_id not in self._found:
            seg = self._store.holder(doc_id)
            found = seg.store.document(doc_id) if seg is not None else None
            self._found[doc_id] = (found[0], seg.ref.name) if found and seg else None
        return self._found[doc_id]

    def __getitem__(self, doc_id: str) -> StoredDocument:
        got = self._lookup(doc_id)
        if got is None:
            raise KeyError(doc_id)
        return got[0]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._lookup(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return self._store.count_documents()

    def _every(self) -> dict[str, StoredDocument]:
        if self._all is None:
            self._all = {}
            for seg in self._store.segments:
                for d in seg.store.documents():
                    self._all[d.doc_id] = d
                    self._found[d.doc_id] = (d, seg.ref.name)
        return self._all
