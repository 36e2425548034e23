"""File-level ranking of code hits: the signals of :mod:`.group` (definitions, file
factors) applied to a query's ranked chunks, grouped by file (:func:`by_file`) or not
(:func:`rescored`), read only for the rows that can still reach the best ``k``.

:func:`semsearch.search.retrieve.retrieve` calls these on each query's ranking.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..store.segments import SegmentedStore
from ..util import unique_sorted
from .group import (
    DOWNWEIGHT,
    EXACT_DEFINITION_BONUS,
    definition_tiers,
    group_rows,
    path_factor,
    query_names,
    rescore_rows,
)

if TYPE_CHECKING:
    from .retrieve import Ranked


def by_file(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """One row per document (its best chunk), scored by :mod:`.group`; with ``k``, only
    documents that can be among the best ``k`` (:func:`contenders`)."""
    if k is not None:
        ranked = ranked.take(
            contenders(ranked.scores, store.keyword_index().doc_of(ranked.rows), k)
        )
    docs, defining, factor = signals(ranked.rows, store, query)
    grouped = group_rows(ranked.rows, ranked.scores, docs, defining, factor)
    pos = {int(r): i for i, r in enumerate(ranked.rows.tolist())}
    at = np.array([pos[int(r)] for r in grouped.rows], dtype=np.int64)
    return replace(ranked.take(at), rows=grouped.rows, scores=grouped.scores,
                   further=grouped.further)  # fmt: skip


def rescored(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """Chunk hits re-scored by the signals of :mod:`.group` (unchanged where none fires,
    and at no cost in an index without code); with ``k``, only the rows that can be among
    the best ``k`` are looked at (:func:`contenders`)."""
    from ..ingest.readers.text import CodeReader

    if not store.holds_kind(CodeReader.kind):
        return ranked
    few = ranked if k is None else ranked.take(contenders(ranked.scores, ranked.rows, k))
    _, defining, factor = signals(few.rows, store, query)
    found = rescore_rows(few.rows, few.scores, defining, factor)
    if found is None:
        return ranked
    return replace(few.take(found.positions), scores=found.scores)


def contenders(scores: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the rows whose key (the row itself, or its document when grouping) can
    still be among the best ``k`` keys once :mod:`.group`'s signals apply. A key scores its
    best row's score times a tier factor (1 to ``1 + EXACT_DEFINITION_BONUS``) and a file
    factor (``DOWNWEIGHT`` to 1): a key whose highest possible score is below the k-th best
    of the lowest possible ones cannot get in (equal ones stay: ties go by row)."""
    s = np.asarray(scores, np.float64)
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = np.asarray(keys)[by_key]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    if len(starts) <= k:
        return np.arange(len(s))
    best = np.maximum.reduceat(s[by_key], starts)
    gains = np.array([DOWNWEIGHT, 1.0 + EXACT_DEFINITION_BONUS])
    highest, lowest = (best[:, None] * gains).max(axis=1), (best[:, None] * gains).min(axis=1)
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
    from ..ingest.readers.text import CodeReader

    kw = store.keyword_index()
    docs = kw.doc_of(rows)
    defining = np.zeros(len(rows), np.int8)
    factor = np.ones(len(rows), np.float64)
    keys = unique_sorted(docs)
    kinds = kw.doc_ids(keys.tolist(), "kind")
    code_keys = keys[np.array([kinds[int(d)] == CodeReader.kind for d in keys], bool)]
    if not len(code_keys):
        return docs, defining, factor
    sources = kw.doc_ids(code_keys.tolist(), "source")
    code = np.isin(docs, code_keys)
    of_doc = {d: path_factor(source) for d, source in sources.items()}
    factor[code] = [of_doc[d] for d in docs[code].tolist()]
    names = query_names(query)
    if names:
        pairs = zip(rows[code].tolist(), docs[code].tolist(), strict=True)
        source_of = {int(r): sources[int(d)] for r, d in pairs}
        defining = definition_tiers(rows, store.mentions(rows[code], names), query, source_of)
    return docs, defining, factor
