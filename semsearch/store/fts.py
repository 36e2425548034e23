"""The keyword index of one generation: BM25 over chunks and over whole documents (FTS5).

Texts become terms in Python (:mod:`semsearch.search.tokenize`: case and accent folding,
per-script stemming, CJK character pairs) and are stored space-separated, which FTS5's
``ascii`` tokenizer splits back unchanged. Storing the terms lets a new generation copy
them for unchanged documents in SQL instead of tokenizing the corpus again; the
document-level table is rebuilt from the chunk terms, in SQL, when a generation is
finished. Chunks copied from a generation made with other terms (an older semsearch) are
tokenized again from their text, so the keyword index always matches the chunk table.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import numpy as np

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
CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize='ascii');
CREATE VIRTUAL TABLE docs_fts USING fts5(terms, tokenize='ascii');
CREATE VIRTUAL TABLE docs_fts_vocab USING fts5vocab(docs_fts, 'row');
CREATE TABLE keyword_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: Chunks of one document that make its document-level row (a book's 10,000th chunk adds
#: nothing that BM25's length normalisation would not take away again).
DOC_CHUNKS = 400
_BATCH = 2000


def add(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]]) -> None:
    """Index ``(row, text)`` pairs of new chunks."""
    conn.executemany(
        "INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)",
        ((row, " ".join(terms(text))) for row, text in rows),
    )


def copy_from(conn: sqlite3.Connection, schema: str, start: int = 0) -> None:
    """Index the chunks (rows ``start..``) just copied from the attached database ``schema``:
    their stored terms when it was written with the same terms, else their text again."""
    if stored_version(conn, schema) == TERMS_VERSION:
        conn.execute(
            "INSERT INTO chunks_fts(rowid, terms) SELECT c.row, f.terms FROM chunks c"
            f" JOIN {schema}.chunks oc ON oc.chunk_id = c.chunk_id"
            f" JOIN {schema}.chunks_fts f ON f.rowid = oc.row WHERE c.row >= ?",
            (start,),
        )
        return
    cur = conn.cursor().execute(
        "SELECT row, text FROM chunks WHERE row >= ? ORDER BY row", (start,)
    )
    while batch := cur.fetchmany(_BATCH):
        add(conn, batch)


def finish(conn: sqlite3.Connection) -> None:
    """(Re)write the document-level rows and the terms version; before publishing."""
    conn.execute("DELETE FROM docs_fts")
    conn.execute(
        "INSERT INTO docs_fts(rowid, terms) SELECT d.rowid, (SELECT group_concat(terms, ' ')"
        " FROM (SELECT f.terms FROM chunks c JOIN chunks_fts f ON f.rowid = c.row"
        f" WHERE c.doc_id = d.doc_id ORDER BY c.ordinal LIMIT {DOC_CHUNKS})) FROM documents d"
    )
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


class KeywordIndex:
    """Read side: BM25 searches and term statistics over a published store.

    A store written before terms existed (porter-stemmed ``text`` column, no document
    table) is still searched: its chunks stand in for documents, and query terms are left
    unstemmed for its own tokenizer.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        version = stored_version(conn)
        #: Written before terms existed; ``current``: written with this version's terms.
        self.legacy = version is None
        self.current = version == TERMS_VERSION
        if self.legacy:
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_vocab"
                " USING fts5vocab(main, chunks_fts, 'row')"
            )
        table = "chunks" if self.legacy else "documents"
        self.n_docs = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        self._vocab = "temp.chunks_fts_vocab" if self.legacy else "docs_fts_vocab"

    def query_terms(self, text: str) -> list[str]:
        return terms(text, stem=not self.legacy)

    @_reading
    def chunks(
        self,
        query_terms: Sequence[str],
        k: int,
        clauses: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Best ``k`` chunk rows by BM25 (positive, higher better) and their documents,
        filtered by SQL ``clauses`` over ``c`` (chunks) and ``d`` (documents)."""
        if not query_terms or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), []
        sql = (
            "SELECT f.rowid, -bm25(chunks_fts) AS s, c.doc_id FROM chunks_fts f"
            " JOIN chunks c ON c.row = f.rowid JOIN documents d USING (doc_id)"
            " WHERE chunks_fts MATCH ?"
        )
        if clauses:
            sql += " AND " + " AND ".join(clauses)
        sql += " ORDER BY s DESC, f.rowid LIMIT ?"
        found = self.conn.execute(sql, [match_expr(query_terms), *args, k]).fetchall()
        return (
            np.array([r[0] for r in found], dtype=np.int64),
            np.array([r[1] for r in found], dtype=np.float32),
            [str(r[2]) for r in found],
        )

    @_reading
    def chunk_scores(self, query_terms: Sequence[str], rows: Sequence[int]) -> dict[int, float]:
        """Chunk-level BM25 of the given rows (absent: no query term in them)."""
        out: dict[int, float] = {}
        wanted = sorted({int(r) for r in rows})
        if not query_terms:
            return out
        for i in range(0, len(wanted), 500):
            part = ",".join(str(r) for r in wanted[i : i + 500])
            cur = self.conn.execute(
                "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
                f" AND rowid IN ({part})",
                [match_expr(query_terms)],
            )
            out.update((int(r), float(s)) for r, s in cur)
        return out

    @_reading
    def documents(self, query_terms: Sequence[str], doc_ids: Sequence[str]) -> dict[str, float]:
        """Document-level BM25 of the given documents (absent: no query term in them).
        A legacy store has no document table: the result is empty."""
        if self.legacy or not query_terms or not doc_ids:
            return {}
        out: dict[str, float] = {}
        ids = sorted(set(doc_ids))
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            cur = self.conn.execute(
                "SELECT d.doc_id, -bm25(docs_fts) FROM docs_fts f JOIN documents d"
                f" ON d.rowid = f.rowid WHERE docs_fts MATCH ? AND d.doc_id IN"
                f" ({','.join('?' * len(part))})",
                [match_expr(query_terms), *part],
            )
            out.update((str(r[0]), float(r[1])) for r in cur)
        return out

    @_reading
    def top_documents(
        self,
        query_terms: Sequence[str],
        k: int,
        clauses: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> dict[str, float]:
        """Best ``k`` documents by document-level BM25 (filters as in :meth:`chunks`)."""
        if self.legacy or not query_terms or k <= 0:
            return {}
        sql = (
            "SELECT d.doc_id, -bm25(docs_fts) AS s FROM docs_fts f JOIN documents d"
            " ON d.rowid = f.rowid WHERE docs_fts MATCH ?"
        )
        if clauses:
            sql += (
                " AND EXISTS (SELECT 1 FROM chunks c WHERE c.doc_id = d.doc_id AND "
                + " AND ".join(clauses)
                + ")"
            )
        sql += " ORDER BY s DESC, d.doc_id LIMIT ?"
        return {
            str(r[0]): float(r[1])
            for r in self.conn.execute(sql, [match_expr(query_terms), *args, k])
        }

    @_reading
    def document_frequencies(self, query_terms: Iterable[str]) -> dict[str, int]:
        unique = sorted(set(query_terms))
        if not unique:
            return {}
        cur = self.conn.execute(
            f"SELECT term, doc FROM {self._vocab} WHERE term IN ({','.join('?' * len(unique))})",
            unique,
        )
        return {str(t): int(n) for t, n in cur}

    @_reading
    def full_match(self, query_terms: Sequence[str]) -> float:
        """BM25 of a document holding every query term once at average length: the sum of
        the terms' idf (FTS5's formula; repeats count, as in the query). It turns a BM25
        score into a fraction that means the same from one query to the next."""
        df = self.document_frequencies(query_terms)
        n = self.n_docs
        return sum(
            max(math.log((n - df[t] + 0.5) / (df[t] + 0.5)), 1e-6) for t in query_terms if t in df
        )

    @_reading
    def near(self, first: str, lo: int, hi: int) -> list[tuple[str, int]]:
        """Indexed terms starting with the letter ``first``, of length ``lo``..``hi``,
        with their document counts (the candidates for a typo's correction)."""
        cur = self.conn.execute(
            f"SELECT term, doc FROM {self._vocab} WHERE term >= ? AND term < ?"
            " AND length(term) BETWEEN ? AND ?",
            (first, first + "\U0010ffff", lo, hi),
        )
        return [(str(t), int(n)) for t, n in cur]


def match_expr(query_terms: Sequence[str]) -> str:
    """An FTS5 query matching any term, each quoted so user text is never FTS syntax. A
    repeated term is a second phrase, so it counts twice in BM25 (query term frequency)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in query_terms)


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
