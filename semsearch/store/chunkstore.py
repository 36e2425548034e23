"""Chunk records and documents in SQLite: fetching k hits reads k rows, not the whole corpus.

This module writes a new segment's database (buffered rows, postings, copies from old
segments in one SQL pass); :mod:`.chunkreads` holds every read. The keyword index
(:mod:`.fts`) mirrors the chunk texts as terms.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError, UsageError
from . import fts, inverted, postings_v3
from . import postings as kw_postings
from .chunkreads import ChunkReads
from .records import ChunkRow, SkippedFile, StoredDocument
from .schema import (
    CHUNK_COLUMNS,
    DOC_COLUMNS,
    INDEXES,
    TABLES,
    hide_dead,
    sha256_value,
)

log = logging.getLogger("semsearch")
#: Rows a new segment buffers before one ``executemany`` writes them.
_FLUSH_ROWS = 4096


#: Bytes of a searching view's chunk database read through a memory map (SQLite caps it at
#: its compile-time limit, 2 GB by default; the map holds page-cache pages, not a copy).
MAPPED_BYTES = 1 << 40


class ChunkStore(ChunkReads):
    """A SQLite file (or ``:memory:``) holding documents, chunks and their keyword index:
    the reads of :class:`ChunkReads`, and writing a new segment."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        super().__init__(conn, path)
        self._warned: set[str] = set()
        #: A new segment's postings and rows not yet written (None when opened to read).
        self._inverted: inverted.Inverted | None = None
        self._doc_rows: list[tuple[Any, ...]] = []
        self._chunk_rows: list[tuple[Any, ...]] = []

    @classmethod
    def create(cls, path: Path | str) -> ChunkStore:
        """A new, empty store. On disk it is written once inside a temporary generation,
        so durability comes from the final fsync + rename, not from SQLite's journal."""
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(TABLES)
        conn.create_function("sha256_bytes", 1, sha256_value, deterministic=True)
        store = cls(conn, None if str(path) == ":memory:" else Path(path))
        store._inverted = inverted.Inverted()
        return store

    @classmethod
    def open_readonly(
        cls, path: Path, dead: Collection[str] = (), *, mapped: bool = False
    ) -> ChunkStore:
        """Open a published store; ``immutable`` skips locking: published files never change.

        ``dead`` are documents deleted since (tombstones): temporary views named like the
        tables hide them and their chunks from every query, keyword ones included.
        ``mapped`` (a searching view) reads the file through a memory map (SQLite's
        ``mmap_size``): a query's scattered records and postings then cost no system call
        and copy per page (20 records at 1M: 0.2 to 0.1 ms). A build leaves it off, so
        reading every old posting in a merge does not keep the file's pages resident."""
        if not path.is_file():
            raise IndexFormatError(f"{path}: file is missing")
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM documents").fetchone()
            if mapped:
                conn.execute(f"PRAGMA mmap_size={MAPPED_BYTES}")
            if dead:
                hide_dead(conn, dead)
            return cls(conn, path)
        except sqlite3.Error as exc:
            raise IndexFormatError(f"{path}: not a valid chunk database ({exc})") from None

    # --- writing -------------------------------------------------------------------------

    def add_document(
        self,
        doc: StoredDocument,
        rows: Sequence[ChunkRow],
        meta: Mapping[str, Any] | None,
        terms: inverted.Analysed | None = None,
    ) -> None:
        """Insert a document and its chunks (rows already numbered by the builder; ``terms``:
        their keyword terms when analysed already, else they are analysed here)."""
        self._doc_rows.append(
            (doc.doc_id, doc.source, sha256_value(doc.sha256), doc.n_chunks,
             self._dump_meta(doc.source, meta), doc.title, doc.kind, doc.size, doc.mtime_ns,
             doc.inode)
        )  # fmt: skip
        self.add_chunks(doc.doc_id, rows, terms)

    def _dump_meta(self, source: str, meta: Mapping[str, Any] | None) -> str | None:
        """Metadata as strict JSON: NaN and Infinity (which a JSONL file may hold) are stored
        as null, with one warning per source, since no JSON reader accepts them."""
        if not meta:
            return None
        try:
            return json.dumps(meta, allow_nan=False)
        except ValueError:
            if source not in self._warned:
                self._warned.add(source)
                log.warning("%s: metadata holds NaN or Infinity, stored as null", source)
            return json.dumps(_finite(meta), allow_nan=False)

    def add_chunks(
        self, doc_id: str, rows: Sequence[ChunkRow], terms: inverted.Analysed | None = None
    ) -> None:
        """Append chunks of a document already added (a long document arrives in pieces).
        Rows are buffered and written in blocks; their terms are analysed now, unless given."""
        self._chunk_rows += [(r.row, r.chunk_id, doc_id, *r[2:]) for r in rows]
        if terms is None:
            self._writing().add_texts([r.row for r in rows], [r.text for r in rows])
        else:
            self._writing().add_analysed([r.row for r in rows], terms)
        if len(self._chunk_rows) >= _FLUSH_ROWS:
            self._flush()

    @property
    def conn(self) -> sqlite3.Connection:  # type: ignore[override]
        """The database, with every buffered row written (so any query sees them)."""
        if self._doc_rows or self._chunk_rows:
            self._flush()
        return self._conn

    def _writing(self) -> inverted.Inverted:
        if self._inverted is None:
            raise UsageError("this chunk store was opened for reading")
        return self._inverted

    def _flush(self) -> None:
        """Write the buffered documents and chunks (before anything reads or updates them)."""
        docs, chunks = self._doc_rows, self._chunk_rows
        self._doc_rows, self._chunk_rows = [], []
        if docs:
            self._conn.executemany(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", docs
            )
        if chunks:
            self._conn.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", chunks
            )

    def set_chunk_count(self, doc_id: str, n_chunks: int) -> None:
        self.conn.execute("UPDATE documents SET n_chunks = ? WHERE doc_id = ?", (n_chunks, doc_id))

    def copy_documents_from(
        self,
        old: ChunkStore,
        drop: Collection[str],
        start: int = 0,
        only: Collection[str] | None = None,
    ) -> np.ndarray:
        """Copy every document of ``old`` except ``drop`` (or only those in ``only``) in one
        SQL pass, renumbering rows ``start..`` in the old order. Returns the old rows copied,
        in order, to copy vectors by. Rows hidden by ``old``'s tombstones are never copied."""
        if old.path is None:
            raise UsageError("can only copy from a store on disk")
        c = self.conn
        c.execute("ATTACH DATABASE ? AS old", (f"{old.path.resolve().as_uri()}?mode=ro",))
        try:
            gone = set(drop) | set(old.dead_ids())
            c.execute("CREATE TEMP TABLE drop_ids(doc_id TEXT PRIMARY KEY)")
            c.executemany("INSERT INTO drop_ids VALUES (?)", [(d,) for d in gone])
            keep = "doc_id NOT IN (SELECT doc_id FROM temp.drop_ids)"
            if only is not None:
                c.execute("CREATE TEMP TABLE only_ids(doc_id TEXT PRIMARY KEY)")
                c.executemany("INSERT INTO only_ids VALUES (?)", [(d,) for d in only])
                keep += " AND doc_id IN (SELECT doc_id FROM temp.only_ids)"
            doc_cols = old._select("documents", DOC_COLUMNS, "d", raw=True)
            c.execute(
                f"INSERT INTO documents SELECT {doc_cols} FROM old.documents d WHERE {keep}"
                " ORDER BY d.rowid"
            )
            chunk_cols = old._select("chunks", CHUNK_COLUMNS[1:], "c")
            c.execute(
                f"INSERT INTO chunks SELECT ROW_NUMBER() OVER (ORDER BY row) - 1 + ?,"
                f" {chunk_cols} FROM old.chunks c WHERE {keep} ORDER BY row",
                (start,),
            )
            cur = c.execute(f"SELECT row FROM old.chunks WHERE {keep} ORDER BY row")
            rows = np.fromiter((r[0] for r in cur), dtype=np.int64)
            self._copy_postings(old, rows, start)
            c.execute("DROP TABLE temp.drop_ids")
            c.execute("DROP TABLE IF EXISTS temp.only_ids")
            c.commit()
        except sqlite3.DatabaseError as exc:
            c.rollback()  # else DETACH fails ("database old is locked") and hides the cause
            if _write_failure(exc):  # the new store's disk is full: the old one is fine
                raise
            raise IndexFormatError(f"{old.path}: cannot be read ({exc})") from None
        finally:
            c.execute("DETACH DATABASE old")
        return rows

    def _copy_postings(self, old: ChunkStore, rows: np.ndarray, start: int) -> None:
        """The copied chunks' postings: the old segment's, renumbered (``rows``: old rows
        copied to ``start..``, in order), or its texts analysed again when its terms are of
        another analyser."""
        acc = self._writing()
        if not len(rows):
            return
        current, legacy = old.terms_current(), postings_v3.has_lists(old.conn)
        if current or legacy:
            size = old.conn.execute("SELECT coalesce(max(row), -1) + 1 FROM main.chunks")
            remap = np.full(int(size.fetchone()[0]), -1, np.int64)
            remap[rows] = np.arange(start, start + len(rows))
            acc.add_stored(old.conn, remap, legacy=not current)
            return
        cur = self.conn.cursor().execute(
            "SELECT row, text FROM chunks WHERE row >= ? ORDER BY row", (start,)
        )
        while batch := cur.fetchmany(2000):
            acc.add_texts([r for r, _ in batch], [t for _, t in batch])

    def update_stat(self, doc_id: str, stat: tuple[int, int, int]) -> None:
        """Record a document's new file stat (its content is unchanged)."""
        self.conn.execute(
            "UPDATE documents SET size = ?, mtime_ns = ?, inode = ? WHERE doc_id = ?",
            (*stat, doc_id),
        )

    def add_skipped(self, files: Iterable[SkippedFile]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?, ?)", files)

    def commit(self) -> None:
        """Write what is buffered, the secondary indexes (made after the bulk insert) and the
        keyword postings, and commit: once, last."""
        fts.finish(self.conn, kw_postings.STORE_FORMAT)
        self.conn.executescript(INDEXES)
        self._writing().write(self.conn)
        self.conn.commit()
        self._inverted = None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write_failure(exc: sqlite3.DatabaseError) -> bool:
    """SQLite failed to write (disk full, I/O error), not to read a damaged database."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) or "disk is full" in str(exc)
