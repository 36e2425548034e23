"""The keyword index's bookkeeping in a segment: which analyser made its terms and which
format holds them (``keyword_meta``), where an older segment keeps its chunk terms, and
the document of a chunk row.

Texts become terms in Python (:mod:`.tokenize`: case and accent folding, per-script
stemming, CJK character pairs). Format 4 stores them only as postings (:mod:`.inverted`);
format 3 also kept them per chunk, space-separated (``chunk_terms``), and format 2 in an
FTS5 table, ``chunks_fts``; both are still read. Chunks copied from a segment made with
other terms (an older semsearch) are analysed again from their text.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from ..errors import IndexFormatError
from .binds import in_blocks
from .tokenize import TERMS_VERSION

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
CREATE TABLE keyword_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: Where a segment of an older format keeps its chunk terms: format 3, and format 2 (before
#: postings). Format 4 keeps none: its postings hold them (:mod:`.inverted`).
TERMS_TABLES = ("chunk_terms", "chunks_fts")
#: Chunks of one document that make its document-level row (a book's 10,000th chunk adds
#: nothing that BM25's length normalisation would not take away again).
DOC_CHUNKS = 400


def terms_table(conn: sqlite3.Connection, schema: str = "main") -> tuple[str, str]:
    """The table holding a segment's chunk terms and its row column."""
    found = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE name IN ('chunk_terms', 'chunks_fts')"
    ).fetchall()
    names = {r[0] for r in found}
    return ("chunk_terms", "row") if "chunk_terms" in names else ("chunks_fts", "rowid")


def finish(conn: sqlite3.Connection, store_format: str) -> None:
    """Record the terms version and the segment's format; before publishing."""
    conn.executemany(
        "INSERT OR REPLACE INTO keyword_meta VALUES (?, ?)",
        [("terms", TERMS_VERSION), ("store", store_format)],
    )


def stored_version(
    conn: sqlite3.Connection, schema: str = "main", key: str = "terms"
) -> str | None:
    """The terms version (``key="store"``: the segment format) a store was written with;
    None for stores older than it."""
    try:
        row = conn.execute(
            f"SELECT value FROM {schema}.keyword_meta WHERE key = ?", (key,)
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def doc_ids_of(conn: sqlite3.Connection, rows: Iterable[int]) -> list[str]:
    """The document of each chunk row, in the order given."""
    found: dict[int, str] = {}
    wanted = [int(r) for r in rows]
    for marks, part in in_blocks(wanted):
        cur = conn.execute(f"SELECT row, doc_id FROM chunks WHERE row IN ({marks})", part)
        found.update((int(r), str(d)) for r, d in cur)
    return [found[r] for r in wanted]
