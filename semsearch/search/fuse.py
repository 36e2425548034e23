"""Fusing dense and keyword candidate lists into one ranking.

Pure functions on arrays of row ids and scores, each testable against a brute-force version.
"""

from __future__ import annotations

import numpy as np

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
