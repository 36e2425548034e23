"""The keyword index: an FTS5 table mirroring the chunk texts of one generation.

It lives in the same SQLite file as the chunks, is filled by the same inserts, and is
rebuilt from the chunk table whenever a generation is copied, so it can never drift from
the chunks or carry damage forward.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

SCHEMA = """
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='row', tokenize='porter unicode61'
);
"""


def add(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]]) -> None:
    """Index ``(row, text)`` pairs."""
    conn.executemany("INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)", rows)


def rebuild(conn: sqlite3.Connection) -> None:
    """Index every row of the chunk table (after a bulk copy)."""
    conn.execute("INSERT INTO chunks_fts(rowid, text) SELECT row, text FROM chunks")


def search(
    conn: sqlite3.Connection,
    fts_query: str,
    k: int,
    clauses: Sequence[str] = (),
    args: Sequence[Any] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` rows by FTS5's BM25 for an FTS query, restricted by SQL ``clauses`` over
    ``c`` (chunks) and ``d`` (documents); scores are positive, higher is better."""
    sql = (
        "SELECT f.rowid, -bm25(chunks_fts) AS s FROM chunks_fts f"
        " JOIN chunks c ON c.row = f.rowid JOIN documents d USING (doc_id)"
        " WHERE chunks_fts MATCH ?"
    )
    if clauses:
        sql += " AND " + " AND ".join(clauses)
    sql += " ORDER BY s DESC, f.rowid LIMIT ?"
    found = conn.execute(sql, [fts_query, *args, k]).fetchall()
    ids = np.array([r[0] for r in found], dtype=np.int64)
    scores = np.array([r[1] for r in found], dtype=np.float32)
    return ids, scores
