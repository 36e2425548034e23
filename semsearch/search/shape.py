"""Shaping a ranking into the page a person reads: per-source caps and diversity (MMR)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cap_per_source(ids: np.ndarray, sources: Sequence[str], cap: int) -> np.ndarray:
    """Positions of ``ids`` to keep so no source has more than ``cap`` (order preserved)."""
    seen: dict[str, int] = {}
    keep = []
    for pos, source in enumerate(sources):
        if seen.get(source, 0) < cap:
            seen[source] = seen.get(source, 0) + 1
            keep.append(pos)
    return np.asarray(keep, dtype=np.int64)


#: Cosine above which two chunks count as the same text for ``mmr``.
NEAR_DUPLICATE = 0.98


#: ``diverse`` re-orders only among hits scoring at least this fraction of the plain top
#: k's last score (duplicates aside; measured below it when that score is negative):
#: diversity never pulls in a hit that a plain query would rank as irrelevant.
RELEVANCE_FLOOR = 0.8


def mmr_pool(scores: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Positions (of ``scores``, best first) that MMR may choose among: every candidate
    within :data:`RELEVANCE_FLOOR` of the ``k``-th score of the plain ranking with
    near-duplicates skipped (a plain page of k copies of one text sets no bar)."""
    vecs = np.asarray(vectors, dtype=np.float64)
    kept: list[int] = []
    for i in range(len(scores)):
        if kept and float((vecs[kept] @ vecs[i]).max()) >= NEAR_DUPLICATE:
            continue
        kept.append(i)
        if len(kept) == k:
            break
    if not kept:
        return np.zeros(0, dtype=np.int64)
    kth = float(scores[kept[-1]])
    floor = kth - (1.0 - RELEVANCE_FLOOR) * abs(kth)
    return np.flatnonzero(np.asarray(scores) >= floor)


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.5) -> np.ndarray:
    """Maximal marginal relevance: greedily pick the candidate with the best
    ``lambda * relevance - (1 - lambda) * max similarity to those already picked``.

    ``relevance`` is rescaled to [0, 1] first so it is comparable with cosine similarity.
    Near-duplicates of a picked chunk come last whatever their relevance: repeating a
    text is never diversity. Returns positions into the candidate list, in pick order.

    Similarities are computed one picked row at a time (O(n) memory, not an n x n matrix),
    so a large ``k`` costs time in proportion, never a quadratic allocation.
    """
    n = len(relevance)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    vecs = np.asarray(vectors, dtype=np.float64)
    picked: list[int] = []
    closest = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = lambda_ * rel - (1 - lambda_) * penalty
        gain = np.where(closest >= NEAR_DUPLICATE, gain - 10.0, gain)
        gain = np.where(available, gain, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, vecs @ vecs[best])
    return np.asarray(picked, dtype=np.int64)
