"""The query-adaptive hybrid blend: fixed score arrays by hand, and an end-to-end ranking on
a tiny corpus that pins the defaults' behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.search.fuse import ALPHA, SHRINK, blend, confidence, dense_weight

from .conftest import FakeEmbedder


def test_confidence_by_hand() -> None:
    # best 1.0, mean of the best ten (1.0 + nine 0.5) = 0.55 -> (1.0 - 0.55) / 1.0
    assert confidence(np.array([0.5] * 12 + [1.0])) == pytest.approx(0.45)
    assert confidence(np.array([0.3, 0.3, 0.3])) == 0.0  # everything alike: no say
    assert confidence(np.zeros(5)) == 0.0
    assert confidence(np.zeros(0)) == 0.0
    # fewer candidates than CONFIDENCE_TOP: the mean of those there are
    assert confidence(np.array([0.8, 0.2])) == pytest.approx((0.8 - 0.5) / 0.8)


def test_dense_weight_follows_the_confident_list() -> None:
    flat = np.full(20, 0.4)
    peaked = np.r_[0.9, np.full(19, 0.1)]
    # A flat dense list (an English model on Chinese text) leaves the keyword list in charge.
    assert dense_weight(flat, peaked) == pytest.approx((1 - SHRINK) * ALPHA)
    # A flat keyword list (stopwords) hands the dense list more than its prior.
    assert dense_weight(peaked, flat) == pytest.approx((1 - SHRINK) * ALPHA + SHRINK)
    # Equally confident lists: half-way between the prior and one half.
    assert dense_weight(peaked, peaked) == pytest.approx((1 - SHRINK) * ALPHA + SHRINK * 0.5)
    # Neither list confident: the prior.
    assert dense_weight(flat, flat) == ALPHA


def test_blend_by_hand() -> None:
    d = np.array([0.9, 0.1, 0.1, 0.1])
    k = np.array([0.2, 0.8, 0.1, 0.0])
    cd = (0.9 - 0.3) / 0.9
    ck = (0.8 - 0.275) / 0.8
    w = (1 - SHRINK) * ALPHA + SHRINK * cd / (cd + ck)
    assert blend(d, k) == pytest.approx(w * d + (1 - w) * k)
    assert blend(d, k, alpha=0.25) == pytest.approx(0.25 * d + 0.75 * k)
    assert (1 - SHRINK) * ALPHA <= w <= (1 - SHRINK) * ALPHA + SHRINK


DOCS = [
    "Solar panels convert sunlight into electricity for the home.",
    "Wind turbines and solar farms supply most new power capacity.",
    "The recipe uses butter, flour and a pinch of salt.",
    "Electricity prices rose as gas supplies fell last winter.",
    "太阳能电池板把阳光转换成电力。",
    "风力发电机和太阳能电站提供新的电力。",
]


# Recorded at the defaults (ALPHA 0.35, SHRINK 0.25); the fixed 0.35 blend (SHRINK 0) gives
# 0.5734 / 0.3553 / 0.3010, 0.6509 / 0.1767 / 0.1106 and 0.3548 / 0.3288 / 0.1601.
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("solar electricity", [("text-0", 0.5754), ("text-3", 0.3614), ("text-1", 0.3047)]),
        ("butter salt", [("text-2", 0.6585), ("text-1", 0.1886), ("text-0", 0.1180)]),
        ("太阳能 电力", [("text-4", 0.3514), ("text-5", 0.3265), ("text-1", 0.1725)]),
    ],
)
def test_hybrid_ranking_pinned(query: str, expected: list[tuple[str, float]]) -> None:
    index = SemanticIndex.from_texts(DOCS, embedder=FakeEmbedder())
    hits = index.search(query, k=3, mode="hybrid")
    assert [h.doc_id for h in hits] == [d for d, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=2e-4)
