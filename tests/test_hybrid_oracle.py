"""The hybrid blend and feedback (``retrieve._hybrid``) and the list confidence
(``fuse.confidence``) against their versions before the speed work of stop 33 (blend5),
kept here word for word as the oracle: every output array bit for bit, on random inputs
with odd sizes, tied cosines and tied keyword evidence, pools with and without their
vectors, one and two vector blocks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from semsearch.index.base import first_positions, located, row_dots
from semsearch.index.segmented import SegmentedVectors
from semsearch.search import fuse, retrieve
from semsearch.search.fuse import (
    CONFIDENCE_TOP,
    FEEDBACK_ALPHA,
    FEEDBACK_DOCS,
    FEEDBACK_WEIGHT,
    K1_PLUS_1,
    Reading,
    blend,
    dense_part,
    dense_weight,
    feedback_query,
    order,
)
from semsearch.search.keyword import KeywordHits
from semsearch.search.retrieve import Pooled, Ranked
from semsearch.store.bm25 import Scored
from semsearch.util import unique_sorted

SegmentedKeyword = object  # (the old code's annotations only)

# ---- the old code, word for word -------------------------------------------------------


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
    candidate's vector is read once, and not at all when the pool brought it."""
    first = []
    moved = np.empty_like(qvecs)
    for n, h in enumerate(hits):
        drows, dcos = pool[n].rows[:depth], pool[n].cosines[:depth]
        rows = unique_sorted(np.concatenate([drows, h.rows]))
        docs = kw.doc_of(rows)
        vecs = _read(rows, pool[n], vectors)
        cos = row_dots(vecs, qvecs[n])
        s = blend(
            dense_part(cos, _floor(dcos)),
            keyword_part(h.evidence(rows, docs), h.full_match),
            FEEDBACK_ALPHA,
        )
        best = _best_documents(order(rows, s), docs, FEEDBACK_DOCS)
        weight = FEEDBACK_WEIGHT if reads[n].feedback else 0.0
        moved[n] = feedback_query(qvecs[n], vecs[best], weight)
        first.append(Candidates(rows, docs, vecs))
    out = []
    for n, h in enumerate(hits):
        more, more_vecs, floor = _moved_best(pool[n], first[n], moved[n], vectors, depth)
        rows, docs, vecs = first[n].extended(more, more_vecs, kw)
        evidence = h.evidence(rows, docs)
        dp = dense_part(row_dots(vecs, moved[n]), floor)
        kp = keyword_part(evidence, h.full_match)
        w = dense_weight(dp, kp, reads[n])
        s = blend(dp, kp, w)
        pos = order(rows, s)
        cos = row_dots(vecs, qvecs[n])[pos]
        out.append(Ranked(rows[pos], s[pos], cos, evidence[pos], dp[pos], kp[pos], None, w))
    return out


class Candidates(NamedTuple):
    """One query's candidate rows (ascending), their document keys and their vectors."""

    rows: np.ndarray
    docs: np.ndarray
    vecs: np.ndarray

    def extended(self, more: np.ndarray, vecs: np.ndarray, kw: SegmentedKeyword) -> Candidates:
        """These candidates and the ``more`` rows (none of them among these) with their
        ``vecs``, still ascending."""
        if not len(more):
            return self
        rows = np.concatenate([self.rows, more])
        pos = np.argsort(rows, kind="stable")
        docs = np.concatenate([self.docs, kw.doc_of(more)])
        return Candidates(rows[pos], docs[pos], np.concatenate([self.vecs, vecs])[pos])


def _read(rows: np.ndarray, pool: Pooled, vectors: SegmentedVectors) -> np.ndarray:
    """The vectors of ``rows``: the pool's where it brought them, the others read."""
    if pool.vecs is None or not len(pool.rows):
        return np.asarray(vectors[rows], np.float32)
    at, known = located(pool.rows, rows, np.argsort(pool.rows, kind="stable"))
    out = np.empty((len(rows), pool.vecs.shape[1]), np.float32)
    out[known] = pool.vecs[at[known]]
    if not known.all():
        out[~known] = vectors[rows[~known]]
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
    moved query's background, :func:`_floor`). Only pool rows ``first`` lacks are read,
    and none when the pool brought its vectors."""
    pool = pooled.rows
    at, known = located(first.rows, pool)
    if pooled.vecs is not None:
        vecs = pooled.vecs
    else:
        vecs = np.empty((len(pool), moved.shape[0]), np.float32)
        vecs[known] = first.vecs[at[known]]
        vecs[~known] = np.asarray(vectors[pool[~known]], np.float32)
    to_moved = row_dots(vecs, moved)
    # the first ``depth`` of order(pool, to_moved), picked by a partition first
    best = first_positions(to_moved[None], pool[None], min(depth, len(pool)))[0]
    floor = float(to_moved[best].min()) if len(best) else 0.0
    new = best[~known[best]]
    return pool[new], vecs[new], floor


def _floor(cosines: np.ndarray) -> float:
    """The query's background similarity: the weakest cosine of its dense candidates."""
    return float(cosines.min()) if len(cosines) else 0.0


def _best_documents(ranked: np.ndarray, docs: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` of the positions ``ranked`` from distinct documents (``docs``: the
    document of each position)."""
    _, first = np.unique(docs[ranked], return_index=True)
    return ranked[np.sort(first)[:m]]


def confidence(part: np.ndarray, top: int = CONFIDENCE_TOP) -> float:
    """How far a list's best score stands above its best ``top`` on average, as a fraction
    of the best, in [0, 1); 0 for a list with nothing above 0."""
    v = np.asarray(part, np.float64)
    if len(v) == 0:
        return 0.0
    best = np.sort(v)[::-1][:top]
    return float((best[0] - best.mean()) / best[0]) if best[0] > 0 else 0.0


def keyword_part(bm25: np.ndarray, full_match: float) -> np.ndarray:
    """BM25 as a fraction of its ceiling ``K1_PLUS_1 * full_match`` (``full_match``: the sum
    of the query terms' idf), in [0, 1]; 0 everywhere when no query term is in the index."""
    b = np.nan_to_num(np.asarray(bm25, np.float64), nan=0.0)
    if full_match <= 0:
        return np.zeros_like(b)
    return np.clip(b / (K1_PLUS_1 * full_match), 0.0, 1.0)


# ---- the inputs --------------------------------------------------------------------------


class FakeKeyword:
    """``doc_of`` as the hybrid needs it: ``per_doc`` consecutive rows a document."""

    def __init__(self, per_doc: int) -> None:
        self.per_doc = per_doc

    def doc_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows, np.int64) // self.per_doc


def _vectors(rng: np.random.Generator, n: int, dim: int, blocks: int) -> SegmentedVectors:
    """Unit vectors, some rows repeated (tied cosines), split into ``blocks`` blocks."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    copies = rng.integers(0, n, size=n // 4)
    v[copies] = v[rng.integers(0, n, size=len(copies))]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cuts = sorted(rng.choice(np.arange(1, n), size=blocks - 1, replace=False)) if blocks > 1 else []
    return SegmentedVectors(dim, np.split(v, cuts))


def _hits(rng: np.random.Generator, n: int, per_doc: int, count: int) -> KeywordHits:
    """Keyword hits on ``count`` random rows, evidence on a coarse grid (ties)."""
    rows = np.sort(rng.choice(n, size=min(count, n), replace=False)).astype(np.int64)
    docs = unique_sorted(rows // per_doc)
    chunk_scores = rng.integers(1, 6, size=len(rows)).astype(np.float64) / 2
    doc_scores = rng.integers(0, 8, size=len(docs)).astype(np.float64) / 2
    return KeywordHits(
        rows, Scored(rows, chunk_scores), Scored(docs, doc_scores), docs,
        full_match=float(rng.choice([0.0, 2.5, 6.0])), terms=("a",),
    )  # fmt: skip


def _case(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    dim = int(rng.choice([5, 16, 37, 384]))
    n = int(rng.integers(1, 3000))
    per_doc = int(rng.integers(1, 6))
    vectors = _vectors(rng, n, dim, int(rng.integers(1, 4)))
    n_queries = int(rng.integers(1, 4))
    qvecs = np.asarray(vectors[rng.integers(0, n, size=n_queries)], np.float32)
    qvecs += rng.standard_normal(qvecs.shape).astype(np.float32) * 0.3
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    depth = int(rng.choice([1, 3, 10, 200]))
    with_vecs = bool(rng.integers(0, 2))
    pool, hits, reads = [], [], []
    for q in qvecs:
        size = int(rng.integers(0, min(n, 1100) + 1))
        rows = rng.choice(n, size=size, replace=False).astype(np.int64)
        cos = row_dots(np.asarray(vectors[rows]), q)
        pos = np.lexsort((rows, -cos))
        vecs = np.asarray(vectors[rows[pos]]) if with_vecs else None
        pool.append(Pooled(rows[pos], cos[pos], vecs))
        hits.append(_hits(rng, n, per_doc, int(rng.integers(0, 900))))
        reads.append(Reading(float(rng.choice([0.0, 1.0])), 0.0, feedback=bool(rng.integers(0, 2))))
    return qvecs, pool, hits, reads, FakeKeyword(per_doc), vectors, depth


def _same(a: Ranked, b: Ranked) -> None:
    for name in ("rows", "scores", "cosine", "bm25", "dense_part", "keyword_part"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=True), name
    assert a.dense_weight == b.dense_weight


@pytest.mark.parametrize("seed", range(60))
def test_hybrid_same_as_before(seed: int) -> None:
    args = _case(seed)
    new = retrieve._hybrid(*args)
    old = _hybrid(*args)
    assert len(new) == len(old) == len(args[0])
    for a, b in zip(new, old, strict=True):
        _same(a, b)


@pytest.mark.parametrize("seed", range(40))
def test_best_documents_same_as_before(seed: int) -> None:
    """Few documents (the whole list is needed), many, ties in the scores."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 500))
    rows = np.sort(rng.choice(10_000, size=n, replace=False)).astype(np.int64)
    docs = rows // int(rng.choice([1, 7, 200, 5000]))
    scores = rng.integers(0, 4, size=n) / 3.0
    for m in (1, 3, 5):
        new = retrieve._best_documents(rows, scores, docs, m)
        assert np.array_equal(new, _best_documents(order(rows, scores), docs, m))


@pytest.mark.parametrize("seed", range(40))
def test_confidence_same_as_before(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 5, size=int(rng.integers(0, 40))) / 4.0  # ties, zeros
    if seed % 5 == 0 and len(v):
        v[rng.integers(0, len(v))] = np.nan
    if seed % 7 == 0:
        v = -v
    for top in (1, 3, CONFIDENCE_TOP, 50):
        assert fuse.confidence(v, top) == confidence(v, top) or (
            np.isnan(fuse.confidence(v, top)) and np.isnan(confidence(v, top))
        )


def test_vector_rows_same_as_indexing() -> None:
    """The gather the vectors are read with gives what indexing the blocks gives."""
    rng = np.random.default_rng(3)
    vectors = _vectors(rng, 101, 7, 3)
    whole = np.concatenate(vectors.blocks)
    rows = rng.integers(0, 101, size=250)
    assert np.array_equal(vectors[rows], whole[rows])
    assert np.array_equal(vectors[np.zeros(0, np.int64)], whole[:0])
    assert np.array_equal(vectors[7], whole[7])
    one = SegmentedVectors(7, [whole])
    assert np.array_equal(one[rows], whole[rows])


@pytest.mark.parametrize("seed", range(20))
def test_keyword_part_same_as_before(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 9, size=int(rng.integers(0, 30))) / 2.0
    if seed % 2 and len(b):
        b[rng.integers(0, len(b), size=3)] = rng.choice([np.nan, np.inf, -np.inf], size=3)
    for full in (0.0, -1.0, 1.5, 4.0):
        new, old = fuse.keyword_part(b, full), keyword_part(b, full)
        assert new.dtype == old.dtype and np.array_equal(new, old)
    assert np.array_equal(fuse.keyword_part([1.0, 2.0], 2.0), keyword_part([1.0, 2.0], 2.0))
