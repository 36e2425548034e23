from __future__ import annotations

import logging

import numpy as np
import pytest

from semsearch import SemanticIndex, UsageError
from semsearch.search.fuse import blend, dense_part, feedback_query, keyword_part, order
from semsearch.search.shape import cap_per_source, mmr

from .conftest import FakeEmbedder


def test_parts_and_blend_match_hand_computation() -> None:
    # background 0.2: cosine 0.6 is half way from 0.2 to 1
    assert np.allclose(dense_part(np.array([0.6, 0.2, 0.1, 1.0]), 0.2), [0.5, 0.0, 0.0, 1.0])
    # BM25 3 over its ceiling 2.2 x 4 (idf sum 4); at most 1; no known term -> 0
    assert np.allclose(keyword_part(np.array([3.0, 0.0, 99.0, np.nan]), 4.0), [3 / 8.8, 0, 1, 0])
    assert np.allclose(keyword_part(np.array([3.0]), 0.0), [0.0])
    assert np.allclose(blend(np.array([0.5, 1.0]), np.array([0.75, 0.0]), alpha=0.4),
                       [0.4 * 0.5 + 0.6 * 0.75, 0.4])  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_order_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.permutation(50)[:30]
    scores = rng.integers(0, 5, 30).astype(np.float64)  # many ties
    got = rows[order(rows, scores)].tolist()
    assert got == sorted(rows.tolist(), key=lambda r: (-scores[rows.tolist().index(r)], r))


def test_feedback_query_moves_towards_the_feedback_and_stays_unit() -> None:
    q = np.array([1.0, 0.0, 0.0], np.float32)
    fb = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    moved = feedback_query(q, fb, 1.0)
    assert np.isclose(np.linalg.norm(moved), 1.0)
    assert np.allclose(moved, [2**-0.5, 2**-0.5, 0], atol=1e-6)
    assert feedback_query(q, fb[:0], 1.0) is q


def test_cap_per_source_keeps_order() -> None:
    keep = cap_per_source(np.arange(6), ["a", "a", "b", "a", "b", "c"], 1)
    assert keep.tolist() == [0, 2, 5]


def test_mmr_trades_relevance_for_novelty() -> None:
    v = np.array([[1, 0], [0.9, 0.436], [0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rel = np.array([0.9, 0.89, 0.5])
    assert mmr(rel, v, 2, lambda_=0.3).tolist() == [0, 2]  # novelty wins
    assert mmr(rel, v, 2, lambda_=1.0).tolist() == [0, 1]  # pure relevance


def test_mmr_puts_near_duplicates_last() -> None:
    v = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert mmr(np.array([0.9, 0.89, 0.5]), v, 3, lambda_=1.0).tolist() == [0, 2, 1]


TEXTS = [
    "Quarterly trade volumes fell sharply in the spring.",
    "Trade trade trade: the word repeated in one short note.",
    "Fuel and energy exports declined this year.",
    "A recipe for apple pie with cinnamon.",
]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_every_mode_ranks_and_filters(mode: str) -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    hits = index.search("trade volumes", k=3, mode=mode)  # type: ignore[arg-type]
    assert hits and hits[0].doc_id in {"text-0", "text-1"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only = index.search("trade", k=3, mode=mode, where={"source": "text-2"})  # type: ignore[arg-type]
    assert {h.doc_id for h in only} <= {"text-2"}


def test_keyword_mode_finds_exact_words_dense_misses() -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    assert index.search("cinnamon", k=1, mode="keyword")[0].doc_id == "text-3"
    assert index.search("zzzz unknown", k=3, mode="keyword") == []


def test_min_score_per_source_and_bad_mode() -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    assert index.search("trade", k=4, mode="dense", min_score=1.01) == []
    hits = index.search("trade", k=4, mode="hybrid", per_source=1)
    assert len({h.source for h in hits}) == len(hits)
    with pytest.raises(UsageError, match="mode"):
        index.search("trade", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"per.source"):
        index.search("trade", per_source=0)


def test_diverse_returns_k_distinct_hits() -> None:
    texts = ["trade fell"] * 3 + ["trade in energy fell", "apple pie"]
    index = SemanticIndex.from_texts(texts, embedder=FakeEmbedder())
    plain = index.search("trade fell", k=2, mode="dense", collapse=False)
    diverse = index.search("trade fell", k=2, mode="dense", diverse=True, collapse=False)
    assert [h.text for h in plain] == ["trade fell", "trade fell"]
    assert diverse[0].text == "trade fell" and diverse[1].text != "trade fell"


def test_long_query_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    emb = FakeEmbedder()
    emb.max_tokens = 10
    index = SemanticIndex.from_texts(TEXTS, embedder=emb)
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        index.search("word " * 50)
        index.search("word " * 50)
    warnings = [r for r in caplog.records if "longer than the model" in r.getMessage()]
    assert len(warnings) == 1


def test_best_sentence_is_the_matching_one() -> None:
    index = SemanticIndex.from_texts(
        ["Apples are red. Trade volumes fell sharply. Pears are green."], embedder=FakeEmbedder()
    )
    hit = index.search("trade volumes fell", k=1)[0]
    ((a, b),) = index.best_sentences("trade volumes fell", [hit])
    assert hit.text[a:b] == "Trade volumes fell sharply."
