"""Turning candidate lists into the page a person reads: fusion, per-source caps, MMR.

All functions are pure and work on arrays of row ids and scores, so each can be tested
against a brute-force version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
#: Common English words dropped from keyword queries: they match nearly every chunk.
STOPWORDS = frozenset(
    (
        "a an and are as at be but by for from has have if in into is it its no not of on or "
        "such that the their then there these they this to was were will with what which who "
        "whom why how when where do does did can could should would may might"
    ).split()
)


def keyword_query(text: str) -> str | None:
    """An FTS5 query matching any of the words of ``text`` (each quoted, so user text can
    never be read as FTS syntax). None when nothing searchable is left."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    if not words:
        return None
    unique = list(dict.fromkeys(words))
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


#: Weight of the dense scores in the hybrid blend (keyword gets 1 - this). Measured on
#: SciFact: the optimum is flat between 0.5 and 0.6, best at 0.6 (README, "Ranking quality").
BLEND_ALPHA = 0.6


def blend(
    dense: tuple[np.ndarray, np.ndarray],
    keyword: tuple[np.ndarray, np.ndarray],
    alpha: float = BLEND_ALPHA,
) -> tuple[np.ndarray, np.ndarray]:
    """Hybrid score: ``alpha * minmax(dense) + (1 - alpha) * minmax(keyword)`` per candidate.

    Each list is (ids, scores). A candidate missing from a list scores 0 there; a list whose
    scores are all equal counts as all 1. Scores stay in [0, 1], so they can be shown and
    thresholded. Returns ids and scores best first, ties to the smaller id.
    """
    fused: dict[int, float] = {}
    for (ids, scores), weight in ((dense, alpha), (keyword, 1.0 - alpha)):
        if len(ids) == 0:
            continue
        s = np.asarray(scores, dtype=np.float64)
        span = s.max() - s.min()
        norm = (s - s.min()) / span if span > 0 else np.ones_like(s)
        for i, v in zip(ids.tolist(), norm.tolist(), strict=True):
            fused[i] = fused.get(i, 0.0) + weight * v
    if not fused:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    out_ids = np.fromiter(fused, dtype=np.int64, count=len(fused))
    out_scores = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
    order = np.lexsort((out_ids, -out_scores))
    return out_ids[order], out_scores[order].astype(np.float32)


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


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.5) -> np.ndarray:
    """Maximal marginal relevance: greedily pick the candidate with the best
    ``lambda * relevance - (1 - lambda) * max similarity to those already picked``.

    ``relevance`` is rescaled to [0, 1] first so it is comparable with cosine similarity.
    Near-duplicates of a picked chunk come last whatever their relevance: repeating a
    text is never diversity. Returns positions into the candidate list, in pick order.
    """
    n = len(relevance)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
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
        closest = np.maximum(closest, sims[best])
    return np.asarray(picked, dtype=np.int64)
