"""Keyword queries: user text to index terms, with a fuzzy fallback for misspelled words.

A query term the index has never seen is most often a typo. It is replaced by the indexed
terms within one edit (two for long words) that share its first letter, most frequent
first, so "econmic" still finds "economic" in keyword and hybrid mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..store.segments import SegmentedKeyword as KeywordIndex
from ..store.tokenize import is_cjk

#: Matching chunks taken per document among the best documents (a long document's best).
DOC_CHUNK_FACTOR = 4
#: Weight of a chunk's own BM25 beside its document's in the keyword evidence.
CHUNK_WEIGHT = 0.25
#: Replacements kept for one unknown term.
FUZZY_CHOICES = 2
#: Shortest term corrected (shorter ones have too many neighbours to guess from).
FUZZY_MIN_LENGTH = 4


def query_terms(kw: KeywordIndex, text: str, *, fuzzy: bool = True) -> list[str]:
    """The index terms of ``text`` (repeats kept: they weigh in BM25), unknown ones
    replaced by their nearest indexed spellings when ``fuzzy``."""
    found = kw.query_terms(text)
    if not fuzzy or not found:
        return found
    known = kw.document_frequencies(found)
    out: list[str] = []
    fixes: dict[str, list[str]] = {}
    for t in found:
        if t in known or len(t) < FUZZY_MIN_LENGTH or is_cjk(t):
            out.append(t)
            continue
        if t not in fixes:
            fixes[t] = nearest_terms(kw, t)
        out.extend(fixes[t] or [t])
    return out


def nearest_terms(kw: KeywordIndex, term: str) -> list[str]:
    """Indexed terms within the edit budget of ``term``: closest, then most frequent."""
    budget = 1 if len(term) < 8 else 2
    scored = []
    for cand, df in kw.near(term[0], len(term) - budget, len(term) + budget):
        d = edit_distance(term, cand, budget)
        if d <= budget:
            scored.append((d, -df, cand))
    scored.sort()
    return [c for _, _, c in scored[:FUZZY_CHOICES]]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours),
    or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: Sequence[int] = ()
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True)
class KeywordHits:
    """One query's keyword candidates (chunk rows, best first by nothing in particular),
    the BM25 known so far per chunk and per document, and the full-match BM25 that turns
    them into fractions (:func:`semsearch.search.fuse.keyword_part`)."""

    rows: np.ndarray
    chunk_bm25: dict[int, float]
    doc_bm25: dict[str, float]
    full_match: float
    terms: tuple[str, ...]

    def evidence(self, rows: np.ndarray, doc_ids: Sequence[str]) -> np.ndarray:
        """Keyword evidence of each chunk: its document's BM25 and its own, weighted
        ``1 - CHUNK_WEIGHT : CHUNK_WEIGHT`` (the document ranks, the chunk picks the
        passage). 0 where no query term matched."""
        doc = np.array([self.doc_bm25.get(d, 0.0) for d in doc_ids], dtype=np.float64)
        own = np.array([self.chunk_bm25.get(int(r), 0.0) for r in rows], dtype=np.float64)
        return (1.0 - CHUNK_WEIGHT) * doc + CHUNK_WEIGHT * own


def keyword_hits(
    kw: KeywordIndex,
    text: str,
    depth: int,
    clauses: Sequence[str] = (),
    args: Sequence[Any] = (),
    *,
    fuzzy: bool = True,
) -> tuple[KeywordHits, list[str]]:
    """The best ``depth`` chunks by BM25, plus the matching chunks of the best ``depth``
    documents by document-level BM25 (a document can match as a whole where no single
    chunk holds all the query's words). Returns the hits and each row's document."""
    qt = query_terms(kw, text, fuzzy=fuzzy)
    rows, bm25, docs = kw.chunks(qt, depth, clauses, args)
    top = kw.top_documents(qt, depth, clauses, args)
    if top:
        inside = f"d.doc_id IN ({','.join('?' * len(top))})"
        more = kw.chunks(qt, DOC_CHUNK_FACTOR * depth, [*clauses, inside], [*args, *top])
        rows = np.concatenate([rows, more[0]])
        bm25 = np.concatenate([bm25, more[1]])
        docs = docs + more[2]
        rows, first = np.unique(rows, return_index=True)
        bm25 = bm25[first]
        docs = [docs[i] for i in first.tolist()]
    chunk = dict(zip(rows.tolist(), bm25.tolist(), strict=True))
    doc_bm25 = dict(top)
    if kw.legacy:  # no document table: a document is as good as its best chunk
        for d, s in zip(docs, bm25.tolist(), strict=True):
            doc_bm25[d] = max(doc_bm25.get(d, 0.0), s)
    return KeywordHits(rows, chunk, doc_bm25, kw.full_match(qt), tuple(qt)), docs


def complete(
    hits: KeywordHits, kw: KeywordIndex, rows: np.ndarray, doc_ids: Sequence[str]
) -> KeywordHits:
    """``hits`` with the BM25 of ``rows`` and of their documents filled in (for dense
    candidates the keyword lists did not reach)."""
    missing_rows = [r for r in rows.tolist() if r not in hits.chunk_bm25]
    missing_docs = [d for d in set(doc_ids) if d not in hits.doc_bm25]
    if not missing_rows and not missing_docs:
        return hits
    chunk = {**hits.chunk_bm25, **kw.chunk_scores(hits.terms, missing_rows)}
    docs = dict(hits.doc_bm25)
    if kw.legacy:
        for r, d in zip(rows.tolist(), doc_ids, strict=True):
            docs[d] = max(docs.get(d, 0.0), chunk.get(r, 0.0))
    else:
        docs.update(kw.documents(hits.terms, missing_docs))
    return KeywordHits(hits.rows, chunk, docs, hits.full_match, hits.terms)
