"""The schema of a segment's chunk database, and how an older store or a segment with
tombstones reads through it: columns an older version lacks read as their defaults, and
dead documents are hidden behind temporary views."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from . import fts

#: Tables of a new segment; its secondary indexes (:data:`INDEXES`) are made after the bulk
#: insert, when the segment is committed. ``sha256`` holds 32 bytes (hex text before format 4,
#: or when a document's hash is not a SHA-256 in hex).
TABLES = (
    """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    meta TEXT,
    title TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'text',
    size INTEGER,
    mtime_ns INTEGER,
    inode INTEGER
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    page INTEGER,
    section TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL
);
CREATE TABLE skipped (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"""
    + fts.SCHEMA
)
INDEXES = """
CREATE UNIQUE INDEX chunks_chunk_id ON chunks(chunk_id);
CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
CREATE INDEX documents_source ON documents(source);
"""

DOC_COLUMNS = ("doc_id", "source", "sha256", "n_chunks", "meta", "title", "kind", "size",
                "mtime_ns", "inode")  # fmt: skip
CHUNK_COLUMNS = ("row", "chunk_id", "doc_id", "ordinal", "start", "end", "line_start",
                  "line_end", "page", "section", "text")  # fmt: skip
#: What a version-1 store lacks, and the value it reads as.
DEFAULTS = {"title": "''", "kind": "'text'", "size": "NULL", "mtime_ns": "NULL",
             "inode": "NULL", "page": "NULL", "section": "''"}  # fmt: skip


def select_columns(
    have: Collection[str], names: Sequence[str], alias: str, *, raw: bool = False
) -> str:
    """Column list for a SELECT, with defaults for columns an older store lacks; ``sha256``
    reads as hex text (``raw``: as stored, to copy into a segment)."""
    out = []
    for n in names:
        if n not in have:
            out.append(f"{DEFAULTS[n]} AS {n}")
        elif n == "sha256":
            out.append(sha256_sql(alias, raw=raw))
        else:
            out.append(f'{alias}."{n}"')
    return ", ".join(out)


def sha256_sql(alias: str, *, raw: bool = False) -> str:
    """A document's hash as hex text, whichever way it is stored; ``raw`` turns hex text
    of an older segment into the 32 bytes a new one stores (``sha256_bytes``)."""
    col = f"{alias}.sha256"
    if raw:
        return f"sha256_bytes({col}) AS sha256"
    return f"CASE WHEN typeof({col}) = 'blob' THEN lower(hex({col})) ELSE {col} END AS sha256"


def sha256_value(digest: str | bytes) -> str | bytes:
    """How a document's hash is stored: 32 bytes for a SHA-256 in hex, else as given."""
    if isinstance(digest, str) and len(digest) == 64 and not digest.strip(_HEX):
        return bytes.fromhex(digest)
    return digest


_HEX = "0123456789abcdef"


def hide_dead(conn: sqlite3.Connection, dead: Collection[str]) -> None:
    """Temporary views over ``documents`` and ``chunks`` without the ``dead`` documents:
    SQLite resolves unqualified names in ``temp`` first, so every query sees only the
    live rows (``main.`` reaches the whole segment)."""
    conn.execute("CREATE TEMP TABLE dead(doc_id TEXT PRIMARY KEY)")
    conn.executemany("INSERT OR IGNORE INTO temp.dead VALUES (?)", [(d,) for d in dead])
    live = "WHERE doc_id NOT IN (SELECT doc_id FROM temp.dead)"
    conn.execute(
        f"CREATE TEMP VIEW documents AS SELECT rowid AS rowid, * FROM main.documents {live}"
    )
    conn.execute(f"CREATE TEMP VIEW chunks AS SELECT * FROM main.chunks {live}")


def present_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """The columns each table of this store has (older versions lack some)."""
    out = {}
    for table in ("documents", "chunks", "skipped"):
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if columns:
            out[table] = columns
    return out
