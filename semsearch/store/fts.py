"""Each chunk's keyword terms, stored with the chunk: what the postings are built from.

Texts become terms in Python (:mod:`.tokenize`: case and accent folding, per-script
stemming, CJK character pairs) and are stored space-separated. Storing the terms lets a
merge copy them in SQL instead of tokenizing again; chunks copied from a segment made with
other terms (an older semsearch) are tokenized again from their text. Segments written
before postings kept the terms in an FTS5 table, ``chunks_fts``; it is still read.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from ..errors import IndexFormatError
from .tokenize import TERMS_VERSION, terms

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reading(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A damaged keyword table is found only when a page is read: one line, no traceback."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(
                f"the keyword index is damaged ({exc}); check it with semsearch info --verify"
            ) from None

    return wrapper


SCHEMA = """
CREATE TABLE chunk_terms (row INTEGER PRIMARY KEY, terms TEXT NOT NULL);
CREATE TABLE keyword_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: Where a segment keeps its chunk terms: now, and before postings existed.
TERMS_TABLES = ("chunk_terms", "chunks_fts")
#: Chunks of one document that make its document-level row (a book's 10,000th chunk adds
#: nothing that BM25's length normalisation would not take away again).
DOC_CHUNKS = 400
_BATCH = 2000


def add(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]]) -> None:
    """Index ``(row, text)`` pairs of new chunks."""
    conn.executemany(
        "INSERT INTO chunk_terms(row, terms) VALUES (?, ?)",
        ((row, " ".join(terms(text))) for row, text in rows),
    )


def copy_from(conn: sqlite3.Connection, schema: str, start: int = 0) -> None:
    """Store the terms of the chunks (rows ``start..``) just copied from the attached
    database ``schema``: its stored terms when it was written with the same terms, else
    their text again."""
    if stored_version(conn, schema) == TERMS_VERSION:
        table, key = terms_table(conn, schema)
        conn.execute(
            "INSERT INTO chunk_terms(row, terms) SELECT c.row, f.terms FROM chunks c"
            f" JOIN {schema}.chunks oc ON oc.chunk_id = c.chunk_id"
            f" JOIN {schema}.{table} f ON f.{key} = oc.row WHERE c.row >= ?",
            (start,),
        )
        return
    cur = conn.cursor().execute(
        "SELECT row, text FROM chunks WHERE row >= ? ORDER BY row", (start,)
    )
    while batch := cur.fetchmany(_BATCH):
        add(conn, batch)


def terms_table(conn: sqlite3.Connection, schema: str = "main") -> tuple[str, str]:
    """The table holding a segment's chunk terms and its row column."""
    found = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE name IN ('chunk_terms', 'chunks_fts')"
    ).fetchall()
    names = {r[0] for r in found}
    return ("chunk_terms", "row") if "chunk_terms" in names else ("chunks_fts", "rowid")


def finish(conn: sqlite3.Connection) -> None:
    """Record the terms version; before publishing."""
    conn.execute("INSERT OR REPLACE INTO keyword_meta VALUES ('terms', ?)", (TERMS_VERSION,))


def stored_version(conn: sqlite3.Connection, schema: str = "main") -> str | None:
    """The terms version a store was written with; None for stores older than terms."""
    try:
        row = conn.execute(
            f"SELECT value FROM {schema}.keyword_meta WHERE key = 'terms'"
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def doc_ids_of(conn: sqlite3.Connection, rows: Iterable[int]) -> list[str]:
    """The document of each chunk row, in the order given."""
    found: dict[int, str] = {}
    wanted = [int(r) for r in rows]
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        cur = conn.execute(
            f"SELECT row, doc_id FROM chunks WHERE row IN ({','.join('?' * len(part))})", part
        )
        found.update((int(r), str(d)) for r, d in cur)
    return [found[r] for r in wanted]
