"""Chunk records and documents in SQLite: fetching k hits reads k rows, not the whole corpus.

Row ``r`` of the vector file belongs to the chunk with ``row = r``. ``chunk_id`` is the
stable identifier users see; it survives re-indexing of unchanged documents while rows
are renumbered. An FTS5 table mirrors the chunk texts for keyword search, kept in sync by
the same inserts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexFormatError

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    meta TEXT
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='row', tokenize='porter unicode61'
);
"""


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A stored chunk with everything a hit shows."""

    row: int
    chunk_id: int
    doc_id: str
    source: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    metadata: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class StoredDocument:
    doc_id: str
    source: str
    sha256: str
    n_chunks: int


class ChunkStore:
    """A SQLite file (or ``:memory:``) holding documents, chunks and their FTS mirror."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def create(cls, path: Path | str) -> ChunkStore:
        """A new, empty store. On disk it is written once inside a temporary generation,
        so durability comes from the final fsync + rename, not from SQLite's journal."""
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(_SCHEMA)
        return cls(conn, None if str(path) == ":memory:" else Path(path))

    @classmethod
    def open_readonly(cls, path: Path) -> ChunkStore:
        """Open a published store; ``immutable`` skips locking: published files never change."""
        if not path.is_file():
            raise IndexFormatError(f"{path}: file is missing")
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM documents").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{path}: not a valid chunk database ({exc})") from None
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    # --- writing -------------------------------------------------------------------------

    def add_document(
        self,
        doc_id: str,
        source: str,
        sha256: str,
        rows: Sequence[tuple[int, int, int, int, int, int, int, str]],
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert a document and its chunks: rows of
        (row, chunk_id, ordinal, start, end, line_start, line_end, text)."""
        self.conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
            (doc_id, source, sha256, len(rows), json.dumps(meta) if meta else None),
        )
        self.conn.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], r[1], doc_id, *r[2:]) for r in rows],
        )
        self.conn.executemany(
            "INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)", [(r[0], r[7]) for r in rows]
        )

    def copy_documents_from(self, old: ChunkStore, drop: set[str]) -> np.ndarray:
        """Copy every document of ``old`` except ``drop`` in one SQL pass, renumbering rows
        0..n-1 in the old order. Returns the old rows copied, in order, to copy vectors by."""
        if old.path is None:
            raise ValueError("can only copy from a store on disk")
        c = self.conn
        c.execute("ATTACH DATABASE ? AS old", (str(old.path),))
        try:
            c.execute("CREATE TEMP TABLE drop_ids(doc_id TEXT PRIMARY KEY)")
            c.executemany("INSERT INTO drop_ids VALUES (?)", [(d,) for d in drop])
            keep = "doc_id NOT IN (SELECT doc_id FROM temp.drop_ids)"
            c.execute(f"INSERT INTO documents SELECT * FROM old.documents WHERE {keep}")
            c.execute(
                "INSERT INTO chunks SELECT ROW_NUMBER() OVER (ORDER BY row) - 1, chunk_id, doc_id,"
                ' ordinal, start, "end", line_start, line_end, text'
                f" FROM old.chunks WHERE {keep} ORDER BY row"
            )
            c.execute("INSERT INTO chunks_fts(rowid, text) SELECT row, text FROM chunks")
            cur = c.execute(f"SELECT row FROM old.chunks WHERE {keep} ORDER BY row")
            rows = np.fromiter((r[0] for r in cur), dtype=np.int64)
            c.execute("DROP TABLE temp.drop_ids")
            c.commit()
        finally:
            c.execute("DETACH DATABASE old")
        return rows

    def document_ids(self, pattern: str | None = None) -> list[str]:
        """Ids of documents whose id or source matches a glob (all when ``pattern`` is None)."""
        if pattern is None:
            return [r[0] for r in self.conn.execute("SELECT doc_id FROM documents")]
        cur = self.conn.execute(
            "SELECT doc_id FROM documents WHERE doc_id GLOB ?1 OR source GLOB ?1", (pattern,)
        )
        return [r[0] for r in cur]

    def commit(self) -> None:
        self.conn.commit()

    # --- reading -------------------------------------------------------------------------

    def fetch(self, rows: Iterable[int]) -> dict[int, ChunkRecord]:
        """Records for the given vector rows (in batches, so a long list stays cheap)."""
        wanted = [int(r) for r in rows]
        out: dict[int, ChunkRecord] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            cur = self.conn.execute(
                'SELECT c.row, c.chunk_id, c.doc_id, d.source, c.ordinal, c.start, c."end",'
                " c.line_start, c.line_end, c.text, d.meta"
                f" FROM chunks c JOIN documents d USING (doc_id) WHERE c.row IN ({marks})",
                part,
            )
            for r in cur:
                meta = json.loads(r[10]) if r[10] else None
                out[r[0]] = ChunkRecord(
                    row=r[0], chunk_id=r[1], doc_id=r[2], source=r[3], ordinal=r[4], start=r[5],
                    end=r[6], line_start=r[7], line_end=r[8], text=r[9], metadata=meta,
                )  # fmt: skip
        return out

    def documents(self) -> Iterator[StoredDocument]:
        cur = self.conn.execute("SELECT doc_id, source, sha256, n_chunks FROM documents")
        for r in cur:
            yield StoredDocument(*r)

    def document_rows(self, doc_id: str) -> list[tuple[int, int, int, int, int, int, int, str]]:
        """A document's chunks as insert tuples, in order, for copying into a new generation."""
        cur = self.conn.execute(
            'SELECT row, chunk_id, ordinal, start, "end", line_start, line_end, text'
            " FROM chunks WHERE doc_id = ? ORDER BY ordinal",
            (doc_id,),
        )
        return list(cur)

    def count_documents(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def count_chunks(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def rows_where(self, where: Mapping[str, Any]) -> np.ndarray:
        """Sorted vector rows of chunks matching every condition of ``where``."""
        clauses, args = _where_sql(where)
        sql = "SELECT c.row FROM chunks c JOIN documents d USING (doc_id)"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        cur = self.conn.execute(sql + " ORDER BY c.row", args)
        return np.fromiter((r[0] for r in cur), dtype=np.int64)

    def keyword_search(
        self, fts_query: str, k: int, where: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` rows by FTS5's BM25 for an FTS query; scores are positive, higher better."""
        clauses, args = _where_sql(where or {})
        sql = (
            "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f"
            " JOIN chunks c ON c.row = f.rowid JOIN documents d USING (doc_id)"
            " WHERE chunks_fts MATCH ?"
        )
        if clauses:
            sql += " AND " + " AND ".join(clauses)
        sql += " ORDER BY s DESC, f.rowid LIMIT ?"
        rows = self.conn.execute(sql, [fts_query, *args, k]).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        scores = np.array([r[1] for r in rows], dtype=np.float32)
        return ids, scores


def _where_sql(where: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """SQL conditions for a filter: ``source`` is a glob (on the whole path or any trailing
    part of it); other keys must equal the document's metadata value."""
    clauses: list[str] = []
    args: list[Any] = []
    for key, value in where.items():
        if key == "source":
            clauses.append("(d.source GLOB ? OR d.source GLOB ?)")
            args += [str(value), "*/" + str(value)]
        else:
            clauses.append("json_extract(d.meta, ?) = ?")
            args += ["$." + json.dumps(str(key)), value]
    return clauses, args
