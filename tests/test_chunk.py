from __future__ import annotations

import itertools

import pytest

from semsearch.embed import Embedder
from semsearch.errors import UsageError
from semsearch.ingest.chunk import chunk_text, sentence_spans

from .conftest import SEEDS, FakeEmbedder


def _chunks(text: str, emb: Embedder, **kw: int):
    return chunk_text(text, doc_id="d", source="s", token_spans=emb.token_spans, **kw)


def test_sentence_spans_trim_and_split_on_paragraphs() -> None:
    text = "  First one. Second one!\n\nHeading without stop\nMr. Smith met A. Jones. End"
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == [
        "First one.",
        "Second one!",
        "Heading without stop\nMr. Smith met A. Jones.",
        "End",
    ]


@pytest.mark.parametrize("max_tokens", [8, 20, 57, 200])
@pytest.mark.parametrize("overlap", [0, 1, 3])
def test_spans_round_trip_and_cover_every_sentence(max_tokens: int, overlap: int) -> None:
    emb = FakeEmbedder()
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        chunks = _chunks(text, emb, max_tokens=max_tokens, overlap=overlap)
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))
        covered = set()
        for c in chunks:
            assert text[c.start : c.end] == c.text
            assert emb.count_tokens([c.text])[0] <= max_tokens
            covered.update(range(c.start, c.end))
        for a, b in sentence_spans(text):  # no text dropped (whitespace between pieces may be)
            assert {i for i in range(a, b) if not text[i].isspace()} <= covered
        assert chunks == _chunks(text, emb, max_tokens=max_tokens, overlap=overlap)


def test_overlap_repeats_sentences_without_subset_chunks() -> None:
    emb = FakeEmbedder()
    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    plain = _chunks(text, emb, max_tokens=30)
    over = _chunks(text, emb, max_tokens=30, overlap=1)
    assert len(over) > len(plain)
    for a, b in itertools.pairwise(over):
        assert b.start < a.end  # shares a sentence with the previous chunk
        assert b.end > a.end  # and always adds something new


def test_long_sentence_is_split_not_dropped() -> None:
    emb = FakeEmbedder()
    text = "word " * 999 + "last"
    chunks = _chunks(text, emb, max_tokens=100)
    assert len(chunks) == 10
    assert all(emb.count_tokens([c.text])[0] <= 100 for c in chunks)
    assert chunks[-1].text.endswith("last")


def test_empty_and_whitespace_documents_have_no_chunks() -> None:
    emb = FakeEmbedder()
    assert _chunks("", emb) == []
    assert _chunks(" \n\n\t ", emb) == []


def test_bad_parameters_raise_usage_error() -> None:
    with pytest.raises(UsageError):
        _chunks("text", FakeEmbedder(), max_tokens=2)
    with pytest.raises(UsageError):
        _chunks("text", FakeEmbedder(), overlap=-1)


@pytest.mark.slow
def test_real_tokenizer_budget_is_respected(real_embedder: Embedder) -> None:
    text = (SEEDS / "000_70defebb133c6857.txt").read_text(encoding="utf-8")
    long = text + "\n\n" + "supercalifragilistic " * 600
    for c in _chunks(long, real_embedder, max_tokens=200):
        assert long[c.start : c.end] == c.text
        assert real_embedder.count_tokens([c.text])[0] <= 200
