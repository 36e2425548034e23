"""Scores that mean the same from one query to the next, and their hybrid blend.

* dense part: how far the chunk's cosine stands above the query's background (the cosine
  of the ``CANDIDATES``-th best chunk), as a fraction of the way to a perfect 1.0. A query
  that matches nothing in particular ("the and of") stays near 0 however its list is cut.
* keyword part: the BM25 evidence as a fraction of the most BM25 can give the query's
  words (each word's idf x (k1 + 1), reached as a word repeats without end). It reads the
  same whatever the query's length or the words' rarity; one mention of every query word
  in a document of average length gives 1 / (k1 + 1) = 0.45.
* hybrid: ``w * dense + (1 - w) * keyword``, in [0, 1], where the dense weight ``w`` is
  set per query (:func:`dense_weight`): ``ALPHA`` moved by ``SHRINK`` towards the dense
  list's share of the two lists' confidence. A list is confident when its best candidate
  stands clear of the next ones; a list that rates everything alike (an English model
  reading Chinese, a keyword list of stopwords) gets little say. Chosen by leaving one of
  nine collections out at a time (docs/ranking.md).

Pure functions on arrays, so each can be checked against a hand computation.
"""

from __future__ import annotations

import numpy as np

#: Prior weight of the dense part in the hybrid score and how far each query's lists move
#: it (:func:`dense_weight`); chosen by leaving one of nine collections out at a time.
ALPHA = 0.35
SHRINK = 0.25
#: Candidates whose scores measure a list's confidence (:func:`confidence`).
CONFIDENCE_TOP = 10
#: FTS5's BM25 k1 + 1: a word's score approaches idf x this as it repeats.
K1_PLUS_1 = 2.2
#: Pseudo-relevance feedback: the query vector moves towards the mean vector of the first
#: pass's best FEEDBACK_DOCS hits (distinct documents) with this weight (README).
FEEDBACK_WEIGHT = 1.0
FEEDBACK_DOCS = 3
#: The first pass that picks those documents blends with the fixed prior weight: the
#: per-query weight was measured on the final blend only (docs/ranking.md).
FEEDBACK_ALPHA = ALPHA


def dense_part(cosine: np.ndarray, floor: float) -> np.ndarray:
    """Cosine above the background ``floor``, as a fraction of the way to 1, in [0, 1]."""
    span = max(1.0 - floor, 1e-6)
    return np.clip((np.asarray(cosine, np.float64) - floor) / span, 0.0, 1.0)


def keyword_part(bm25: np.ndarray, full_match: float) -> np.ndarray:
    """BM25 as a fraction of its ceiling ``K1_PLUS_1 * full_match`` (``full_match``: the sum
    of the query terms' idf), in [0, 1]; 0 everywhere when no query term is in the index."""
    b = np.nan_to_num(np.asarray(bm25, np.float64), nan=0.0)
    if full_match <= 0:
        return np.zeros_like(b)
    return np.clip(b / (K1_PLUS_1 * full_match), 0.0, 1.0)


def confidence(part: np.ndarray, top: int = CONFIDENCE_TOP) -> float:
    """How far a list's best score stands above its best ``top`` on average, as a fraction
    of the best, in [0, 1); 0 for a list with nothing above 0."""
    v = np.asarray(part, np.float64)
    if len(v) == 0:
        return 0.0
    best = np.sort(v)[::-1][:top]
    return float((best[0] - best.mean()) / best[0]) if best[0] > 0 else 0.0


def dense_weight(dense: np.ndarray, keyword: np.ndarray) -> float:
    """One query's dense weight: ``ALPHA`` moved ``SHRINK`` of the way towards the dense
    list's share of the two confidences (``ALPHA`` when neither list is confident)."""
    cd, ck = confidence(dense), confidence(keyword)
    if cd + ck <= 0:
        return ALPHA
    return (1.0 - SHRINK) * ALPHA + SHRINK * cd / (cd + ck)


def blend(dense: np.ndarray, keyword: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """The hybrid score of each candidate from its two parts (each in [0, 1]), with the
    query's own dense weight (:func:`dense_weight`) unless ``alpha`` fixes it."""
    d = np.asarray(dense, np.float64)
    k = np.asarray(keyword, np.float64)
    w = dense_weight(d, k) if alpha is None else alpha
    return w * d + (1.0 - w) * k


def order(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions sorting candidates best first, ties to the smaller row."""
    return np.lexsort((rows, -scores))


def feedback_query(query: np.ndarray, feedback: np.ndarray, weight: float) -> np.ndarray:
    """Rocchio: the unit vector of ``query + weight * mean(feedback)``."""
    if len(feedback) == 0 or weight == 0:
        return query
    moved = np.asarray(query, np.float64) + weight * np.asarray(feedback, np.float64).mean(0)
    norm = np.linalg.norm(moved)
    return (moved / norm).astype(np.float32) if norm > 0 else query
