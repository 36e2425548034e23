"""Keyword-side pseudo-relevance feedback: RM3 and Bo1 weights by hand, weighted BM25 against
repeated query words, and expansion reaching a document that shares no query word."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.search import feedback as fb
from semsearch.search.keyword import keyword_hits
from semsearch.store.postings import CHUNK, DOC

from .conftest import FakeEmbedder


def test_rm3_by_hand() -> None:
    docs = [["a", "c", "c", "d"], ["c", "e"]]
    # doc 1 weighs 3/4, spread over 4 words; doc 2 1/4 over 2 words:
    # c = 0.75 * 2/4 + 0.25 * 1/2 = 0.5; a = d = 0.1875 (tie: a first); e = 0.125.
    w = fb.rm3(["a", "b"], docs, [3.0, 1.0], terms=2, original=0.5)
    mass = 0.5 + 0.1875
    assert w == pytest.approx(
        {"a": 0.5 + 0.5 * 2 * 0.1875 / mass, "b": 0.5, "c": 0.5 * 2 * 0.5 / mass}
    )
    assert sum(w.values()) == pytest.approx(2.0)  # the query's length: BM25's scale kept


@pytest.mark.parametrize("scores", [[0.0, 0.0], [-1.0, 0.0]])
def test_rm3_without_usable_feedback_keeps_the_query(scores: list[float]) -> None:
    assert fb.rm3(["a", "a", "b"], [["c"], ["d"]], scores, 5, 0.5) == {"a": 2.0, "b": 1.0}
    assert fb.rm3(["a"], [[], []], [1.0, 1.0], 5, 0.5) == {"a": 1.0}


def test_bo1_by_hand() -> None:
    docs = [["x", "y", "x"], ["x", "z"]]
    df, n = {"x": 10, "y": 1}, 100  # z is not in the index: skipped

    def info(f: int, p: float) -> float:
        return f * math.log2((1 + p) / p) + math.log2(1 + p)

    wx, wy = info(3, 0.1), info(1, 0.01)
    best = max(wx, wy)
    w = fb.bo1(["q", "q", "x"], docs, df, n, terms=10, original=0.6)
    assert w == pytest.approx({"q": 2.0, "x": 1.0 + 0.4 * 2 * wx / best, "y": 0.4 * 2 * wy / best})
    assert wx > wy  # x: 3 mentions at 10% of documents beat y: 1 at 1%
    assert fb.bo1(["q"], docs, df, n, terms=1, original=0.5).keys() == {"q", "x"}


DOCS = [
    "The glacier retreat measured by satellite altimetry over two decades.",
    "Satellite altimetry of ice sheets: glacier thinning and retreat in Greenland.",
    "Ice sheets in Greenland lose mass as meltwater drains to the ocean.",
    "A recipe for sourdough bread with a long cold fermentation.",
]


@pytest.fixture(scope="module")
def index() -> SemanticIndex:
    return SemanticIndex.from_texts(DOCS, ids=["a", "b", "c", "d"], embedder=FakeEmbedder())


def test_weighted_scores_equal_repeated_words(index: SemanticIndex) -> None:
    v = index.live.view
    assert v is not None
    kw = v.store.keyword_index()
    for level in (CHUNK, DOC):
        repeated = kw.score(["glacier", "glacier", "satellit"], level)
        weighted = kw.score({"glacier": 2.0, "satellit": 1.0}, level)
        assert np.array_equal(repeated.ids, weighted.ids)
        assert np.allclose(repeated.scores, weighted.scores)
        half = kw.score({"glacier": 1.0, "satellit": 0.5}, level)
        assert np.allclose(half.scores, repeated.scores / 2)
    assert kw.full_match({"glacier": 2.0, "satellit": 1.0}) == pytest.approx(
        kw.full_match(["glacier", "glacier", "satellit"])
    )


def test_feedback_reaches_a_document_without_the_query_words(index: SemanticIndex) -> None:
    v = index.live.view
    assert v is not None
    kw = v.store.keyword_index()
    plain = keyword_hits(kw, "glacier altimetry", 10, feedback=None)
    docs_plain = set(kw.doc_ids(kw.doc_of(plain.rows).tolist()).values())
    assert docs_plain == {"a", "b"}
    setting = fb.Feedback("rm3", docs=2, terms=30, original=0.5)
    expanded = keyword_hits(kw, "glacier altimetry", 10, feedback=setting)
    docs_fb = set(kw.doc_ids(kw.doc_of(expanded.rows).tolist()).values())
    # "ice sheets ... greenland" came in from document b: document c now matches, the
    # bread recipe still does not.
    assert docs_fb == {"a", "b", "c"}
    assert expanded.terms == plain.terms  # the query's own terms, as typed
    assert expanded.full_match > plain.full_match  # the ceiling counts the added terms


def test_feedback_is_off_by_default() -> None:
    assert fb.DEFAULT is None
