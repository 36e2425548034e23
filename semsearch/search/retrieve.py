"""From queries to ranked rows: dense, keyword or hybrid candidates, then the page shaping.

``SemanticIndex.search`` calls :func:`retrieve`; this module decides which rows, the API
turns them into hits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..embed import Embedder
from ..index import VectorIndex
from ..index.base import Pool, SearchResult, first_positions, located, row_dots
from ..index.segmented import SegmentedVectors
from ..store.segmented_keyword import SegmentedKeyword
from ..store.segments import SegmentedStore
from ..util import unique_sorted
from .filerank import by_file, code_texts, rescored
from .fuse import (
    CODE_SAMPLE,
    FEEDBACK_ALPHA,
    FEEDBACK_DOCS,
    FEEDBACK_WEIGHT,
    Reading,
    blend,
    dense_part,
    dense_weight,
    feedback_query,
    keyword_part,
    on_code,
    order,
    readings,
)
from .keyword import KeywordHits, keyword_hits
from .query_vectors import query_vectors, vectors_soon
from .request import SearchOptions
from .shape import cap_per_source, mmr, mmr_pool

#: Candidates taken from each list before fusion or re-ranking (README, "Ranking quality").
CANDIDATES = 200
#: Hybrid: the query's dense candidates among which the feedback-moved query's best
#: ``CANDIDATES`` are taken (the rows an ``ivf`` index re-scores anyway; docs/segments.md).
FEEDBACK_POOL = 1024
#: The feedback documents are looked for among the first pass's best ``BEST_FIRST`` x
#: ``FEEDBACK_DOCS`` candidates (all of them only when those hold too few documents).
BEST_FIRST = 8
#: What a query asks besides its text: declared once, in :mod:`.request`.
Options = SearchOptions


@dataclass(frozen=True)
class Ranked:
    """Rows and scores for one query, best first, with what each score is made of (None
    for what the mode did not compute): ``cosine`` with the query as typed and ``bm25``
    (the raw keyword evidence), and the 0-1 ``dense_part`` and ``keyword_part`` that
    ``scores`` is computed from (:func:`semsearch.search.fuse.score_of`)."""

    rows: np.ndarray
    scores: np.ndarray
    cosine: np.ndarray | None = None
    bm25: np.ndarray | None = None
    dense_part: np.ndarray | None = None
    keyword_part: np.ndarray | None = None
    #: Grouped by file: each row's further chunk rows of its document (tuples), best first.
    further: np.ndarray | None = None
    #: Hybrid: the query's own dense weight (:func:`semsearch.search.fuse.dense_weight`).
    dense_weight: float | None = None

    def take(self, keep: np.ndarray) -> Ranked:
        """The rows at positions ``keep`` (a mask or positions), parts included."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[keep]

        return Ranked(
            self.rows[keep], self.scores[keep], cut(self.cosine), cut(self.bm25),
            cut(self.dense_part), cut(self.keyword_part), cut(self.further), self.dense_weight,
        )  # fmt: skip


def retrieve(
    queries: Sequence[str],
    opts: Options,
    *,
    embedder: Embedder,
    index: VectorIndex,
    store: SegmentedStore,
    vectors: SegmentedVectors,
) -> list[Ranked]:
    """Rank rows for each query according to ``opts`` (checked by the caller). A hybrid
    search embeds its queries in a worker thread while the keyword side runs."""
    embedding = vectors_soon(embedder, queries) if opts.mode == "hybrid" else None
    subset = store.rows_where(opts.where) if opts.where else None
    if subset is not None and len(subset) == 0:
        empty = Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
        return [empty for _ in queries]
    shaping = opts.per_source is not None or opts.diverse or opts.group is not None
    depth = max(opts.k, CANDIDATES) if (opts.mode != "dense" or shaping) else opts.k
    embedded = opts.mode != "keyword"
    if opts.mode == "dense":
        qvecs = query_vectors(embedder, queries)
        dense = _dense(index, qvecs, depth, subset)
        ranked = [Ranked(rows, cos, cosine=cos, dense_part=cos) for rows, cos in dense]
    else:
        kw = store.keyword_index()
        hits = [keyword_hits(kw, q, depth, subset) for q in queries]
        if opts.mode == "keyword":
            qvecs = np.zeros((0, 0))
            ranked = [_keyword_ranked(h, kw.doc_of(h.rows)) for h in hits]
        else:
            reads = readings(embedder, queries)  # (while the worker may still embed)
            qvecs = embedding() if embedding else query_vectors(embedder, queries)
            pool = _pooled(index.search_pool(qvecs, depth, FEEDBACK_POOL, subset))
            reads = [
                on_code(r, code_texts(store, p.rows[:CODE_SAMPLE]))
                for r, p in zip(reads, pool, strict=True)
            ]
            ranked = _hybrid(qvecs, pool, hits, reads, kw, vectors, depth)
    return [
        _shape(r, opts, store, vectors, qvecs[n] if embedded else None, queries[n])
        for n, r in enumerate(ranked)
    ]


def _dense(
    index: VectorIndex, qvecs: np.ndarray, depth: int, subset: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    return _found(index.search(qvecs, depth, subset))


def _found(result: SearchResult) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each query's rows and scores. A row id of -1 is faiss's "no hit" (a NaN score, or
    fewer rows than asked for)."""
    return [(i[i >= 0], s[i >= 0]) for s, i in zip(result.scores, result.ids, strict=True)]


class Pooled(NamedTuple):
    """One query's dense pool: rows and cosines, best first, and the rows' vectors where the
    index read them anyway (None: read them from the vector files)."""

    rows: np.ndarray
    cosines: np.ndarray
    vecs: np.ndarray | None


def _pooled(result: Pool) -> list[Pooled]:
    """Each query's pool (``-1`` rows dropped, as in :func:`_found`; they come last, so
    the rest is a slice). The vectors are copied: a view kept the whole pool's block alive
    through the query, and glibc then mapped and faulted in the query's large temporaries
    afresh each time (~1,100 page faults, +2 ms CPU a hybrid query at 100k: docs/segments.md,
    "Sixth round")."""
    vecs = result.vectors
    out = []
    for n, (s, i) in enumerate(zip(result.scores, result.ids, strict=True)):
        real = i >= 0
        count = int(real.sum())
        keep: slice | np.ndarray = slice(0, count) if real[:count].all() else real
        out.append(Pooled(i[keep], s[keep], None if vecs is None else vecs[n][keep].copy()))
    return out


def _keyword_ranked(h: KeywordHits, docs: np.ndarray) -> Ranked:
    """Chunks by keyword evidence (their document's BM25, if among the best documents, and
    their own); the score is the keyword part of :mod:`.fuse`, a fraction of the most BM25
    can give the query."""
    evidence = h.evidence(h.rows, docs, every_doc=False)
    pos = order(h.rows, evidence)
    scores = keyword_part(evidence[pos], h.full_evidence).astype(np.float32)
    return Ranked(h.rows[pos], scores, bm25=evidence[pos], keyword_part=scores)


def _hybrid(
    qvecs: np.ndarray,
    pool: list[Pooled],
    hits: list[KeywordHits],
    reads: list[Reading],
    kw: SegmentedKeyword,
    vectors: SegmentedVectors,
    depth: int,
) -> list[Ranked]:
    """Blend the two parts (:mod:`.fuse`), then once more after moving each query vector
    towards its first pass's best documents (pseudo-relevance feedback), with each query's
    own dense weight (``reads``: how far the model is from reading it). ``pool``: each
    query's dense candidates, best first, more than the ``depth`` the first pass blends;
    the moved query's best ``depth`` are taken from them (no second vector search). Each
    candidate's keyword evidence is computed once; its vector is copied out of the pool's
    or read from the vector files, one gather for each matrix the dots run over."""
    first = []
    moved = np.empty_like(qvecs)
    for n, h in enumerate(hits):
        drows, dcos = pool[n].rows[:depth], pool[n].cosines[:depth]
        rows = unique_sorted(np.concatenate([drows, h.rows]))
        docs = kw.doc_of(rows)
        vecs = _read(rows, pool[n], vectors)
        cos = row_dots(vecs, qvecs[n])
        evidence = h.evidence(rows, docs)
        s = blend(
            dense_part(cos, _floor(dcos)), keyword_part(evidence, h.full_match), FEEDBACK_ALPHA
        )
        best = _best_documents(rows, s, docs, FEEDBACK_DOCS)
        weight = FEEDBACK_WEIGHT if reads[n].feedback else 0.0
        moved[n] = feedback_query(qvecs[n], vecs[best], weight)
        first.append(Candidates(rows, docs, vecs, evidence))
    out = []
    for n, h in enumerate(hits):
        more, more_vecs, floor = _moved_best(pool[n], first[n], moved[n], vectors, depth)
        rows, docs, vecs, evidence = first[n].extended(more, more_vecs, kw, h)
        dp = dense_part(row_dots(vecs, moved[n]), floor)
        kp = keyword_part(evidence, h.full_match)
        w = dense_weight(dp, kp, reads[n])
        s = blend(dp, kp, w)
        pos = order(rows, s)
        cos = row_dots(vecs, qvecs[n])[pos]
        out.append(Ranked(rows[pos], s[pos], cos, evidence[pos], dp[pos], kp[pos], None, w))
    return out


class Candidates(NamedTuple):
    """One query's candidate rows (ascending), their document keys, their vectors and
    their keyword evidence."""

    rows: np.ndarray
    docs: np.ndarray
    vecs: np.ndarray
    evidence: np.ndarray

    def extended(
        self, more: np.ndarray, vecs: np.ndarray, kw: SegmentedKeyword, hits: KeywordHits
    ) -> Candidates:
        """These candidates and the ``more`` rows (none of them among these) with their
        ``vecs``, still ascending (the new rows' evidence from ``hits``)."""
        if not len(more):
            return self
        docs = kw.doc_of(more)
        rows = np.concatenate([self.rows, more])
        pos = np.argsort(rows, kind="stable")
        return Candidates(
            rows[pos],
            np.concatenate([self.docs, docs])[pos],
            np.concatenate([self.vecs, vecs]).take(pos, axis=0),
            np.concatenate([self.evidence, hits.evidence(more, docs)])[pos],
        )


def _read(rows: np.ndarray, pool: Pooled, vectors: SegmentedVectors) -> np.ndarray:
    """The vectors of ``rows``: the pool's where it brought them, the others read."""
    if pool.vecs is None or not len(pool.rows):
        return np.asarray(vectors[rows], np.float32)
    at, known = located(pool.rows, rows, np.argsort(pool.rows, kind="stable"))
    if known.all():
        return pool.vecs.take(at, axis=0)
    out = np.empty((len(rows), pool.vecs.shape[1]), np.float32)
    have, lack = np.flatnonzero(known), np.flatnonzero(~known)
    out[have] = pool.vecs.take(at[have], axis=0)
    out[lack] = vectors[rows[lack]]
    return out


def _moved_best(
    pooled: Pooled,
    first: Candidates,
    moved: np.ndarray,
    vectors: SegmentedVectors,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The feedback-moved query's best ``depth`` rows of the pool (ties to the smaller row)
    that ``first`` lacks, their vectors, and the weakest moved cosine among the best (the
    moved query's background, :func:`_floor`). The pool's vectors are its own, or read in
    one gather (a copy out of ``first`` and a read of the rest cost twice as much)."""
    pool = pooled.rows
    vecs = pooled.vecs if pooled.vecs is not None else np.asarray(vectors[pool], np.float32)
    to_moved = row_dots(vecs, moved)
    # the first ``depth`` of order(pool, to_moved), picked by a partition first
    best = first_positions(to_moved[None], pool[None], min(depth, len(pool)))[0]
    floor = float(to_moved[best].min()) if len(best) else 0.0
    new = best[~located(first.rows, pool[best])[1]]
    return pool[new], vecs.take(new, axis=0), floor


def _floor(cosines: np.ndarray) -> float:
    """The query's background similarity: the weakest cosine of its dense candidates."""
    return float(cosines.min()) if len(cosines) else 0.0


def _best_documents(rows: np.ndarray, scores: np.ndarray, docs: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` positions, in :func:`order` of ``rows`` by ``scores``, from distinct
    documents (``docs``: the document of each position). The best ``BEST_FIRST`` are
    ordered first; the whole list only when they hold fewer than ``m`` documents."""
    if m * BEST_FIRST < len(rows):
        found = _first_of_documents(
            first_positions(scores[None], rows[None], m * BEST_FIRST)[0], docs, m
        )
        if len(found) == m:
            return found
    return _first_of_documents(order(rows, scores), docs, m)


def _first_of_documents(ranked: np.ndarray, docs: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` of the positions ``ranked`` from distinct documents."""
    _, first = np.unique(docs[ranked], return_index=True)
    return ranked[np.sort(first)[:m]]


def _shape(
    ranked: Ranked,
    opts: Options,
    store: SegmentedStore,
    vectors: SegmentedVectors,
    qvec: np.ndarray | None,
    query: str = "",
) -> Ranked:
    # Only the best k count after the signals unless hits are capped per source or spread.
    k = None if opts.per_source is not None or opts.diverse else opts.k
    if opts.group == "file" and len(ranked.rows):
        ranked = by_file(ranked, store, query, k)
    elif len(ranked.rows):
        ranked = rescored(ranked, store, query, k)
    if opts.min_score is not None:
        ranked = ranked.take(ranked.scores >= opts.min_score)
    if opts.per_source is not None and len(ranked.rows):
        records = store.fetch(ranked.rows)
        sources = [records[int(r)].source for r in ranked.rows]
        ranked = ranked.take(cap_per_source(ranked.rows, sources, opts.per_source))
    if opts.diverse and len(ranked.rows):
        vecs = np.asarray(vectors[ranked.rows])
        pool = mmr_pool(ranked.scores, vecs, opts.k)
        ranked = ranked.take(pool)
        ranked = ranked.take(mmr(ranked.scores, vecs[pool], opts.k))
    return ranked.take(np.arange(min(opts.k, len(ranked.rows))))
