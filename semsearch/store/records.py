"""The store's typed rows: a chunk as written (:class:`ChunkRow`) and as read back with its
document (:class:`ChunkRecord`), a document's row, and a file a build skipped. Plain
NamedTuples, so every layer can hold them without importing SQLite or numpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

#: Which column names a document: its id, the file it came from, or the reader that made it.
DocColumn = Literal["doc_id", "source", "kind"]


class ChunkRow(NamedTuple):
    """A chunk as the builder writes it. Engines leave ``row`` and ``chunk_id`` at -1."""

    row: int
    chunk_id: int
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    section: str
    text: str


class ChunkRecord(NamedTuple):
    """A stored chunk with everything a hit shows."""

    row: int
    chunk_id: int
    doc_id: str
    source: str
    title: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    section: str
    text: str
    metadata: Mapping[str, Any] | None
    #: ``(size, mtime_ns, inode)`` of the source file when indexed (None for texts).
    doc_stat: tuple[int, int, int] | None = None
    #: The reader that made the document: text, code, markdown, html, pdf, record, ...
    kind: str = "text"
    #: SHA-256 of the document as indexed (of the file's bytes, for a whole file).
    sha256: str | None = None


class ChunkMention(NamedTuple):
    """A chunk whose section or text names what a query asks for, with its text when the
    text does (else "")."""

    row: int
    section: str
    text: str


class SkippedFile(NamedTuple):
    """A file a build could not read (binary, corrupt, unreadable), with the stat it had:
    while the stat is the same it is known to be skipped without being read again."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    reason: str


class StoredDocument(NamedTuple):
    doc_id: str
    source: str
    sha256: str
    n_chunks: int
    title: str
    kind: str
    size: int | None
    mtime_ns: int | None
    inode: int | None
