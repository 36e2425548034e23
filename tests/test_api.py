from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from semsearch import Hit, SemanticIndex, UsageError
from semsearch.index import NumpyIndex, top_k

from .conftest import SEEDS, FakeEmbedder

TEXTS = [
    "The cat sat on the mat.",
    "Dogs chase cats in the garden.",
    "Quarterly trade volumes fell sharply.",
    "Fuel and energy exports declined this year.",
]


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_search_returns_typed_hits_best_first(backend: str) -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder(), backend=backend)
    hits = index.search("trade volumes fell", k=2)
    assert len(hits) == 2 and all(type(h) is Hit for h in hits)
    assert hits[0].doc_id == "text-2" and hits[0].text == TEXTS[2]
    assert hits[0].score >= hits[1].score
    assert (hits[0].start, hits[0].end, hits[0].line_start) == (0, len(TEXTS[2]), 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hits[0].score = 1.0  # type: ignore[misc]


def test_search_matches_brute_force_over_all_chunks() -> None:
    emb = FakeEmbedder()
    index = SemanticIndex.from_paths([SEEDS], embedder=emb, chunk_tokens=40, backend="faiss")
    queries = ["trade decline", "foreign policy", "gas debt", "union state"]
    got = index.search_batch(queries, k=7, mode="dense")
    texts = [r.text for r in index.live.view.store.fetch(range(len(index))).values()]
    vectors = emb.encode(texts)
    scores = emb.encode(queries, kind="query") @ vectors.T
    _, ids = top_k(scores, np.broadcast_to(np.arange(len(texts)), scores.shape), 7)
    for hits, row in zip(got, ids, strict=True):
        assert [h.text for h in hits] == [texts[i] for i in row]


def test_k_larger_than_index_and_metadata() -> None:
    index = SemanticIndex(embedder=FakeEmbedder())
    index.add_texts(TEXTS[:2], ids=["a", "b"], metadata=[{"lang": "en"}, None])
    hits = index.search("cat", k=50)
    assert len(hits) == 2
    assert {h.doc_id for h in hits} == {"a", "b"}
    assert next(h for h in hits if h.doc_id == "a").metadata == {"lang": "en"}


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_usage_error(query: str) -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    with pytest.raises(UsageError, match="empty"):
        index.search(query)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_a_usage_error(k: object) -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    with pytest.raises(UsageError, match="k must be"):
        index.search("cat", k=k)  # type: ignore[arg-type]


def test_duplicate_ids_and_mismatched_lengths_are_rejected() -> None:
    index = SemanticIndex(embedder=FakeEmbedder())
    with pytest.raises(UsageError):
        index.add_texts(["a", "b"], ids=["x", "x"])
    with pytest.raises(UsageError):
        index.add_texts(["a", "b"], ids=["x"])
    index.add_texts(["a"], ids=["x"])
    with pytest.raises(UsageError, match="already"):
        index.add_texts(["b"], ids=["x"])


def test_empty_index_searches_to_nothing() -> None:
    index = SemanticIndex(embedder=FakeEmbedder())
    assert index.search("anything") == []
    assert len(index) == 0


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_save_load_gives_identical_results(tmp_path: Path, backend: str) -> None:
    emb = FakeEmbedder()
    index = SemanticIndex.from_paths([SEEDS], embedder=emb, chunk_tokens=50, backend=backend)
    queries = ["trade decline", "foreign ministers met", "gas"]
    before = index.search_batch(queries, k=5)
    index.save(tmp_path / "idx")
    loaded = SemanticIndex.load(tmp_path / "idx", embedder=emb)
    assert loaded.search_batch(queries, k=5) == before
    assert loaded.info().chunks == len(index)
    # A loaded index writes changes through to its directory, as a new generation.
    loaded.add_texts(["a brand new text about trade"], ids=["new"])
    assert len(loaded) == len(index) + 1
    assert len(SemanticIndex.load(tmp_path / "idx", embedder=emb)) == len(index) + 1
    assert index.search_batch(queries, k=5) == before


def test_numpy_and_faiss_agree_on_seeds() -> None:
    emb = FakeEmbedder()
    a = SemanticIndex.from_paths([SEEDS], embedder=emb, chunk_tokens=30, backend="numpy")
    b = SemanticIndex.from_paths([SEEDS], embedder=emb, chunk_tokens=30, backend="faiss")
    assert isinstance(a.live.view.index, NumpyIndex)
    qs = ["trade decline", "president", "energy"]
    for ha, hb in zip(
        a.search_batch(qs, 10, mode="dense"), b.search_batch(qs, 10, mode="dense"), strict=True
    ):
        assert [h.chunk_id for h in ha] == [h.chunk_id for h in hb]
        assert np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-5)


@pytest.mark.slow
def test_seed_query_in_dense_mode_finds_the_trade_decline(real_embedder) -> None:  # type: ignore[no-untyped-def]
    """Meaning alone (no keyword help) must find the paragraph about the ~20% fall in mutual
    trade, which says "decrease", not "decline"."""
    index = SemanticIndex.from_paths([SEEDS], embedder=real_embedder)
    hits = index.search("trade decline", k=3, mode="dense")
    assert Path(hits[0].source).name.startswith("000_")
    top = " ".join(h.text for h in hits if Path(h.source).name.startswith("000_"))
    assert "20%" in top and "fuel and energy" in top
    assert hits[0].dense_score is not None and hits[0].dense_score > 0.3


def test_a_batch_search_takes_a_list_of_queries() -> None:
    from semsearch.search.request import SearchOptions

    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder(), backend="numpy")
    for search in (index.search_batch, lambda q: index.search_with(q, SearchOptions())):
        with pytest.raises(UsageError, match="takes a list of queries; use search"):
            search("cats")  # type: ignore[arg-type]
    assert [len(hits) for hits in index.search_batch(["cats", "trade"], k=1)] == [1, 1]
