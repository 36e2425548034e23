"""Query vectors: each text embedded once (a bounded cache per embedder), and a hybrid
search's queries embedded in a worker thread beside its keyword side, with the vectors and
hits the caller would get (fast embedders, a busy worker, errors)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.errors import ModelError
from semsearch.search import query_vectors, retrieve

from .conftest import FakeEmbedder

WORDS = "harbour lighthouse tide anchor sail rope gull wave reef keel mast dock".split()


def harbour_index(
    path: Path, n: int, seed: int, sizes: tuple[int, int], words: list[str] = WORDS, **kw: str
) -> SemanticIndex:
    """An index of ``n`` texts of ``sizes`` (low, high: excluded) random harbour words."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(*sizes)))) for _ in range(n)]
    index = SemanticIndex(embedder=FakeEmbedder(), path=path, **kw)  # type: ignore[arg-type]
    index.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
    return index


def test_a_repeated_query_is_embedded_once_and_gets_the_same_vector() -> None:
    emb = FakeEmbedder()
    texts = ["harbour gull", "keel", "harbour gull", "tide anchor"]
    first = query_vectors.query_vectors(emb, texts)
    assert emb.calls == 1
    assert np.array_equal(first, emb.encode(texts, kind="query"))
    calls = emb.calls
    again = query_vectors.query_vectors(emb, ["keel", "harbour gull"])
    assert emb.calls == calls  # all cached
    assert np.array_equal(again, first[[1, 0]])
    other = FakeEmbedder(dim=32)  # another embedder: its own cache
    assert query_vectors.query_vectors(other, ["keel"]).shape == (1, 32)


def test_the_query_vector_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_vectors, "CACHED", 3)
    emb = FakeEmbedder()
    for i in range(7):
        query_vectors.query_vectors(emb, [f"word{i}"])
    cache = query_vectors._cache_of(emb)
    assert cache is not None and list(cache) == ["word4", "word5", "word6"]
    calls = emb.calls
    query_vectors.query_vectors(emb, ["word0"])  # evicted: embedded again
    assert emb.calls == calls + 1


class _Gated(FakeEmbedder):
    """Embeds only once ``gate`` is set, in whichever thread asks; ``fail`` raises instead."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.threads: list[str] = []
        self.fail = False

    def encode(self, texts, *, kind="document"):  # type: ignore[no-untyped-def]
        self.threads.append(threading.current_thread().name)
        assert self.gate.wait(10)
        if self.fail:
            raise ModelError("the model broke")
        return super().encode(texts, kind=kind)


def test_vectors_embedded_beside_the_caller_equal_those_embedded_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query_vectors, "WORTH_A_THREAD", 0.0)
    emb = _Gated()
    texts = ["harbour gull", "keel", "harbour gull"]
    pending = query_vectors.vectors_soon(emb, texts)  # returns before the model has run
    busy = query_vectors.vectors_soon(emb, ["tide"])  # the one worker is busy: caller's
    emb.gate.set()
    assert np.array_equal(pending(), FakeEmbedder().encode(texts, kind="query"))
    assert emb.threads[0].startswith("semsearch-query")
    assert np.array_equal(busy(), FakeEmbedder().encode(["tide"], kind="query"))
    assert emb.threads[-1] == threading.current_thread().name
    calls = emb.calls
    assert np.array_equal(query_vectors.vectors_soon(emb, ["keel"])(), pending()[[1]])
    assert emb.calls == calls  # cached: no model run, no thread
    emb.fail = True
    failing = query_vectors.vectors_soon(emb, ["reef"])
    with pytest.raises(ModelError, match="broke"):
        failing()
    emb.fail = False  # the worker is free again after a failure
    later = query_vectors.vectors_soon(emb, ["mast"])
    assert np.array_equal(later(), FakeEmbedder().encode(["mast"], kind="query"))
    assert emb.threads[-1].startswith("semsearch-query")


def test_a_fast_embedder_embeds_in_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    emb = _Gated()
    emb.gate.set()
    query_vectors.vectors_soon(emb, ["harbour"])()  # first: no cost known, the caller's
    query_vectors.vectors_soon(emb, ["gull"])()  # the fake is fast: still the caller's
    assert emb.threads == [threading.current_thread().name] * 2
    monkeypatch.setattr(query_vectors, "WORTH_A_THREAD", 0.0)  # as if it were slow
    query_vectors.vectors_soon(emb, ["keel"])()
    assert emb.threads[-1].startswith("semsearch-query")


def test_hybrid_hits_are_the_same_with_the_query_embedded_beside_the_keyword_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = harbour_index(tmp_path / "ix", 83, 7, (2, 8), backend="numpy")
    monkeypatch.setattr(query_vectors, "WORTH_A_THREAD", 0.0)
    queries = ["harbour gull", "tide tide anchor", "keel", "mast sail reef dock", "zzz wave"]
    beside = []
    for q in queries:
        query_vectors.clear()
        beside.append([(h.chunk_id, h.score) for h in index.search(q, k=9, mode="hybrid")])
    inline = lambda emb, qs: lambda: query_vectors.query_vectors(emb, qs)  # noqa: E731
    monkeypatch.setattr(retrieve, "vectors_soon", inline)
    for q, want in zip(queries, beside, strict=True):
        query_vectors.clear()
        assert [(h.chunk_id, h.score) for h in index.search(q, k=9, mode="hybrid")] == want
