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

import functools
import itertools
import os
import sqlite3
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from .fts import DOC_CHUNKS
from .postings import CHUNK, DOC, SCHEMA, write_vectors
from .tokenize import terms as analyze

#: Words gathered before they are folded into triples (bounds the raw word buffer).
_BLOCK_WORDS = 1 << 20
_READ = 65_536
#: Postings of an old segment decoded at a time (its lists read until they hold this many):
#: the decode's temporaries take ~50 bytes a posting, so one block of a 1M-chunk segment's
#: lists (13.5 M postings) held ~700 MB; now ~50 MB, whatever the segment's size.
_READ_POSTINGS = 1 << 20


class Analysed(NamedTuple):
    """Chunks' keyword terms, analysed elsewhere (an indexing worker process) and handed over
    compactly: each distinct term once, and every chunk's terms as indexes into them."""

    names: list[str]
    #: Index into ``names`` of every term of every chunk, chunk after chunk (int32).
    ids: np.ndarray
    #: Terms per chunk (int32), in the order of the chunks.
    counts: np.ndarray
    #: The :class:`Analyser` whose numbering ``ids`` are in. An analyser's groups are added
    #: in the order it made them: each one's ``names`` are the terms first seen since the
    #: previous one, numbered from ``first``.
    source: int
    first: int


def _numbering() -> defaultdict[str, int]:
    """Term -> id, a new term numbered as it is first seen."""
    numbers: defaultdict[str, int] = defaultdict()
    numbers.default_factory = numbers.__len__
    return numbers


def _number_terms(
    texts: Iterable[str], number: Callable[[str], int], ids: array[int], counts: array[int]
) -> None:
    """Append each text's terms, numbered by ``number``, to ``ids``, and their count to
    ``counts``: the one analysis loop of a build, in this process or a worker."""
    for text in texts:
        found = analyze(text)
        ids.extend(map(number, found))
        counts.append(len(found))


class _Numbers(dict[str, int]):
    """Term -> number, a new term numbered as it is first seen and listed in ``names``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, term: str) -> int:
        self[term] = n = len(self.names)
        self.names.append(term)
        return n


class Analyser:
    """Chunks' terms analysed for the life of an indexing worker: terms are numbered once per
    worker, not per group of chunks, so each term's name is handed over once (half the
    writer's CPU on what workers analysed: Python's library and docs, 0.42 -> 0.22 s)."""

    def __init__(self) -> None:
        self.source = int.from_bytes(os.urandom(8), "little") >> 1  # whose numbering
        self._names: list[str] = []
        self._number = _Numbers(self._names).__getitem__
        self._sent = 0

    def __call__(self, texts: Iterable[str]) -> Analysed:
        ids, counts = array("i"), array("i")
        _number_terms(texts, self._number, ids, counts)
        first, self._sent = self._sent, len(self._names)
        as_array = functools.partial(np.frombuffer, dtype=np.int32)
        return Analysed(self._names[first:], as_array(ids), as_array(counts), self.source, first)


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

    def pop(self, name: str) -> np.ndarray:
        """One column (``terms``, ``rows`` or ``tfs``) as one array, its parts let go."""
        parts = getattr(self, name)
        setattr(self, name, [])
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)


class Inverted:
    """The postings of the segment being written."""

    def __init__(self) -> None:
        #: Term -> id, a new term numbered as it is first seen.
        self.vocab = _numbering()
        self.triples = Triples()
        self._words = array("i")
        self._rows = array("i")
        self._counts = array("i")
        #: Each :class:`Analyser`'s numbers -> ours, as far as its groups were added.
        self._sources: dict[int, array[int]] = {}

    def add_texts(self, rows: Iterable[int], texts: Iterable[str]) -> None:
        """Analyse new chunks' texts (rows ascending within one call)."""
        rows, texts = list(rows), list(texts)
        if len(rows) != len(texts):
            raise ValueError("one row per text is needed")
        _number_terms(texts, self.vocab.__getitem__, self._words, self._counts)
        self._rows.extend(rows)
        if len(self._words) >= _BLOCK_WORDS:
            self._fold()

    def add_analysed(self, rows: Sequence[int], terms: Analysed) -> None:
        """New chunks whose terms an :class:`Analyser` found (rows ascending, one per chunk)."""
        if len(rows) != len(terms.counts):
            raise ValueError("one row per analysed chunk is needed")
        table = self._sources.setdefault(terms.source, array("i"))
        if terms.first != len(table):
            raise ValueError("an analyser's terms were added out of order")
        table.extend(map(self.vocab.__getitem__, terms.names))
        self._words.frombytes(np.frombuffer(table, np.int32)[terms.ids].tobytes())
        self._rows.extend(rows)
        self._counts.frombytes(np.asarray(terms.counts, np.int32).tobytes())
        if len(self._words) >= _BLOCK_WORDS:
            self._fold()

    def add_stored(self, conn: sqlite3.Connection, remap: np.ndarray, *, legacy: bool) -> None:
        """An old segment's stored chunk postings (format 4, or ``legacy`` format 3), its
        rows renumbered by ``remap`` (old row -> new row, -1 for rows not copied). Decoded
        in blocks of lists, one NumPy pass per width: no per-term NumPy call."""
        sql = (
            "SELECT term, length(ids) / 4, ids, tfs FROM main.kw_postings WHERE level = 0"
            if legacy
            else "SELECT term, n, ids, tfs FROM main.kw_lists WHERE level = 0"
        )
        for block in _bounded(conn.execute(sql)):
            names, counts, ids, tfs = zip(*block, strict=True)
            n = np.array(counts, np.int64)
            tids = np.fromiter(map(self.vocab.__getitem__, names), np.int64, len(names))
            for rows, freqs, terms in _decoded(n, ids, tfs, tids, legacy=legacy):
                new = remap[rows]
                keep = new >= 0
                self.triples.add(terms[keep], new[keep], freqs[keep])

    def _fold(self) -> None:
        """Raw words of the chunks added since the last fold into triples."""
        if not self._rows:
            return
        keys = np.frombuffer(self._words, np.int32).astype(np.int64)
        keys <<= 32
        keys |= np.repeat(
            np.frombuffer(self._rows, np.int32), np.frombuffer(self._counts, np.int32)
        )
        keys, tfs = np.unique(keys, return_counts=True)
        self.triples.add(keys >> 32, keys & 0xFFFFFFFF, tfs)
        self._words, self._rows, self._counts = array("i"), array("i"), array("i")

    def write(self, conn: sqlite3.Connection) -> None:
        """Write the segment's postings and per-unit arrays (once, at commit)."""
        self._fold()
        conn.executescript(SCHEMA)
        names = list(self.vocab)
        order = sorted(range(len(names)), key=names.__getitem__)
        by_rank = list(map(names.__getitem__, order))
        rank = np.empty(len(names), np.int32)
        rank[order] = np.arange(len(names))
        del order
        n_rows, row_doc, first, doc_rowids = _units(conn)
        t0, r0, f0 = _by_term(rank, self.triples, n_rows)
        chunk_lengths = np.bincount(r0, weights=f0, minlength=n_rows).astype(np.int64)
        docs = int(doc_rowids.max()) + 1 if len(doc_rowids) else 1
        per_doc = np.bincount(row_doc, minlength=docs)
        early = first[r0] & (per_doc[row_doc[r0]] > 1)  # documents of several chunks
        dkey = t0[early].astype(np.int64) * docs + row_doc[r0[early]]
        dtf = f0[early]
        del early
        o = np.argsort(dkey, kind="stable")
        dkey, dtf = dkey[o], dtf[o]
        del o
        starts = np.flatnonzero(np.r_[True, dkey[1:] != dkey[:-1]]) if len(dkey) else dkey
        t1, d1 = dkey[starts] // docs, dkey[starts] % docs
        f1 = np.add.reduceat(dtf, starts) if len(dkey) else dtf
        del dkey, dtf
        doc_lengths = np.bincount(
            row_doc[first], weights=chunk_lengths[first], minlength=docs
        ).astype(np.int64)
        sql = "INSERT INTO kw_lists VALUES (?, ?, ?, ?, ?)"
        conn.executemany(sql, _lists(CHUNK, by_rank, t0, r0, f0))
        del t0, r0, f0
        conn.executemany(sql, _lists(DOC, by_rank, t1, d1, f1))
        write_vectors(conn, (chunk_lengths, doc_lengths, row_doc, doc_rowids))


def _bounded(
    rows: Iterable[tuple[str, int, bytes, bytes]],
) -> Iterator[list[tuple[str, int, bytes, bytes]]]:
    """Stored lists ``(term, length, ids, tfs)`` in blocks of at most :data:`_READ` lists that
    hold about :data:`_READ_POSTINGS` postings (one long list may pass it alone)."""
    block: list[tuple[str, int, bytes, bytes]] = []
    postings = 0
    for row in rows:
        block.append(row)
        postings += row[1]
        if postings >= _READ_POSTINGS or len(block) >= _READ:
            yield block
            block, postings = [], 0
    if block:
        yield block


def _by_term(
    rank: np.ndarray, triples: Triples, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The triples sorted by (term rank, row), int32. A large merge's peak memory is here:
    one int64 key or permutation alive at once, each column let go once reordered."""
    tids = triples.pop("terms")
    key = rank[tids].astype(np.int64)
    key *= max(n_rows, 1)
    rows = triples.pop("rows")
    key += rows
    order = np.argsort(key)
    del key
    terms = rank[tids[order]]
    del tids
    rows = rows[order]
    tfs = triples.pop("tfs")[order]
    return terms, rows, tfs


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
        return iter(())
    starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
    counts = np.diff(np.r_[starts, len(terms)])
    gaps = np.diff(ids, prepend=ids[:0].dtype.type(0))
    gaps[starts] = ids[starts]
    id_blobs = _packed(gaps, starts, counts)
    tf_blobs = _packed(tfs, starts, counts)
    heads = map(names.__getitem__, terms[starts].tolist())
    return zip(itertools.repeat(level), heads, counts.tolist(), id_blobs, tf_blobs)


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


def _decoded(
    n: np.ndarray,
    ids: Sequence[bytes],
    tfs: Sequence[bytes],
    tids: np.ndarray,
    *,
    legacy: bool,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, tfs, term ids)`` of a block of stored lists, one group of equal widths at a
    time (format 4 ids are gaps: summed within each list)."""
    id_width = np.fromiter(map(len, ids), np.int64, len(ids)) // np.maximum(n, 1)
    tf_width = np.fromiter(map(len, tfs), np.int64, len(tfs)) // np.maximum(n, 1)
    groups = {(4, 4)} if legacy else set(zip(id_width.tolist(), tf_width.tolist(), strict=True))
    for wi, wt in sorted(groups):
        mine = np.flatnonzero((id_width == wi) & (tf_width == wt) & (n > 0))
        if not len(mine):
            continue
        take = mine.tolist()
        kind = "<i4" if legacy else f"<u{wi}"
        rows = np.frombuffer(b"".join([ids[k] for k in take]), kind).astype(np.int64)
        freqs = np.frombuffer(b"".join([tfs[k] for k in take]), "<i4" if legacy else f"<u{wt}")
        lens = n[mine]
        if not legacy:  # gaps -> ids: a running sum restarted at each list
            total = np.cumsum(rows)
            ends = np.cumsum(lens)
            before = np.r_[0, total[ends[:-1] - 1]]
            rows = total - np.repeat(before, lens)
        yield rows, freqs.astype(np.int32), np.repeat(tids[mine], lens)
