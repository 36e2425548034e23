"""Making a new segment's postings (format 4, :mod:`.postings`) while it is written.

New chunks are analysed once, as they are added (:mod:`.tokenize`); their terms become
``(term, row, tf)`` triples a block at a time (NumPy: one sort per block, no Counter per
chunk). Chunks copied from an older segment bring its stored chunk postings instead, their
rows renumbered: nothing is analysed again unless the old segment's terms are of another
analyser. At commit the triples are sorted once by (term, row) and written term by term in
key order; the document level (documents of two chunks or more: their first ``DOC_CHUNKS``
chunks summed) and every per-unit array are derived from them.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

from .fts import DOC_CHUNKS
from .postings import CHUNK, DOC, SCHEMA, decode, write_vectors
from .postings_v3 import TermPostings
from .tokenize import terms as analyze

#: Words gathered before they are folded into triples (bounds the raw word buffer).
_BLOCK_WORDS = 1 << 22
_READ = 65_536


class Triples:
    """``(term id, row, tf)`` postings of one level, in parts."""

    def __init__(self) -> None:
        self.terms: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.tfs: list[np.ndarray] = []

    def add(self, terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray) -> None:
        if len(terms):
            self.terms.append(terms.astype(np.int32, copy=False))
            self.rows.append(rows.astype(np.int32, copy=False))
            self.tfs.append(tfs.astype(np.int32, copy=False))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.terms:
            e = np.zeros(0, np.int32)
            return e, e, e
        out = tuple(np.concatenate(p) for p in (self.terms, self.rows, self.tfs))
        self.terms, self.rows, self.tfs = [], [], []
        return out  # type: ignore[return-value]


class Inverted:
    """The postings of the segment being written."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.triples = Triples()
        self._words = array("i")
        self._rows = array("i")
        self._counts = array("i")

    def add_texts(self, rows: Iterable[int], texts: Iterable[str]) -> None:
        """Analyse new chunks' texts (rows ascending within one call)."""
        vocab, words = self.vocab, self._words
        setdefault = vocab.setdefault
        for row, text in zip(rows, texts, strict=True):
            found = analyze(text)
            words.extend([setdefault(t, len(vocab)) for t in found])
            self._rows.append(row)
            self._counts.append(len(found))
        if len(words) >= _BLOCK_WORDS:
            self._fold()

    def add_lists(self, lists: Iterable[TermPostings], remap: np.ndarray) -> None:
        """An old segment's chunk postings, its rows renumbered by ``remap`` (old row ->
        new row, -1 for rows not copied)."""
        vocab = self.vocab
        tids, lens = array("i"), array("i")
        ids_parts, tf_parts = [], []
        for t, ids, tfs in lists:
            tids.append(vocab.setdefault(t, len(vocab)))
            lens.append(len(ids))
            ids_parts.append(ids)
            tf_parts.append(tfs.astype(np.int32, copy=False))
        if not ids_parts:
            return
        new = remap[np.concatenate(ids_parts)]
        keep = new >= 0
        terms = np.repeat(np.frombuffer(tids, np.int32), np.frombuffer(lens, np.int32))
        self.triples.add(terms[keep], new[keep], np.concatenate(tf_parts)[keep])

    def _fold(self) -> None:
        """Raw words of the chunks added since the last fold into triples."""
        if not self._rows:
            return
        words = np.frombuffer(self._words, np.int32).astype(np.int64)
        rows = np.repeat(np.frombuffer(self._rows, np.int32), np.frombuffer(self._counts, np.int32))
        keys, tfs = np.unique((words << 32) | rows.astype(np.int64), return_counts=True)
        self.triples.add(keys >> 32, keys & 0xFFFFFFFF, tfs)
        self._words, self._rows, self._counts = array("i"), array("i"), array("i")

    def write(self, conn: sqlite3.Connection) -> None:
        """Write the segment's postings and per-unit arrays (once, at commit)."""
        self._fold()
        conn.executescript(SCHEMA)
        names = list(self.vocab)
        rank = np.empty(len(names), np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        by_rank = sorted(names)
        tids, rows, tfs = self.triples.arrays()
        n_rows, row_doc, first, doc_rowids = _units(conn)
        chunk_lengths = np.bincount(rows, weights=tfs, minlength=n_rows).astype(np.int64)
        order = np.argsort(rank[tids] * max(n_rows, 1) + rows)
        t0, r0, f0 = rank[tids][order], rows[order], tfs[order]
        del order, tids
        docs = max(int(doc_rowids.max()) + 1 if len(doc_rowids) else 1, 1)
        per_doc = np.bincount(row_doc, minlength=docs)
        early = first[r0] & (per_doc[row_doc[r0]] > 1)
        dkey = t0[early] * docs + row_doc[r0[early]]
        dtf = f0[early]
        o = np.argsort(dkey, kind="stable")
        dkey, dtf = dkey[o], dtf[o]
        del o
        starts = np.flatnonzero(np.r_[True, dkey[1:] != dkey[:-1]]) if len(dkey) else dkey
        t1, d1 = dkey[starts] // docs, dkey[starts] % docs
        f1 = np.add.reduceat(dtf, starts) if len(dkey) else dtf
        doc_lengths = np.bincount(
            row_doc[first], weights=chunk_lengths[first], minlength=docs
        ).astype(np.int64)
        sql = "INSERT INTO kw_lists VALUES (?, ?, ?, ?, ?)"
        conn.executemany(sql, _lists(CHUNK, by_rank, t0, r0, f0))
        conn.executemany(sql, _lists(DOC, by_rank, t1, d1, f1))
        write_vectors(conn, (chunk_lengths, doc_lengths, row_doc, doc_rowids))


def _units(conn: sqlite3.Connection) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The segment's row count, each row's document rowid, whether the row is among its
    document's first ``DOC_CHUNKS`` chunks (by ordinal), and every document rowid."""
    n_rows = int(conn.execute("SELECT coalesce(max(row), -1) + 1 FROM main.chunks").fetchone()[0])
    row_doc = np.zeros(n_rows, np.int64)
    ordinal = np.zeros(n_rows, np.int64)
    cur = conn.execute(
        "SELECT c.row, d.rowid, c.ordinal FROM main.chunks c"
        " JOIN main.documents d ON d.doc_id = c.doc_id"
    )
    while part := cur.fetchmany(_READ):
        got = np.array(part, np.int64).reshape(-1, 3)
        row_doc[got[:, 0]], ordinal[got[:, 0]] = got[:, 1], got[:, 2]
    by = np.lexsort((ordinal, row_doc))
    sorted_docs = row_doc[by]
    starts = np.r_[0, np.flatnonzero(sorted_docs[1:] != sorted_docs[:-1]) + 1] if n_rows else by
    position = np.arange(n_rows) - np.repeat(starts, np.diff(np.r_[starts, n_rows]))
    first = np.zeros(n_rows, bool)
    first[by] = position < DOC_CHUNKS
    cur = conn.execute("SELECT rowid FROM main.documents ORDER BY rowid")
    doc_rowids = np.fromiter((r[0] for r in cur), np.int64)
    return n_rows, row_doc, first, doc_rowids


def _lists(
    level: int, names: list[str], terms: np.ndarray, ids: np.ndarray, tfs: np.ndarray
) -> Iterator[tuple[int, str, int, bytes, bytes]]:
    """``kw_lists`` rows of one level from triples sorted by (term rank, id): each list's
    gaps and term frequencies in the narrowest width that holds its largest."""
    if not len(terms):
        return
    starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
    counts = np.diff(np.r_[starts, len(terms)])
    gaps = ids - np.r_[0, ids[:-1]]
    gaps[starts] = ids[starts]
    id_blobs = _packed(gaps, starts, counts)
    tf_blobs = _packed(tfs, starts, counts)
    for k, s in enumerate(starts.tolist()):
        yield level, names[int(terms[s])], int(counts[k]), id_blobs[k], tf_blobs[k]


def _packed(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> list[bytes]:
    """Each list's values as bytes of the narrowest unsigned width for its largest."""
    top = np.maximum.reduceat(values, starts)
    widths = np.where(top < 1 << 8, 1, np.where(top < 1 << 16, 2, 4))
    out: list[bytes] = [b""] * len(starts)
    for w, dtype in ((1, "<u1"), (2, "<u2"), (4, "<u4")):
        mine = np.flatnonzero(widths == w)
        if not len(mine):
            continue
        data = values[np.repeat(widths == w, counts)].astype(dtype).tobytes()
        ends = np.cumsum(counts[mine] * w).tolist()
        begin = 0
        for k, end in zip(mine.tolist(), ends, strict=True):
            out[k] = data[begin:end]
            begin = end
    return out


def chunk_lists(conn: sqlite3.Connection) -> Iterator[TermPostings]:
    """A format-4 segment's chunk postings, term by term."""
    cur = conn.execute("SELECT term, n, ids, tfs FROM main.kw_lists WHERE level = 0")
    for term, n, ids, tfs in cur:
        p = decode(n, ids, tfs)
        yield TermPostings(str(term), p.ids, p.tfs)
