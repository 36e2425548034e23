"""The read side of a segment's chunk database: every query a search, a hit, a document
view or a merge makes of it. :class:`~.chunkstore.ChunkStore` adds writing a new segment.

Row ``r`` of the vector file belongs to the chunk with ``row = r``. ``chunk_id`` is the
stable identifier users see; it survives re-indexing of unchanged documents while rows
are renumbered.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from ..errors import IndexFormatError, UsageError
from . import fts
from . import postings as kw_postings
from .binds import in_blocks
from .records import ChunkMention, ChunkRecord, ChunkRow, DocColumn, SkippedFile, StoredDocument
from .schema import present_columns, select_columns, sha256_sql
from .tokenize import TERMS_VERSION
from .where import where_sql

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


class ChunkReads:
    """A segment's chunk database, read: documents, chunks, their metadata and postings."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = conn
        self.path = path
        self._columns = present_columns(conn)
        self._postings: kw_postings.SegmentPostings | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def _select(self, table: str, names: Sequence[str], alias: str, *, raw: bool = False) -> str:
        """Column list for a SELECT, with defaults for columns an older store lacks."""
        return select_columns(self._columns.get(table, set()), names, alias, raw=raw)

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

    def dead_ids(self) -> list[str]:
        """Documents hidden by tombstones."""
        try:
            return [r[0] for r in self.conn.execute("SELECT doc_id FROM temp.dead")]
        except sqlite3.OperationalError:
            return []

    def skipped_files(self) -> dict[str, SkippedFile]:
        """The files skipped when this generation was built (none for an older store)."""
        if "skipped" not in self._columns:
            return {}
        try:
            rows = self.conn.execute("SELECT path, size, mtime_ns, inode, reason FROM skipped")
            return {r[0]: SkippedFile(*r) for r in rows}
        except sqlite3.DatabaseError as exc:
            raise _damaged(self, exc) from None

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
        out: dict[int, str] = {}
        selected = self._select("documents", (column,), "d")
        for marks, part in in_blocks(rowids):
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
    def fetch(self, rows: Iterable[int], offset: int = 0) -> dict[int, ChunkRecord]:
        """Records for the given vector rows (in batches, so a long list stays cheap), each
        with its row plus ``offset`` (a segment's first global row) and keyed by it."""
        out: dict[int, ChunkRecord] = {}
        for marks, part in in_blocks(rows):
            for rec in self._records(f"c.row IN ({marks})", part, offset):
                out[rec.row] = rec
        return out

    @_reading
    def texts_unless(self, rows: Iterable[int], kind: str) -> dict[int, str]:
        """The text of each of ``rows``, "" for a chunk of a ``kind`` document: a search's
        look at its best candidates' texts, without building their records (10 rows: a
        third of :meth:`fetch`'s time)."""
        kinds = self._select("documents", ("kind",), "d")
        out: dict[int, str] = {}
        for marks, part in in_blocks(rows):
            cur = self.conn.execute(
                f"SELECT c.row, CASE WHEN {kinds} = ? THEN '' ELSE c.text END"
                f" FROM chunks c JOIN documents d USING (doc_id) WHERE c.row IN ({marks})",
                [kind, *part],
            )
            out.update(cur)
        return out

    @_reading
    def mentions(
        self, rows: Iterable[int], names: Sequence[str], offset: int = 0
    ) -> list[ChunkMention]:
        """Those of the given rows whose section is one of ``names`` (as a whole or as the
        last part of a dotted name) or whose text contains one of them (case-sensitive),
        the text given only then: what the other rows hold is never read out. Each row is
        given plus ``offset`` (a segment's first global row)."""
        wanted = [int(r) for r in rows]
        if not names or not wanted:
            return []
        section = 'c."section"' if "section" in self._columns.get("chunks", set()) else "''"
        named = " OR ".join(f"{section} = ? OR {section} GLOB ?" for _ in names)
        found = " OR ".join("instr(c.text, ?) > 0" for _ in names)
        # Names are identifiers: no GLOB metacharacters to escape.
        args = [a for n in names for a in (n, "*." + n)]
        out: list[ChunkMention] = []
        for marks, part in in_blocks(wanted):
            cur = self.conn.execute(
                f"SELECT c.row + ?, {section}, CASE WHEN {found} THEN c.text ELSE '' END AS t"
                f" FROM chunks c WHERE c.row IN ({marks})"
                f" AND (t != '' OR {named})",
                [int(offset), *names, *part, *args],
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

    @functools.cached_property
    def _record_select(self) -> str:
        """The SELECT of :meth:`_records` up to its condition (this store's columns)."""
        doc_cols = self._select("documents", ("source", "title"), "d")
        chunk_cols = self._select(
            "chunks", ("ordinal", "start", "end", "line_start", "line_end", "page", "section"), "c"
        )
        stat_cols = self._select("documents", ("size", "mtime_ns", "inode", "kind"), "d")
        return (
            f"SELECT c.row + ?, c.chunk_id, c.doc_id, {doc_cols}, {chunk_cols}, c.text,"
            f" d.meta, {stat_cols}, {sha256_sql('d')} FROM chunks c JOIN documents d"
            " USING (doc_id) WHERE "
        )

    def _records(self, condition: str, args: Sequence[Any], offset: int = 0) -> list[ChunkRecord]:
        cur = self.conn.execute(self._record_select + condition, [int(offset), *args])
        # row .. text, then meta, size, mtime_ns, inode, kind, sha256
        return [
            ChunkRecord._make(
                (*r[:13], _load_meta(r[13]), None if r[14] is None else r[14:17], *r[17:])
            )
            for r in cur
        ]

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


def _load_meta(raw: str | None) -> Mapping[str, Any] | None:
    """Stored metadata; a NaN an older index holds reads as None, so output is JSON."""
    if not raw:
        return None
    try:
        data = json.loads(raw, parse_constant=lambda _: None)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
