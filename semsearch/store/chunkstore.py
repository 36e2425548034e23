"""Chunk records and documents in SQLite: fetching k hits reads k rows, not the whole corpus.

Row ``r`` of the vector file belongs to the chunk with ``row = r``. ``chunk_id`` is the
stable identifier users see; it survives re-indexing of unchanged documents while rows
are renumbered. The keyword index (:mod:`.fts`) mirrors the chunk texts as terms.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from ..errors import IndexFormatError, UsageError
from . import fts, inverted, postings_v3
from . import postings as kw_postings
from .records import ChunkMention, ChunkRecord, ChunkRow, DocColumn, SkippedFile, StoredDocument
from .schema import (
    CHUNK_COLUMNS,
    DOC_COLUMNS,
    INDEXES,
    TABLES,
    hide_dead,
    present_columns,
    select_columns,
    sha256_sql,
    sha256_value,
)
from .tokenize import TERMS_VERSION
from .where import where_sql

log = logging.getLogger("semsearch")
#: Rows a new segment buffers before one ``executemany`` writes them.
_FLUSH_ROWS = 4096

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reading(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A damaged database file (too large to be checksummed on every load) is found only
    when a page is read: say so in one line instead of a raw ``sqlite3`` traceback."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if "pattern too complex" in str(exc):  # the caller's glob, not the file
                raise UsageError(f"the glob is too long or complex ({exc})") from None
            raise _damaged(args[0], exc) from None

    return wrapper


def _damaged(store: object, exc: BaseException) -> IndexFormatError:
    where = getattr(store, "path", None) or "chunk database"
    return IndexFormatError(
        f"{where}: the chunk database is damaged ({exc}); check it with semsearch info --verify"
    )


class ChunkStore:
    """A SQLite file (or ``:memory:``) holding documents, chunks and their keyword index."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = conn
        self.path = path
        self._columns = present_columns(conn)
        self._postings: kw_postings.SegmentPostings | None = None
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
    def open_readonly(cls, path: Path, dead: Collection[str] = ()) -> ChunkStore:
        """Open a published store; ``immutable`` skips locking: published files never change.

        ``dead`` are documents deleted since (tombstones): temporary views named like the
        tables hide them and their chunks from every query, keyword ones included."""
        if not path.is_file():
            raise IndexFormatError(f"{path}: file is missing")
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM documents").fetchone()
            if dead:
                hide_dead(conn, dead)
            return cls(conn, path)
        except sqlite3.Error as exc:
            raise IndexFormatError(f"{path}: not a valid chunk database ({exc})") from None

    @_reading
    def dead_rows(self) -> np.ndarray:
        """Sorted rows of the chunks hidden by tombstones (empty when none)."""
        try:
            cur = self.conn.execute(
                "SELECT row FROM main.chunks WHERE doc_id IN (SELECT doc_id FROM temp.dead)"
                " ORDER BY row"
            )
        except sqlite3.OperationalError:  # no tombstones: no temp.dead table
            return np.zeros(0, np.int64)
        return np.fromiter((r[0] for r in cur), dtype=np.int64)

    def close(self) -> None:
        self._conn.close()

    def _select(self, table: str, names: Sequence[str], alias: str, *, raw: bool = False) -> str:
        """Column list for a SELECT, with defaults for columns an older store lacks."""
        return select_columns(self._columns.get(table, set()), names, alias, raw=raw)

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
    def conn(self) -> sqlite3.Connection:
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

    def dead_ids(self) -> list[str]:
        """Documents hidden by tombstones."""
        try:
            return [r[0] for r in self.conn.execute("SELECT doc_id FROM temp.dead")]
        except sqlite3.OperationalError:
            return []

    def update_stat(self, doc_id: str, stat: tuple[int, int, int]) -> None:
        """Record a document's new file stat (its content is unchanged)."""
        self.conn.execute(
            "UPDATE documents SET size = ?, mtime_ns = ?, inode = ? WHERE doc_id = ?",
            (*stat, doc_id),
        )

    def add_skipped(self, files: Iterable[SkippedFile]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?, ?)", files)

    def skipped_files(self) -> dict[str, SkippedFile]:
        """The files skipped when this generation was built (none for an older store)."""
        if "skipped" not in self._columns:
            return {}
        try:
            rows = self.conn.execute("SELECT path, size, mtime_ns, inode, reason FROM skipped")
            return {r[0]: SkippedFile(*r) for r in rows}
        except sqlite3.DatabaseError as exc:
            raise _damaged(self, exc) from None

    def commit(self) -> None:
        """Write what is buffered, the secondary indexes (made after the bulk insert) and the
        keyword postings, and commit: once, last."""
        fts.finish(self.conn, kw_postings.STORE_FORMAT)
        self.conn.executescript(INDEXES)
        self._writing().write(self.conn)
        self.conn.commit()
        self._inverted = None

    @_reading
    def postings(self) -> kw_postings.SegmentPostings:
        """This segment's keyword postings (see :mod:`.postings`)."""
        if self._postings is None:
            self._postings = kw_postings.SegmentPostings(self.conn)
        return self._postings

    @_reading
    def dead_doc_rowids(self) -> np.ndarray:
        """``rowid`` of the documents hidden by tombstones (the document postings' ids)."""
        try:
            cur = self.conn.execute(
                "SELECT rowid FROM main.documents WHERE doc_id IN (SELECT doc_id FROM temp.dead)"
            )
        except sqlite3.OperationalError:  # no tombstones
            return np.zeros(0, np.int64)
        return np.fromiter((r[0] for r in cur), dtype=np.int64)

    @_reading
    def doc_ids_by_rowid(
        self, rowids: Iterable[int], column: DocColumn = "doc_id"
    ) -> dict[int, str]:
        """The id (or source, or kind) of each document by ``rowid``."""
        wanted = [int(r) for r in rowids]
        out: dict[int, str] = {}
        selected = self._select("documents", (column,), "d")
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            cur = self.conn.execute(
                f"SELECT d.rowid, {selected} FROM main.documents d WHERE d.rowid IN ({marks})",
                part,
            )
            out.update((int(r), str(d)) for r, d in cur)
        return out

    # --- reading -------------------------------------------------------------------------

    @_reading
    def holds_kind(self, kind: str) -> bool:
        """Whether a document of this store (a deleted one perhaps) was made by ``kind``'s
        reader."""
        if "kind" not in self._columns.get("documents", set()):
            return kind == "text"
        cur = self.conn.execute("SELECT 1 FROM main.documents WHERE kind = ? LIMIT 1", (kind,))
        return cur.fetchone() is not None

    @_reading
    def document_ids(self, pattern: str | None = None) -> list[str]:
        """Ids of documents whose id or source matches a glob (all when ``pattern`` is None)."""
        if pattern is None:
            return [r[0] for r in self.conn.execute("SELECT doc_id FROM documents")]
        cur = self.conn.execute(
            "SELECT doc_id FROM documents WHERE doc_id GLOB ?1 OR source GLOB ?1", (pattern,)
        )
        return [r[0] for r in cur]

    @_reading
    def documents_named(self, name: str) -> list[str]:
        """Ids of documents whose id or source is exactly ``name`` (no glob characters)."""
        cur = self.conn.execute(  # two indexed lookups (an OR would scan every document)
            "SELECT doc_id FROM documents WHERE doc_id = ?1"
            " UNION SELECT doc_id FROM documents WHERE source = ?1",
            (name,),
        )
        return [r[0] for r in cur]

    @_reading
    def fetch(self, rows: Iterable[int]) -> dict[int, ChunkRecord]:
        """Records for the given vector rows (in batches, so a long list stays cheap)."""
        wanted = [int(r) for r in rows]
        out: dict[int, ChunkRecord] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            for rec in self._records(f"c.row IN ({','.join('?' * len(part))})", part):
                out[rec.row] = rec
        return out

    @_reading
    def mentions(self, rows: Iterable[int], names: Sequence[str]) -> list[ChunkMention]:
        """Those of the given rows whose section is one of ``names`` (as a whole or as the
        last part of a dotted name) or whose text contains one of them (case-sensitive),
        the text given only then: what the other rows hold is never read out."""
        wanted = [int(r) for r in rows]
        if not names or not wanted:
            return []
        section = 'c."section"' if "section" in self._columns.get("chunks", set()) else "''"
        named = " OR ".join(f"{section} = ? OR {section} GLOB ?" for _ in names)
        found = " OR ".join("instr(c.text, ?) > 0" for _ in names)
        # Names are identifiers: no GLOB metacharacters to escape.
        args = [a for n in names for a in (n, "*." + n)]
        out: list[ChunkMention] = []
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            cur = self.conn.execute(
                f"SELECT c.row, {section}, CASE WHEN {found} THEN c.text ELSE '' END AS t"
                f" FROM chunks c WHERE c.row IN ({','.join('?' * len(part))})"
                f" AND (t != '' OR {named})",
                [*names, *part, *args],
            )
            out.extend(ChunkMention(r, str(sec or ""), t) for r, sec, t in cur)
        return out

    @_reading
    def chunk_by_id(self, chunk_id: int) -> ChunkRecord | None:
        found = self._records("c.chunk_id = ?", [int(chunk_id)])
        return found[0] if found else None

    @_reading
    def document_records(
        self, doc_id: str, first: int = 0, last: int | None = None
    ) -> list[ChunkRecord]:
        """A document's chunks in order, optionally only ordinals ``first..last``."""
        cond, args = "c.doc_id = ? AND c.ordinal >= ?", [doc_id, first]
        if last is not None:
            cond, args = cond + " AND c.ordinal <= ?", [*args, last]
        return self._records(cond + " ORDER BY c.ordinal", args)

    def _records(self, condition: str, args: Sequence[Any]) -> list[ChunkRecord]:
        doc_cols = self._select("documents", ("source", "title"), "d")
        chunk_cols = self._select(
            "chunks", ("ordinal", "start", "end", "line_start", "line_end", "page", "section"), "c"
        )
        stat_cols = self._select("documents", ("size", "mtime_ns", "inode", "kind"), "d")
        cur = self.conn.execute(
            f"SELECT c.row, c.chunk_id, c.doc_id, {doc_cols}, {chunk_cols}, c.text, d.meta,"
            f" {stat_cols}, {sha256_sql('d')} FROM chunks c JOIN documents d USING (doc_id)"
            f" WHERE {condition}",
            args,
        )
        out = []
        for r in cur:
            *head, meta, size, mtime_ns, inode, kind, sha256 = r
            stat = None if size is None else (size, mtime_ns, inode)
            fields = (*head, _load_meta(meta), stat, kind, sha256)
            out.append(ChunkRecord(*fields))
        return out

    def document_text(self, doc_id: str) -> str:
        """A document's text rebuilt from its chunks: chunk texts at their offsets, the
        whitespace between them (which chunking drops) restored as newlines and spaces."""
        parts: list[str] = []
        pos, line = 0, 1
        for r in self.document_records(doc_id):
            if r.end <= pos:
                continue
            start = max(r.start, pos)
            if start > pos:
                breaks = min(max(r.line_start - line, 0), start - pos)
                parts.append("\n" * breaks + " " * (start - pos - breaks))
            parts.append(r.text[start - r.start :])
            pos, line = r.end, r.line_end
        return "".join(parts)

    def documents(self) -> Iterator[StoredDocument]:
        cols = self._select("documents", StoredDocument._fields, "d")
        try:
            for r in self.conn.execute(f"SELECT {cols} FROM documents d ORDER BY doc_id"):
                yield StoredDocument(*r)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self, exc) from None

    @_reading
    def document(self, doc_id: str) -> tuple[StoredDocument, Mapping[str, Any] | None] | None:
        cols = self._select("documents", StoredDocument._fields, "d")
        r = self.conn.execute(
            f"SELECT {cols}, d.meta FROM documents d WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        return None if r is None else (StoredDocument(*r[:-1]), _load_meta(r[-1]))

    @_reading
    def document_rows(self, doc_id: str) -> list[ChunkRow]:
        """A document's chunks, in order, for reusing chunk ids in a new generation."""
        cols = self._select("chunks", ChunkRow._fields, "c")
        cur = self.conn.execute(
            f"SELECT {cols} FROM chunks c WHERE doc_id = ? ORDER BY ordinal", (doc_id,)
        )
        return [ChunkRow(*r) for r in cur]

    @_reading
    def count_documents(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    @_reading
    def count_chunks(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    @_reading
    def chunk_texts(self, start: int, stop: int) -> list[str]:
        """Texts of rows ``start..stop-1`` in row order (to re-embed damaged vectors)."""
        cur = self.conn.execute(
            "SELECT text FROM chunks WHERE row >= ? AND row < ? ORDER BY row", (start, stop)
        )
        return [r[0] for r in cur]

    @_reading
    def rows_where(self, where: Mapping[str, Any]) -> np.ndarray:
        """Sorted vector rows of chunks matching every condition of ``where``."""
        clauses, args = where_sql(where)
        sql = "SELECT c.row FROM chunks c JOIN documents d USING (doc_id)"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        cur = self.conn.execute(sql + " ORDER BY c.row", args)
        return np.fromiter((r[0] for r in cur), dtype=np.int64)

    @_reading
    def doc_ids_of(self, rows: Iterable[int]) -> list[str]:
        """The document of each chunk row, in the order given."""
        return fts.doc_ids_of(self.conn, rows)

    @_reading
    def terms_current(self) -> bool:
        """Whether the keyword terms were made by this version's analyzer (else a write
        rewrites the segment, making them again from the texts), in this segment format
        (else a write rewrites it in this one)."""
        return (
            fts.stored_version(self.conn) == TERMS_VERSION
            and fts.stored_version(self.conn, key="store") == kw_postings.STORE_FORMAT
            and kw_postings.stored(self.conn)
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _load_meta(raw: str | None) -> Mapping[str, Any] | None:
    """Stored metadata; a NaN an older index holds reads as None, so output is JSON."""
    if not raw:
        return None
    try:
        data = json.loads(raw, parse_constant=lambda _: None)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _write_failure(exc: sqlite3.DatabaseError) -> bool:
    """SQLite failed to write (disk full, I/O error), not to read a damaged database."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) or "disk is full" in str(exc)
