"""The query-adaptive hybrid blend: fixed score arrays by hand, and an end-to-end ranking on
a tiny corpus that pins the defaults' behaviour."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.search.fuse import (
    MODEL_RULES,
    RULE,
    QuerySignals,
    Reading,
    WeightRule,
    blend,
    confidence,
    dense_weight,
    foreign_share,
    query_signals,
    readings,
    split_share,
)

from .conftest import FakeEmbedder


def test_confidence_by_hand() -> None:
    # best 1.0, mean of the best ten (1.0 + nine 0.5) = 0.55 -> (1.0 - 0.55) / 1.0
    assert confidence(np.array([0.5] * 12 + [1.0])) == pytest.approx(0.45)
    assert confidence(np.array([0.3, 0.3, 0.3])) == 0.0  # everything alike: no say
    assert confidence(np.zeros(5)) == 0.0
    assert confidence(np.zeros(0)) == 0.0
    # fewer candidates than CONFIDENCE_TOP: the mean of those there are
    assert confidence(np.array([0.8, 0.2])) == pytest.approx((0.8 - 0.5) / 0.8)


def test_the_default_rule_is_pinned() -> None:
    # Chosen by leaving one of nine collections out (docs/ranking.md): a fixed dense weight
    # of 0.45, halved for a query in another language, and halved again as far as the
    # model's vocabulary splits it into single characters.
    assert WeightRule(alpha=0.45, fit=0.5, vocab=0.5) == RULE
    flat, peaked = np.full(20, 0.4), np.r_[0.9, np.full(19, 0.1)]
    for d, k in [(flat, peaked), (peaked, flat), (peaked, peaked), (flat, flat)]:
        assert dense_weight(d, k) == pytest.approx(0.45)
    assert dense_weight(flat, peaked, Reading(1.0, 0.0)) == pytest.approx(0.225)
    assert dense_weight(flat, peaked, Reading(1.0, 1.0)) == pytest.approx(0.1125)
    assert dense_weight(flat, peaked, Reading(0.0, 0.5)) == pytest.approx(0.3375)


@pytest.mark.parametrize(
    ("rule", "signals", "expected"),
    [
        # alpha moved half-way to the confidence share 0.8, a quarter to the strength share 0.2
        (WeightRule(0.4, conf=0.5, strength=0.25), QuerySignals(0.8, 0.2, 0.0, 0.0), 0.55),
        # then cut by fit x foreign (1 - 0.5 x 1) and vocab x split (1 - 1 x 0.5)
        (WeightRule(0.4, 0.5, 0.25, fit=0.5, vocab=1.0), QuerySignals(0.8, 0.2, 1.0, 0.5), 0.1375),
        # clipped to [0, 1]
        (WeightRule(0.9, strength=1.5), QuerySignals(0.5, 1.0, 0.0, 0.0), 1.0),
        (WeightRule(0.2, conf=2.0), QuerySignals(0.0, 0.5, 0.0, 0.0), 0.0),
    ],
)
def test_weight_rule_by_hand(rule: WeightRule, signals: QuerySignals, expected: float) -> None:
    assert float(rule.weight(signals)) == pytest.approx(expected)
    # many queries at once: the same weights, row by row
    many = QuerySignals(*(np.array([v, v]) for v in signals))
    assert rule.weight(many) == pytest.approx([expected, expected])


def test_query_signals_by_hand() -> None:
    d = np.array([0.9, 0.3, 0.3, 0.3])  # confidence (0.9 - 0.45) / 0.9 = 0.5
    k = np.array([0.0, 0.6, 0.2, 0.2])  # confidence (0.6 - 0.25) / 0.6 = 7/12
    s = query_signals(d, k, Reading(0.25, 0.75))
    assert s.conf_share == pytest.approx(0.5 / (0.5 + 7 / 12))
    assert s.strength_share == pytest.approx(0.9 / 1.5)
    assert (s.foreign, s.split) == (0.25, 0.75)
    assert query_signals(np.zeros(3), np.zeros(3)) == QuerySignals(0.5, 0.5, 0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("how do solar panels work", 0.0),
        ("what is the capital of France", 0.0),
        ("Wer war der erste Präsident der Vereinigten Staaten?", 1.0),  # German words
        ("¿Cuál es la capital de Francia?", 1.0),  # Spanish
        ("黑豹队的防守丢了多少分？", 1.0),
        ("Python 列表", 2 / 8),  # letters outside the Latin script, as a share
        ("Привет мир", 1.0),
        ("", 0.0),
        ("42 + 7", 0.0),
    ],
)
def test_foreign_share(text: str, share: float) -> None:
    assert foreign_share(text) == pytest.approx(share)


def test_split_share_by_hand() -> None:
    assert [split_share(c) for c in (5.0, 3.0, 2.0, 1.5, 1.0, 0.5)] == pytest.approx(
        [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]
    )


class CharModel(FakeEmbedder):
    """A fake named as semsearch's English model, whose vocabulary knows English words
    whole and splits anything else into single characters."""

    name = "all-MiniLM-L6-v2"

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        out = []
        for t in texts:
            spans = []
            for m in re.finditer(r"\w+", t):
                if m.group().isascii():
                    spans.append(m.span())
                else:
                    spans.extend((i, i + 1) for i in range(m.start(), m.end()))
            out.append(spans)
        return out


def test_readings_only_for_english_only_models() -> None:
    texts = ["solar electricity", "太阳能 电力", "Wer war der erste Kaiser"]
    english = readings(CharModel(), texts)
    assert english[0] == Reading(0.0, 0.0)
    assert english[1] == Reading(1.0, 1.0)  # foreign letters, one character per token
    # German words of 3-5 letters, each one token: foreign, but read whole
    assert english[2] == Reading(1.0, 0.0)
    # a model semsearch does not know: nothing assumed about what it reads
    assert readings(FakeEmbedder(), texts) == [Reading(0.0, 0.0)] * 3


def test_the_static_model_has_its_own_rule() -> None:
    # Its dense side is far weaker than the transformer's: a much smaller weight, chosen
    # leave-one-collection-out on the static model's own runs (docs/ranking.md).
    static = CharModel()
    static.name = "static"
    reads = readings(static, ["solar electricity", "太阳能 电力"])
    assert [r.rule for r in reads] == [MODEL_RULES["static"]] * 2
    assert MODEL_RULES["static"] == WeightRule(alpha=0.05)
    flat, peaked = np.full(20, 0.4), np.r_[0.9, np.full(19, 0.1)]
    assert dense_weight(peaked, flat, reads[0]) == pytest.approx(0.05)
    assert dense_weight(peaked, flat, reads[0]) < dense_weight(peaked, flat)


def test_blend_by_hand() -> None:
    d = np.array([0.9, 0.3, 0.5, 0.0])
    k = np.array([0.2, 0.8, 0.1, 0.0])
    w = RULE.alpha  # a query the model reads, under a rule with no list-driven term
    assert blend(d, k) == pytest.approx(w * d + (1 - w) * k)
    assert blend(d, k, alpha=0.25) == pytest.approx(0.25 * d + 0.75 * k)


DOCS = [
    "Solar panels convert sunlight into electricity for the home.",
    "Wind turbines and solar farms supply most new power capacity.",
    "The recipe uses butter, flour and a pinch of salt.",
    "Electricity prices rose as gas supplies fell last winter.",
    "太阳能电池板把阳光转换成电力。",
    "风力发电机和太阳能电站提供新的电力。",
]


# Recorded at the defaults (RULE: 0.45, foreign x 0.5, split x 0.5) with the English model's
# name, so the Chinese query's dense weight is 0.45 x 0.5 x 0.5. Before (0.35 moved a quarter
# towards the confidence share): 0.5754 / 0.3614 / 0.3047, 0.6585 / 0.1886 / 0.1180 and
# 0.3514 / 0.3265 / 0.1725.
@pytest.mark.parametrize(
    ("query", "weight", "expected"),
    [
        ("solar electricity", 0.45, [("text-0", 0.5835), ("text-3", 0.3869), ("text-1", 0.3201)]),
        ("butter salt", 0.45, [("text-2", 0.6832), ("text-1", 0.2272), ("text-0", 0.1422)]),
        ("太阳能 电力", 0.1125, [("text-4", 0.3843), ("text-5", 0.3489), ("text-1", 0.0515)]),
    ],
)
def test_hybrid_ranking_pinned(
    query: str, weight: float, expected: list[tuple[str, float]]
) -> None:
    index = SemanticIndex.from_texts(DOCS, embedder=CharModel())
    hits = index.search(query, k=3, mode="hybrid")
    assert [h.dense_weight for h in hits] == pytest.approx([weight] * 3)
    assert [h.doc_id for h in hits] == [d for d, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=2e-4)
