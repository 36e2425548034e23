"""Property-based tests: odd texts, queries and command lines never crash semsearch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from semsearch import SemanticIndex, UsageError
from semsearch.cli import main
from semsearch.ingest.chunk import chunk_text

from .conftest import SEEDS, FakeEmbedder

WEIRD = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=400),
    st.text(alphabet="\x00\x01\x07\x1b\x7f\u200b\ufeff \n\t.!?", max_size=200),
    st.text(alphabet="日本語テキスト。Ελληνικά! عربى؟ 😀🚀👩‍👩‍👧 ", max_size=300),
    st.builds(lambda n: "x" * n, st.integers(0, 5000)),  # one very long token
    st.builds(lambda w, n: (w + " ") * n, st.text(min_size=1, max_size=20), st.integers(0, 500)),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(text=WEIRD, budget=st.integers(8, 300), overlap=st.integers(0, 4))
def test_chunks_always_round_trip(text: str, budget: int, overlap: int) -> None:
    emb = FakeEmbedder()
    chunks = chunk_text(
        text, doc_id="d", source="s", token_spans=emb.token_spans, max_tokens=budget,
        overlap=overlap,
    )  # fmt: skip
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip()
        assert emb.count_tokens([c.text])[0] <= budget
    if text.strip() and any(ch.isalnum() for ch in text):
        assert chunks


@SETTINGS
@given(texts=st.lists(WEIRD, min_size=1, max_size=6), query=WEIRD, k=st.integers(-3, 30))
def test_index_and_search_never_crash(texts: list[str], query: str, k: int) -> None:
    emb = FakeEmbedder()
    try:
        index = SemanticIndex.from_texts(texts, embedder=emb)
    except UsageError as exc:
        assert "no text to index" in str(exc)
        return
    try:
        hits = index.search(query, k=k)
    except UsageError as exc:
        assert k <= 0 or not query.strip()
        assert str(exc)
        return
    assert len(hits) <= k
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        source = texts[int(h.doc_id.split("-")[1])]
        assert source[h.start : h.end] == h.text


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from semsearch import index_paths

    path = tmp_path_factory.mktemp("props") / "idx"
    index_paths([SEEDS], path)
    return path


ARG = st.one_of(
    st.sampled_from(["-k", "--json", "--index", "--source", "--top-k", "0", "-1", "5", "x"]),
    st.text(max_size=30),
)


def _asks_json(args: list[str]) -> bool:
    """Whether ``--json`` is a flag in ``args``, not the value of an option before it
    (``--index --json 0`` asks for the index ``--json``) or a word after ``--``."""
    takes_value = {"-k", "--top-k", "--index", "--source"}
    i = 0
    while i < len(args):
        if args[i] == "--":
            return False
        if args[i] == "--json":
            return True
        i += 2 if args[i] in takes_value else 1
    return False


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(ARG, max_size=6))
@example(args=["--index", "--json", "0"])  # found by Hypothesis: --json as a value
def test_cli_query_arguments_never_traceback(
    seeds_index: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["query", *args, "--index", str(seeds_index)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert code in (0, 1, 2)
    if code == 0 and _asks_json(args):
        json.loads(out)
    if code != 0:
        assert err.strip(), "a failure must say why"
