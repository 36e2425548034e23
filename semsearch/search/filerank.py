"""File-level ranking of code hits: the signals of :mod:`.group` (definitions, file
factors) applied to a query's ranked chunks, grouped by file (:func:`by_file`) or not
(:func:`rescored`), read only for the rows that can still reach the best ``k``.

What a query reads, and what it no longer does (docs/code-search.md, "Query speed, round 4"):

* each document's kind and file factor are read once per generation (:class:`DocFacts`),
  not twice per query;
* the rows that can reach the best ``k`` are bounded with each row's own file factor and
  the query's own largest definition factor (none for a query naming nothing, ×1.3 for
  one naming something in several words, ×3 for one symbol), where the bound had assumed
  the widest of both for every row; then again with what each code row's section and
  text name (:func:`_reachable`);
* texts are read only of code chunks among those rows that name what the query asks for,
  and checked for definitions only in the rows that remain;
* the code gate reads no text of a code chunk (:func:`code_texts`).

:func:`semsearch.search.retrieve.retrieve` calls these on each query's ranking.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..store.segments import SegmentedStore
from ..util import unique_sorted
from . import group
from .group import (
    definition_tiers,
    group_rows,
    may_be_exact,
    path_factor,
    query_names,
    rescore_rows,
    symbol_parts,
)

if TYPE_CHECKING:
    from ..store.records import ChunkMention
    from ..store.segmented_keyword import SegmentedKeyword
    from .retrieve import Ranked


def by_file(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """One row per document (its best chunk), scored by :mod:`.group`; with ``k``, only
    documents that can be among the best ``k`` (:func:`contenders`)."""
    facts = _facts_of(store, ranked.rows)
    mentions = None
    if k is not None:
        keep, mentions = _reachable(ranked, facts, facts.docs, store, query, k)
        ranked, facts = ranked.take(keep), facts.take(keep)
    defining = _tiers(ranked.rows, facts, store, query, mentions)
    grouped = group_rows(ranked.rows, ranked.scores, facts.docs, defining, facts.factor)
    pos = {int(r): i for i, r in enumerate(ranked.rows.tolist())}
    at = np.array([pos[int(r)] for r in grouped.rows], dtype=np.int64)
    return replace(ranked.take(at), rows=grouped.rows, scores=grouped.scores,
                   further=grouped.further)  # fmt: skip


def rescored(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """Chunk hits re-scored by the signals of :mod:`.group` (unchanged where none fires,
    and at no cost in an index without code); with ``k``, only the rows that can be among
    the best ``k`` are looked at (:func:`contenders`), and only the best ``k`` of what is
    returned count (those of re-scoring every row)."""
    from ..ingest.readers.text import CodeReader

    if not store.holds_kind(CodeReader.kind):
        return ranked
    if k is not None and not _leads_in_order(ranked.rows, ranked.scores, k):
        # Where none fires, every row is left where it was, and the best k by score are
        # not the first k (float ties out of row order): only the whole bound knows.
        return _rescored_widely(ranked, store, query, k)
    every = _facts_of(store, ranked.rows)
    few, facts, keep, mentions = ranked, every, None, None
    if k is not None:
        keep, mentions = _reachable(ranked, every, None, store, query, k)
        few, facts = ranked.take(keep), every.take(keep)
    defining = _tiers(few.rows, facts, store, query, mentions)
    found = rescore_rows(few.rows, few.scores, defining, facts.factor)
    if found is not None:
        return replace(few.take(found.positions), scores=found.scores)
    if k is None or keep is None:
        return ranked
    # None fired among the contenders: they keep their scores and rank as they did, but a
    # score is made single precision (as a re-scored one is) where a signal fired among
    # the rows the widest bounds keep.
    few = few.take(np.lexsort((few.rows, -np.asarray(few.scores, np.float64))))
    if few.scores.dtype != np.float32 and _fired_widely(ranked, every, keep, store, query, k):
        few = replace(few, scores=few.scores.astype(np.float32))
    return few


def _reachable(
    ranked: Ranked, facts: RowFacts, keys: np.ndarray | None, store: SegmentedStore, query: str,
    k: int,
) -> tuple[np.ndarray, list[ChunkMention] | None]:  # fmt: skip
    """Positions of the rows whose key (None: the row) can reach the best ``k``
    (:func:`contenders`), and the mentions of the query's names among them (None: the
    query names nothing). Bounded first by the rows' file factors and the query's largest
    definition factor; then, the code rows' mentions read, again by each code row's own:
    none where neither its section nor its text names what the query asks for, the exact
    tier's only where its section names the one symbol asked for. The k-th best lowest
    bound is among the rows the first bounds keep, so the second pass over them alone is as
    sound as one over all; the texts are then checked only for the rows that remain."""
    low, high = facts.bounds(query)
    keep = contenders(ranked.scores, keys, k, low, high)
    names = query_names(query)
    if not names:
        return keep, None
    code = keep[facts.code[keep]]
    mentions = store.mentions(ranked.rows[code], names)
    parts = symbol_parts(query)
    exact = {sec: may_be_exact(sec, parts) for sec in {m.section for m in mentions}}
    gain = {m.row: _gain(exact[m.section]) for m in mentions}
    high = facts.factor[keep].copy()  # code rows naming nothing: no definition factor
    at = np.flatnonzero(facts.code[keep])
    high[at] *= [gain.get(r, 1.0) for r in ranked.rows[code].tolist()]
    again = contenders(ranked.scores[keep], None if keys is None else keys[keep], k,
                       low[keep], high)  # fmt: skip
    rows = set(ranked.rows[keep[again]].tolist())
    return keep[again], [m for m in mentions if m.row in rows]


def _fired_widely(
    ranked: Ranked, facts: RowFacts, kept: np.ndarray, store: SegmentedStore, query: str, k: int
) -> bool:
    """Whether a signal fires on a row the widest bounds (:func:`contenders` without known
    factors) keep but ``kept`` (positions) lacks: its file factor, or a definition there."""
    wide = contenders(ranked.scores, None, k)
    if np.any(facts.factor[wide] != 1.0):
        return True
    rest = np.setdiff1d(wide, kept, assume_unique=True)
    return bool(np.any(_tiers(ranked.rows[rest], facts.take(rest), store, query)))


def _rescored_widely(ranked: Ranked, store: SegmentedStore, query: str, k: int) -> Ranked:
    """:func:`rescored` over the rows any signal could bring into the best ``k``, with
    neither factor known: what it did before the bounds knew them."""
    few = ranked.take(contenders(ranked.scores, None, k))
    _, defining, factor = signals(few.rows, store, query)
    found = rescore_rows(few.rows, few.scores, defining, factor)
    if found is None:
        return ranked
    return replace(few.take(found.positions), scores=found.scores)


def _leads_in_order(rows: np.ndarray, scores: np.ndarray, k: int) -> bool:
    """Whether the first ``k`` rows are the best ``k`` by score, ties to the smaller row,
    in that order (as :func:`.group.rescore_rows` orders them)."""
    s = np.asarray(scores, np.float64)
    n = min(k, len(s))
    if n == 0:
        return True
    r = np.asarray(rows, np.int64)
    a, b = s[: n - 1], s[1:n]
    if not np.all((a > b) | ((a == b) & (r[: n - 1] < r[1:n]))):
        return False
    last, rest = s[n - 1], s[n:]
    return bool(np.all((rest < last) | ((rest == last) & (r[n:] > r[n - 1]))))


def contenders(
    scores: np.ndarray,
    keys: np.ndarray | None,
    k: int,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of the rows whose key (the row itself, or its document when grouping;
    None: each row is its own) can
    still be among the best ``k`` keys once :mod:`.group`'s signals apply. A key scores its
    best row's score times a tier factor and a file factor; ``low`` and ``high`` are each
    row's least and greatest product of the two (default: ``DOWNWEIGHT`` and ``1 +
    EXACT_DEFINITION_BONUS``, the widest): a key whose highest possible score is below the
    k-th best of the lowest possible ones cannot get in (equal ones stay: ties go by row)."""
    s = np.asarray(scores, np.float64)
    lo = group.DOWNWEIGHT if low is None else np.asarray(low, np.float64)
    hi = 1.0 + group.EXACT_DEFINITION_BONUS if high is None else np.asarray(high, np.float64)
    a, b = s * lo, s * hi
    row_low, row_high = np.minimum(a, b), np.maximum(a, b)
    if keys is None:  # each row its own key
        if len(s) <= k:
            return np.arange(len(s))
        floor = np.partition(row_low, len(s) - k)[len(s) - k]
        return np.flatnonzero(row_high >= floor - 1e-9 * abs(floor))
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = np.asarray(keys)[by_key]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    if len(starts) <= k:
        return np.arange(len(s))
    lowest = np.maximum.reduceat(row_low[by_key], starts)
    highest = np.maximum.reduceat(row_high[by_key], starts)
    floor = np.partition(lowest, len(lowest) - k)[len(lowest) - k]
    keep = highest >= floor - 1e-9 * abs(floor)  # (rounding in the factors' products)
    row_keep = np.empty(len(s), bool)
    row_keep[by_key] = np.repeat(keep, np.diff(np.r_[starts, len(s)]))
    return np.flatnonzero(row_keep)


def signals(
    rows: np.ndarray, store: SegmentedStore, query: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's document key, definition tier and file factor (:mod:`.group`), the
    signals only in code (a document the code reader made; 0 and 1 elsewhere). No text is
    read but of code chunks that name what the query asks for (the others cannot define
    it)."""
    facts = _facts_of(store, rows)
    return facts.docs, _tiers(rows, facts, store, query), facts.factor


def code_texts(store: SegmentedStore, rows: np.ndarray) -> list[str]:
    """The texts of ``rows`` as :func:`.fuse.on_code` reads them: "" for a chunk the code
    reader made (its file's code signals apply instead, :mod:`.group`), whose text is then
    not read at all."""
    from ..ingest.readers.text import CodeReader

    if not store.holds_kind(CodeReader.kind):  # (no document's kind to ask for)
        return _texts(store, rows)
    code = _facts_of(store, rows).code
    if code.all():
        return [""] * len(code)
    return [""] * int(code.sum()) + _texts(store, rows[~code])


def _texts(store: SegmentedStore, rows: np.ndarray) -> list[str]:
    """The texts of ``rows`` alone, not their records (a third of the time for 10 rows)."""
    from ..ingest.readers.text import CodeReader

    texts = store.texts_unless(rows, CodeReader.kind)
    return [texts[r] for r in sorted(texts)]


class RowFacts(NamedTuple):
    """What the signals know of some rows before reading any text: each row's document
    key, whether that document is code, and its file factor (1 but in code)."""

    docs: np.ndarray  # int64
    code: np.ndarray  # bool
    factor: np.ndarray  # float64

    def take(self, keep: np.ndarray) -> RowFacts:
        return RowFacts(self.docs[keep], self.code[keep], self.factor[keep])

    def bounds(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Each row's least and greatest factor under the signals for ``query``: its file
        factor, times at most the largest definition factor the query can give (in code)."""
        if not query_names(query):
            return self.factor, self.factor
        gain = _gain(bool(symbol_parts(query)))
        return self.factor, np.where(self.code, self.factor * gain, self.factor)


def _gain(exact: bool) -> float:
    """The largest definition factor of a chunk: with the exact tier (a one-symbol query,
    the chunk's section naming it) or without."""
    bonus = max(group.DEFINITION_BONUS, group.EXACT_DEFINITION_BONUS if exact else 0.0)
    return max(1.0, 1.0 + bonus)


def _tiers(
    rows: np.ndarray, facts: RowFacts, store: SegmentedStore, query: str,
    mentions: list[ChunkMention] | None = None,
) -> np.ndarray:  # fmt: skip
    """Each row's definition tier (:func:`.group.definition_tiers`), 0 outside code;
    ``mentions``: those of the code rows, when already read."""
    names = query_names(query)
    if not names or not facts.code.any():
        return np.zeros(len(rows), np.int8)
    code = np.asarray(rows)[facts.code]
    sources = _Sources(store.keyword_index(), dict(zip(code.tolist(),
                       facts.docs[facts.code].tolist(), strict=True)))  # fmt: skip
    if mentions is None:
        mentions = store.mentions(code, names)
    return definition_tiers(rows, mentions, query, sources)


class _Sources(Mapping[int, str]):
    """The file of each code row, read only for the rows asked for (a query naming a
    qualified symbol asks for those of the few chunks in its very definition)."""

    def __init__(self, kw: SegmentedKeyword, doc_of: dict[int, int]) -> None:
        self._kw, self._doc_of = kw, doc_of
        self._read: dict[int, str] = {}

    def __getitem__(self, row: int) -> str:
        doc = self._doc_of[row]
        if doc not in self._read:
            self._read.update(self._kw.doc_ids([doc], "source"))
        return self._read[doc]

    def __iter__(self) -> Iterator[int]:
        return iter(self._doc_of)

    def __len__(self) -> int:
        return len(self._doc_of)


class DocFacts:
    """Per generation, whether each document (by key) is code and its file factor, read
    once from the chunk database and kept in three arrays (10 bytes a document). A
    document of a generation never changes; a newer generation has its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        empty = np.zeros(0, bool)
        #: known, code, factor: replaced whole (never written in place) once published.
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] = (empty, empty, np.ones(0))

    def of(self, kw: SegmentedKeyword, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each of ``docs`` is code, and its file factor."""
        known, code, factor = self._arrays
        if len(docs) and (int(docs.max()) >= len(known) or not known[docs].all()):
            with self._lock:
                self._read(kw, docs)
            known, code, factor = self._arrays
        return code[docs], factor[docs]

    def _read(self, kw: SegmentedKeyword, docs: np.ndarray) -> None:
        from ..ingest.readers.text import CodeReader

        size = max(len(self._arrays[0]), int(docs.max()) + 1)
        known, code, factor = (_grown(a, size) for a in self._arrays)  # copies: see _arrays
        missing = unique_sorted(docs[~known[docs]])
        kinds = kw.doc_ids(missing.tolist(), "kind")
        is_code = np.array([kinds.get(int(d)) == CodeReader.kind for d in missing], bool)
        sources = kw.doc_ids(missing[is_code].tolist(), "source") if is_code.any() else {}
        code[missing] = is_code
        factor[missing] = 1.0
        for d, source in sources.items():
            factor[d] = path_factor(source)
        known[missing] = True
        self._arrays = (known, code, factor)


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    """A copy of ``a`` with zeros after it up to ``size``."""
    out = np.zeros(size, a.dtype)
    out[: len(a)] = a
    return out


_facts: weakref.WeakKeyDictionary[SegmentedStore, DocFacts] = weakref.WeakKeyDictionary()
_facts_lock = threading.Lock()


def _facts_of(store: SegmentedStore, rows: np.ndarray) -> RowFacts:
    """:class:`RowFacts` of ``rows``, from the generation's :class:`DocFacts`."""
    with _facts_lock:
        facts = _facts.get(store)
        if facts is None:
            facts = _facts[store] = DocFacts()
    kw = store.keyword_index()
    docs = kw.doc_of(rows)
    code, factor = facts.of(kw, docs)
    return RowFacts(docs, code, factor)
