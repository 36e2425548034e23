"""A segment's keyword postings: for each term, the chunks (and documents) holding it and how
often, in the segment's SQLite file.

BM25 needs collection statistics (how many units, how many hold a term, their average
length) that must span every live segment, which no per-table engine gives: FTS5's ``bm25()``
sees one table. So the postings are ours, read a term at a time (one indexed lookup
returning two small blobs, decoded by one or two NumPy calls), and the scoring is NumPy
(:mod:`semsearch.store.segments`).

Level 0 is chunks, by segment-local row; level 1 is documents, by ``documents.rowid``, whose
terms are those of their first ``fts.DOC_CHUNKS`` chunks (as the document table had).

Format 4 (this module; ``keyword_meta`` key ``store``), per ``(level, term)``: ``n`` postings,
``ids`` as gaps from the previous id (the first from 0) and ``tfs``, each an unsigned array of
the narrowest width (1, 2 or 4 bytes) its largest value fits, so the width is
``len(blob) // n``. Level 1 holds only documents of two chunks or more: a one-chunk document's
terms are its chunk's, read through the chunk postings (``single``). Each chunk's terms are
not stored (the postings hold them, inverted: a merge remaps them, :mod:`.inverted`), and no
array is wider than its largest value needs. Segments written before (format 3: int32 blobs,
a document copy of every posting, ``chunk_terms``; or no postings at all) are read by
:mod:`.postings_v3`, and rewritten by the next write.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from . import postings_v3
from .postings_v3 import Postings

CHUNK, DOC = 0, 1
#: The segment format this module writes (``keyword_meta``'s ``store``; absent before).
STORE_FORMAT = "4"
SCHEMA = """
CREATE TABLE IF NOT EXISTS kw_lists (
    level INTEGER NOT NULL, term TEXT NOT NULL, n INTEGER NOT NULL,
    ids BLOB NOT NULL, tfs BLOB NOT NULL,
    PRIMARY KEY (level, term)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kw_vectors (name TEXT PRIMARY KEY, data BLOB NOT NULL);
"""
_UNSIGNED: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
_EMPTY = np.zeros(0, np.int32)
#: Decoded chunk-level postings kept per segment: a query's document level reads them again.
_CACHED_TERMS = 256


def width(largest: int) -> int:
    """Bytes of the narrowest unsigned type holding ``largest``."""
    return 1 if largest < 1 << 8 else 2 if largest < 1 << 16 else 4


def decode(n: int, ids: bytes, tfs: bytes) -> Postings:
    """One stored list back as arrays (ids ascending)."""
    if not n:
        return Postings(_EMPTY, _EMPTY)
    gaps = np.frombuffer(ids, _UNSIGNED[len(ids) // n])
    return Postings(np.cumsum(gaps, dtype=np.int32), np.frombuffer(tfs, _UNSIGNED[len(tfs) // n]))


def encode_array(values: np.ndarray) -> bytes:
    """A non-negative array as ``<name>`` data: its narrowest unsigned type (see
    :func:`decode_array`)."""
    top = int(values.max()) if len(values) else 0
    w = width(top)
    return bytes([w]) + values.astype(_UNSIGNED[w]).tobytes()


def decode_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, _UNSIGNED[data[0]], offset=1).astype(np.int32)


class SegmentPostings:
    """One segment's postings: format 4 from its tables, or an older segment's through
    :mod:`.postings_v3` (its int32 table, or built in memory when it has none)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._old: postings_v3.OldPostings | None = None
        self._cache: dict[str, Postings] = {}
        arrays = read_vectors(conn)
        if arrays is None:
            self._old = postings_v3.OldPostings(conn)
            arrays = self._old.arrays
        self.chunk_lengths, self.doc_lengths, self.row_doc, self.doc_rowids = arrays
        #: Rows whose document has this one chunk only (its document postings are its own).
        per_doc = np.bincount(self.row_doc, minlength=len(self.doc_lengths))
        self.single = per_doc[self.row_doc] == 1 if self._old is None else None
        # What spares a document-level read its gathers, checks and sort (facts of the
        # segment, found once): every document has one chunk (no document-level lists are
        # stored), the rows are in document order, and then the row -> document map is a shift.
        rd = self.row_doc
        self._all_single = self.single is not None and bool(self.single.all())
        self._rows_in_doc_order = len(rd) < 2 or not bool(np.any(rd[1:] < rd[:-1]))
        consecutive = len(rd) > 0 and int(rd[-1]) - int(rd[0]) == len(rd) - 1
        self._doc_shift = (
            np.int32(rd[0]) if self._all_single and self._rows_in_doc_order and consecutive
            else None
        )  # fmt: skip

    def get(self, level: int, term: str) -> Postings:
        if self._old is not None:
            return self._old.get(level, term)
        if level == CHUNK:
            return self._chunk(term)
        own = Postings(_EMPTY, _EMPTY) if self._all_single else self._stored(DOC, term)
        ids, tfs = self._chunk(term)
        if not len(ids):
            return own
        if not self._all_single:
            one = self.single[ids]  # type: ignore[index]
            if not one.any():
                return own
            ids, tfs = ids[one], tfs[one]
        docs, counts = self.docs_of(ids), tfs
        if len(own.ids):
            docs = np.concatenate([docs, own.ids])
            counts = np.concatenate([counts.astype(np.int32), own.tfs.astype(np.int32)])
        elif self._rows_in_doc_order:  # ascending rows: their documents ascend too
            return Postings(docs, counts)
        if len(docs) > 1 and np.any(docs[1:] < docs[:-1]):
            order = np.argsort(docs, kind="stable")
            docs, counts = docs[order], counts[order]
        return Postings(docs, counts)

    @property
    def rows_are_docs(self) -> bool:
        """Every document has one chunk, and documents follow their rows' order."""
        return self._doc_shift is not None

    def docs_of(self, rows: np.ndarray) -> np.ndarray:
        """The document rowid of each (segment-local) chunk row."""
        if self._doc_shift is not None:
            return rows + self._doc_shift
        return self.row_doc[rows]

    def _chunk(self, term: str) -> Postings:
        found = self._cache.get(term)
        if found is None:
            found = self._stored(CHUNK, term)
            if len(self._cache) >= _CACHED_TERMS:
                self._cache.clear()
            self._cache[term] = found
        return found

    def _stored(self, level: int, term: str) -> Postings:
        row = self.conn.execute(
            "SELECT n, ids, tfs FROM main.kw_lists WHERE level = ? AND term = ?", (level, term)
        ).fetchone()
        return Postings(_EMPTY, _EMPTY) if row is None else decode(*row)

    def near(self, first: str, lo: int, hi: int) -> list[str]:
        """Terms starting with ``first``, of length ``lo``..``hi`` (from the chunk level,
        which holds every document-level term; a term only a document's 401st chunk holds
        has no document frequency, and callers keep candidates that have one)."""
        if self._old is not None:
            return self._old.near(first, lo, hi)
        cur = self.conn.execute(
            "SELECT term FROM main.kw_lists WHERE level = 0 AND term >= ? AND term < ?"
            " AND length(term) BETWEEN ? AND ?",
            (first, first + "\U0010ffff", lo, hi),
        )
        return [str(r[0]) for r in cur]


def stored(conn: sqlite3.Connection) -> bool:
    """Whether the segment holds its postings in this format."""
    return read_vectors(conn) is not None


_VECTORS = ("chunk_lengths", "doc_lengths", "row_doc", "doc_rowids")
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def read_vectors(conn: sqlite3.Connection) -> Arrays | None:
    """The segment's per-unit arrays (None for a segment of an older format)."""
    try:
        found = dict(conn.execute("SELECT name, data FROM main.kw_vectors"))
    except sqlite3.OperationalError:
        return None
    if any(n not in found for n in _VECTORS):
        return None
    return tuple(decode_array(found[n]) for n in _VECTORS)  # type: ignore[return-value]


def write_vectors(conn: sqlite3.Connection, arrays: Arrays) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO kw_vectors VALUES (?, ?)",
        [(n, encode_array(a)) for n, a in zip(_VECTORS, arrays, strict=True)],
    )
