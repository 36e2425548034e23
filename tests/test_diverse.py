"""``diverse`` (MMR) never trades relevance below what a plain query accepts (issue 20 item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.search.shape import RELEVANCE_FLOOR, mmr_pool

from .conftest import FakeEmbedder

#: Near-identical relevant chunks (MMR penalises each after the first) and chunks that
#: share little or nothing with the query: before the floor, dense MMR picked one of them.
RELEVANT = [
    f"solar panel energy output report roof season {w}"
    for w in ("alpha", "beta", "gamma", "delta", "epsilon")
]
OFF_TOPIC = [
    "energy drinks with coffee at breakfast",
    "the history of medieval castles",
    "knitting a scarf in winter",
    "training a puppy to sit",
    "repairing a bicycle chain",
]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_diverse_does_not_pull_off_topic_hits(tmp_path: Path, mode: str) -> None:
    index = SemanticIndex.from_texts(
        RELEVANT + OFF_TOPIC,
        ids=[f"r{n}" for n in range(5)] + [f"o{n}" for n in range(5)],
        embedder=FakeEmbedder(),
        path=tmp_path / "i",
    )
    plain = index.search("solar panel energy", k=3, mode=mode)  # type: ignore[arg-type]
    assert all(h.doc_id.startswith("r") for h in plain)
    diverse = index.search("solar panel energy", k=3, mode=mode, diverse=True)  # type: ignore[arg-type]
    assert len(diverse) == 3
    assert all(h.doc_id.startswith("r") for h in diverse), [h.text for h in diverse]
    floor = RELEVANCE_FLOOR * plain[-1].score
    assert min(h.score for h in diverse) >= floor - 1e-6


def test_pool_is_the_top_k_and_those_close_to_them() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.65, 0.3, 0.1])
    distinct = np.eye(6)
    assert mmr_pool(scores, distinct, 3).tolist() == [0, 1, 2, 3]  # 0.65 >= 0.8 x 0.7
    assert mmr_pool(scores, distinct, 10).tolist() == list(range(6))
    # Negative cosines: the floor still lies below the k-th score, never above it.
    assert mmr_pool(np.array([-0.2, -0.22, -0.9]), np.eye(3), 1).tolist() == [0, 1]
    # Copies of the first text do not count towards k: the bar is the next distinct hit.
    copies = np.eye(6)
    copies[1] = copies[2] = copies[0]
    assert mmr_pool(scores, copies, 2).tolist() == [0, 1, 2, 3]  # k-th distinct: 0.65
