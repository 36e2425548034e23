"""Scores mean the same from one query to the next, and carry their parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.cli import main
from semsearch.search.fuse import RULE
from semsearch.store.tokenize import terms

from .conftest import SEEDS, FakeEmbedder

DOCS = [
    "Trade volumes fell sharply after the new tariffs on steel.",
    "The tariffs on steel and aluminium were raised again in spring.",
    "Apple pie needs cinnamon, butter and a hot oven.",
    "Steel mills reported record output despite the tariffs.",
    "Butter prices rose during the winter.",
]


def _oracle_bm25(docs: list[str], query: str) -> tuple[list[float], float]:
    """FTS5's BM25 (k1 1.2, b 0.75) by hand over the same terms, and a full match's score."""
    toks = [terms(d) for d in docs]
    avg = sum(map(len, toks)) / len(toks)
    q = terms(query)
    idf = {}
    for t in set(q):
        n = sum(t in d for d in toks)
        idf[t] = max(math.log((len(toks) - n + 0.5) / (n + 0.5)), 1e-6) if n else 0.0
    scores = []
    for d in toks:
        s = 0.0
        for t in q:
            tf = d.count(t)
            if tf:
                s += idf[t] * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(d) / avg))
        scores.append(s)
    return scores, sum(idf[t] for t in q if idf[t] > 0)


@pytest.mark.parametrize("query", ["steel tariffs", "butter", "tariffs tariffs oven"])
def test_keyword_score_is_bm25_over_its_ceiling(query: str) -> None:
    index = SemanticIndex.from_texts(DOCS, embedder=FakeEmbedder())
    expect, full = _oracle_bm25(DOCS, query)
    hits = index.search(query, k=5, mode="keyword")
    assert hits
    for h in hits:
        n = int(h.doc_id.split("-")[1])
        # One chunk per document: chunk and document BM25 (and idf) are the same.
        assert h.bm25 == pytest.approx(expect[n], rel=1e-4)
        assert h.keyword_score == pytest.approx(expect[n] / (2.2 * full), rel=1e-4)
        assert h.score == h.keyword_score
        assert h.dense_score is None and h.cosine is None
    matched = {int(h.doc_id.split("-")[1]) for h in hits}
    assert matched == {i for i, s in enumerate(expect) if s > 0}


def test_hybrid_hits_carry_both_parts_and_stay_in_range() -> None:
    index = SemanticIndex.from_texts(DOCS, embedder=FakeEmbedder())
    hits = index.search("steel tariffs", k=5, mode="hybrid")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert 0.0 <= h.score <= 1.0
        assert h.dense_score is not None and -1.0 <= h.dense_score <= 1.0
        assert h.keyword_score is not None and h.keyword_score >= 0.0
    # a hit with no query word in it has keyword part 0, so at most its dense weight
    pie = next(h for h in hits if h.doc_id == "text-2")
    assert pie.dense_weight is not None and pie.dense_weight <= RULE.alpha + 1e-9
    assert pie.keyword_score == 0.0 and pie.score <= pie.dense_weight + 1e-6


def test_a_lone_match_is_not_pinned_to_a_constant() -> None:
    # Min-max scaling gave any lone hit the same score; here the score follows the match.
    index = SemanticIndex.from_texts(DOCS, embedder=FakeEmbedder())
    strong = index.search("apple pie needs cinnamon butter oven", k=1, mode="hybrid")[0]
    weak = index.search("cinnamon", k=1, mode="hybrid")[0]
    assert strong.doc_id == weak.doc_id == "text-2"
    assert strong.score > weak.score + 0.05


@pytest.mark.slow
def test_stopwords_only_score_low_and_real_queries_high(
    real_embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    index = SemanticIndex(embedder=real_embedder, path=tmp_path_factory.mktemp("s") / "ix")
    index.add_paths([SEEDS])
    noise = index.search("the and of", k=1)[0].score
    real = index.search("trade decline between Belarus and Russia", k=1)[0].score
    unknown = index.search("xylophone quantum giraffe", k=1)[0].score
    assert max(noise, unknown) < 0.25 and real > 0.6  # min-max gave "the and of" 0.972


@pytest.mark.slow
def test_cli_json_carries_parts_and_help_says_what_min_score_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = tmp_path / "ix"
    assert main(["index", str(SEEDS), "--index", str(ix)]) == 0
    capsys.readouterr()
    assert main(["query", "trade decline", "--index", str(ix), "--json", "-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert all({"score", "dense_score", "keyword_score"} <= set(h) for h in hits)
    assert hits[0]["keyword_score"] > 0 and hits[0]["dense_score"] > 0
    cut = hits[1]["score"]
    assert (
        main(["query", "trade decline", "--index", str(ix), "--json", "--min-score", str(cut)]) == 0
    )
    kept = json.loads(capsys.readouterr().out)
    assert kept and min(h["score"] for h in kept) >= cut and len(kept) <= 2
    assert main(["query", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "cosine" in text and "BM25" in text and "background" in text
