"""Scores are explainable (issue 20 item 5): every score is rebuilt from its 0-1 parts by
the documented formula, and keyword scores discriminate instead of pinning at 1.000."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.search.fuse import RULE

from .conftest import FakeEmbedder

#: Few long documents of many chunks: chunk-level idf is far above document-level idf,
#: which made the old keyword part pass its ceiling and clip at 1.0 for every hit.
WORDS = "river lake ocean harbour canal delta marsh stream brook lagoon".split()


def _corpus() -> list[str]:
    docs = []
    for d in range(6):
        paras = []
        for p in range(30):
            w1, w2 = WORDS[(d + p) % 10], WORDS[(d * 3 + p) % 10]
            paras.append(f"Paragraph {p} of report {d}: the {w1} and the {w2} {w1} again. " * 3)
        docs.append("\n\n".join(paras))
    return docs


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SemanticIndex:
    path = tmp_path_factory.mktemp("parts") / "i"
    return SemanticIndex.from_texts(
        _corpus(), embedder=FakeEmbedder(), path=path, chunk_tokens=40, overlap=0
    )


def rebuilt(
    mode: str, dense: float | None, keyword: float | None, weight: float | None = None
) -> float:
    """The formula the Hit docstring and the README state."""
    if mode == "dense":
        assert dense is not None
        return dense
    if mode == "keyword":
        assert keyword is not None
        return keyword
    assert dense is not None and keyword is not None and weight is not None
    assert 0.0 <= weight <= RULE.alpha  # the prior, cut where the model cannot read the query
    return weight * dense + (1 - weight) * keyword


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
@pytest.mark.parametrize("query", ["river lake", "harbour", "marsh brook lagoon", "canal again"])
def test_score_is_rebuilt_from_its_parts(index: SemanticIndex, mode: str, query: str) -> None:
    hits = index.search(query, k=20, mode=mode)  # type: ignore[arg-type]
    assert len(hits) == 20
    for h in hits:
        assert h.score == pytest.approx(
            rebuilt(mode, h.dense_score, h.keyword_score, h.dense_weight), abs=1e-6
        )
        if mode != "dense":
            assert h.keyword_score is not None and 0.0 <= h.keyword_score <= 1.0
            assert h.bm25 is not None and h.bm25 >= 0.0
        if mode == "keyword":  # never saturates: strong matches stay apart
            assert h.keyword_score is not None and h.keyword_score < 1.0
        if mode != "keyword":
            assert h.cosine is not None and -1.0 <= h.cosine <= 1.0


@pytest.mark.parametrize("query", ["river lake", "harbour", "marsh brook lagoon"])
def test_keyword_scores_discriminate(index: SemanticIndex, query: str) -> None:
    scores = [h.score for h in index.search(query, k=10, mode="keyword")]
    assert max(scores) < 1.0
    assert len({round(s, 3) for s in scores}) >= 2  # not all 1.000


def test_json_carries_parts_on_the_score_scale(tmp_path: Path, index: SemanticIndex) -> None:
    import json
    from dataclasses import asdict

    hit = asdict(index.search("river lake", k=1, mode="hybrid")[0])
    back = json.loads(json.dumps(hit, allow_nan=False))
    assert {"score", "dense_score", "keyword_score", "cosine", "bm25", "dense_weight"} <= set(back)
    w = back["dense_weight"]
    assert back["score"] == pytest.approx(
        w * back["dense_score"] + (1 - w) * back["keyword_score"], abs=1e-6
    )
