"""Keyword postings of segments written before format 4, read as they were written.

Format 3 kept ``kw_postings(level, term) -> (ids, tfs)`` as packed int32 blobs, documents'
postings for every document (one-chunk ones too), and ``kw_arrays`` as int32; before that a
segment had no postings and they are built here in memory, from its stored chunk terms
(``chunk_terms``, or the FTS5 table ``chunks_fts`` of format 2) or its texts. Such a segment
answers exactly as before and is rewritten in format 4 by the next write
(``ChunkStore.terms_current`` is false for it).
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import Counter
from typing import NamedTuple

import numpy as np

from .fts import DOC_CHUNKS, TERMS_VERSION, stored_version, terms_table
from .tokenize import terms as analyze

_EMPTY = np.zeros(0, np.int32)


class Postings(NamedTuple):
    """One term's postings at one level (every format reads into this)."""

    ids: np.ndarray  # int32, ascending
    tfs: np.ndarray  # unsigned (format 4) or int32


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_ARRAYS = ("chunk_lengths", "doc_lengths", "row_doc", "doc_rowids")


class OldPostings:
    """An older segment's postings: from its int32 table, or built in memory."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.memory: list[dict[str, Postings]] | None = None
        arrays = _read_arrays(conn)
        if arrays is None:  # written before postings existed: build them now, in memory
            arrays, self.memory = build(conn)
        self.arrays: Arrays = arrays

    def get(self, level: int, term: str) -> Postings:
        if self.memory is not None:
            return self.memory[level].get(term, Postings(_EMPTY, _EMPTY))
        row = self.conn.execute(
            "SELECT ids, tfs FROM main.kw_postings WHERE level = ? AND term = ?", (level, term)
        ).fetchone()
        if row is None:
            return Postings(_EMPTY, _EMPTY)
        return Postings(np.frombuffer(row[0], np.int32), np.frombuffer(row[1], np.int32))

    def near(self, first: str, lo: int, hi: int) -> list[str]:
        """Document-level terms starting with ``first``, of length ``lo``..``hi``."""
        if self.memory is not None:
            return sorted(t for t in self.memory[1] if t.startswith(first) and lo <= len(t) <= hi)
        cur = self.conn.execute(
            "SELECT term FROM main.kw_postings WHERE level = 1 AND term >= ? AND term < ?"
            " AND length(term) BETWEEN ? AND ?",
            (first, first + "\U0010ffff", lo, hi),
        )
        return [str(r[0]) for r in cur]


def has_lists(conn: sqlite3.Connection) -> bool:
    """Whether the segment's stored chunk postings hold this version's terms."""
    return stored_version(conn) == TERMS_VERSION and _read_arrays(conn) is not None


def _read_arrays(conn: sqlite3.Connection) -> Arrays | None:
    try:
        found = dict(conn.execute("SELECT name, data FROM main.kw_arrays"))
    except sqlite3.OperationalError:
        return None
    if any(n not in found for n in _ARRAYS):  # an older layout: built again
        return None
    return tuple(  # type: ignore[return-value]
        np.frombuffer(found[n], np.int32) for n in _ARRAYS
    )


class _Accumulator:
    """Postings gathered unit by unit (units arrive in ascending id order)."""

    def __init__(self) -> None:
        self.ids: dict[str, array[int]] = {}
        self.tfs: dict[str, array[int]] = {}
        self.lengths: dict[int, int] = {}

    def add(self, unit: int, words: list[str]) -> None:
        self.lengths[unit] = len(words)
        for t, n in Counter(words).items():
            if t not in self.ids:
                self.ids[t], self.tfs[t] = array("i"), array("i")
            self.ids[t].append(unit)
            self.tfs[t].append(n)

    def length_array(self, size: int) -> np.ndarray:
        out = np.zeros(size, np.int32)
        for unit, n in self.lengths.items():
            out[unit] = n
        return out


def build(conn: sqlite3.Connection) -> tuple[Arrays, list[dict[str, Postings]]]:
    """Postings of every chunk and document of a segment without stored postings (dead ones
    included: tombstones are applied when searching)."""
    rows = int(conn.execute("SELECT coalesce(max(row), -1) + 1 FROM main.chunks").fetchone()[0])
    docs = int(conn.execute("SELECT coalesce(max(rowid), 0) + 1 FROM main.documents").fetchone()[0])
    row_doc = np.zeros(rows, np.int32)
    chunks, documents = _Accumulator(), _Accumulator()
    current = stored_version(conn) == TERMS_VERSION
    table, key = terms_table(conn)
    cur = conn.execute(
        "SELECT d.rowid, c.row, c.ordinal, "
        + ("f.terms" if current else "c.text")
        + " FROM main.documents d JOIN main.chunks c ON c.doc_id = d.doc_id"
        + (f" JOIN main.{table} f ON f.{key} = c.row" if current else "")
        + " ORDER BY d.rowid, c.ordinal"
    )
    doc, doc_words = -1, list[str]()
    taken = 0
    for rowid, row, _, text in cur:
        words = text.split() if current else analyze(text)
        row_doc[row] = rowid
        chunks.add(row, words)
        if rowid != doc:
            if doc >= 0:
                documents.add(doc, doc_words)
            doc, doc_words, taken = rowid, [], 0
        if taken < DOC_CHUNKS:
            doc_words += words
            taken += 1
    if doc >= 0:
        documents.add(doc, doc_words)
    for (rowid,) in conn.execute("SELECT rowid FROM main.documents"):
        documents.lengths.setdefault(int(rowid), 0)  # a document without chunks
    levels = [_sorted(chunks), _sorted(documents)]
    rowids = np.array(sorted(documents.lengths), np.int32)
    lengths = (chunks.length_array(rows), documents.length_array(docs), row_doc, rowids)
    return lengths, levels


def _sorted(acc: _Accumulator) -> dict[str, Postings]:
    out = {}
    for t, ids in acc.ids.items():
        a, f = np.frombuffer(ids, np.int32), np.frombuffer(acc.tfs[t], np.int32)
        if len(a) > 1 and np.any(a[1:] < a[:-1]):  # chunk rows can come out of order
            order = np.argsort(a, kind="stable")
            a, f = a[order], f[order]
        out[t] = Postings(a, f)
    return out
