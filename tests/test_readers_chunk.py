"""Structure-aware chunking: chunks stay inside sections; code breaks at lines and blocks."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from semsearch.ingest.chunk import chunk_text
from semsearch.ingest.document import Section


def word_spans(texts):  # type: ignore[no-untyped-def]
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]


def random_text(rng: random.Random, n_words: int) -> str:
    words = []
    for _ in range(n_words):
        w = rng.choice(["alpha", "beta", "gamma", "delta", "eps"])
        end = rng.choice(["", "", "", ".", ".\n\n", "\n"])
        words.append(w + end)
    return " ".join(words)


def regions(n: int, sections: list[Section]) -> list[tuple[int, int]]:
    cuts = sorted({0, n, *(s.start for s in sections), *(s.end for s in sections)})
    return list(itertools.pairwise(cuts))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("overlap", [0, 1])
def test_chunks_never_cross_a_section_and_lose_nothing(seed: int, overlap: int) -> None:
    rng = random.Random(seed)
    text = random_text(rng, rng.randint(50, 600))
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(0, 8))))
    bounds = [0, *cuts, len(text)]
    sections = [
        Section(a, b, i + 1, "")
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
        if rng.random() < 0.7
    ]  # gaps between sections are regions too
    max_tokens = rng.choice([8, 16, 40])
    chunks = chunk_text(
        text,
        doc_id="d",
        source="d",
        token_spans=word_spans,
        max_tokens=max_tokens,
        overlap=overlap,
        sections=sections,
    )
    spans = regions(len(text), sections)
    covered = [False] * len(text)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert any(a <= c.start and c.end <= b for a, b in spans), (c.start, c.end, spans)
        assert len(word_spans([c.text])[0]) <= max_tokens
        for i in range(c.start, c.end):
            covered[i] = True
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing  # every character that is not whitespace is in some chunk


CODE = '''import os


def first(a, b):
    """Docstring of first."""
    total = a + b
    for i in range(10):
        total += i
    return total


class Second:
    def method(self):
        return 1

    def other(self):
        return 2


def third():
    return "short"
'''


def test_code_chunks_start_at_definitions_and_end_at_line_ends() -> None:
    chunks = chunk_text(
        CODE, doc_id="m", source="m.py", token_spans=word_spans, max_tokens=24, kind="code"
    )
    for c in chunks:
        assert c.start == 0 or CODE[c.start - 1] == "\n", repr(c.text)  # never mid-line
        assert c.end == len(CODE) or CODE[c.end] == "\n", repr(c.text)
    assert [c.text.split("\n", 1)[0] for c in chunks] == ["import os", "class Second:"]


def test_a_top_level_definition_starts_a_new_chunk_once_half_full() -> None:
    f1 = "def f1(a):\n    return a + a + a + a + a + a + a + a + a + a"  # 22 words
    mid = "    # an indented comment block here"  # 6 words, not a definition
    f2 = "def f2(b):\n    return b * 2"  # 5 words
    code = f"{f1}\n\n{mid}\n\n{f2}\n"
    as_code = chunk_text(
        code, doc_id="m", source="m.py", token_spans=word_spans, max_tokens=40, kind="code"
    )
    assert [c.text.split("\n", 1)[0] for c in as_code] == ["def f1(a):", "def f2(b):"]
    as_text = chunk_text(code, doc_id="m", source="m.txt", token_spans=word_spans, max_tokens=40)
    assert len(as_text) == 1  # the same budget holds all of it: the split is the rule's doing


def test_a_long_code_block_is_split_between_lines() -> None:
    body = "\n".join(f"    x{i} = compute(x{i - 1}, {i})" for i in range(1, 60))
    code = f"def long():\n{body}\n    return x59\n"
    chunks = chunk_text(
        code, doc_id="m", source="m.py", token_spans=word_spans, max_tokens=20, kind="code"
    )
    assert len(chunks) > 5
    for c in chunks:
        assert c.start == 0 or code[c.start - 1] == "\n"
        assert c.end == len(code) or code[c.end] == "\n"
    assert "".join(c.text + "\n" for c in chunks) == code
