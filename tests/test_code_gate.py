"""The code gate: content sniffing (:mod:`semsearch.search.codelike`) and the hybrid rule
for queries whose best dense candidates are code given as plain text (:func:`fuse.on_code`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.search.codelike import looks_like_code
from semsearch.search.fuse import (
    CODE_GATE,
    CODE_RULE,
    MODEL_RULES,
    READS,
    RULE,
    QuerySignals,
    WeightRule,
    on_code,
)

from .conftest import FakeEmbedder

PYTHON = '''def create_path(path):
    """Creates an absolute path in the file system."""
    import os
    if not os.path.exists(path):
        os.makedirs(path)'''
JS = """function debounce(fn, wait) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}"""
C = """static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        if (*s == '\\n') n++;
    return n;
}"""
PROSE = """Solar panels convert sunlight into electricity for the home.
Most installations pay for themselves within ten years, depending on the roof.
Batteries store the surplus for the evening."""
LIST = """Ingredients:
    - 200 g flour,
    - 100 g butter (cold),
    - a pinch of salt;
Bake at 180 degrees for 25 minutes."""
GERMAN = """Die Stadt liegt am Rhein.
    Sie hat etwa 300.000 Einwohner (2020).
    Der Dom ist ihr bekanntestes Bauwerk."""


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (PYTHON, True),
        (JS, True),
        (C, True),
        (PROSE, False),
        (LIST, False),  # indented, lines end in commas, but the words are prose
        (GERMAN, False),
        ("x = f(a, b)", False),  # one line says too little
        ("", False),
    ],
)
def test_looks_like_code(text: str, code: bool) -> None:
    assert looks_like_code(text) is code


@pytest.mark.parametrize(("n_code", "gated"), [(0, False), (4, False), (5, True), (10, True)])
def test_on_code_by_hand(n_code: int, gated: bool) -> None:
    texts = [PYTHON] * n_code + [PROSE] * (10 - n_code)
    assert CODE_GATE == 0.5
    got = on_code(READS, texts)
    if gated:
        assert got == READS._replace(rule=CODE_RULE, feedback=False)
    else:
        assert got == READS and got.feedback
    assert on_code(READS, []) == READS


def test_the_code_rule_is_pinned() -> None:
    # Chosen on CoSQA's dev qrels (benchmarks/ranking_code.py; docs/ranking.md).
    assert WeightRule(alpha=0.75) == CODE_RULE
    assert CODE_RULE.weight(QuerySignals(0.9, 0.1, 1.0, 1.0)) == pytest.approx(0.75)
    # Another model's own rule is kept (the static model's dense side is far weaker).
    static = READS._replace(rule=MODEL_RULES["static"])
    assert on_code(static, [PYTHON] * 10) == static
    assert RULE != CODE_RULE


CODE_TEXTS = [
    PYTHON,
    JS,
    C,
    '''def read_json(path):
    """Load a JSON file and return the parsed object."""
    with open(path) as f:
        return json.load(f)''',
    '''def sort_by_key(items, key):
    """Sort a list of dicts by one of their keys."""
    return sorted(items, key=lambda d: d[key])''',
]


def test_hybrid_on_code_texts_uses_the_code_rule_without_feedback() -> None:
    index = SemanticIndex.from_texts(CODE_TEXTS, embedder=FakeEmbedder())
    hits = index.search("read a json file", k=5, mode="hybrid")
    assert hits
    assert [h.dense_weight for h in hits] == pytest.approx([CODE_RULE.alpha] * len(hits))
    # No feedback: the dense part is the cosine with the query as typed, rescaled, so it
    # orders the hits exactly as the cosine does.
    by_cosine = sorted(hits, key=lambda h: -(h.cosine or 0.0))
    parts = [h.dense_score or 0.0 for h in by_cosine]
    assert parts == sorted(parts, reverse=True)


def test_prose_and_code_reader_files_keep_the_default(tmp_path: Path) -> None:
    prose = SemanticIndex.from_texts([PROSE, LIST, GERMAN], embedder=FakeEmbedder())
    hits = prose.search("solar electricity", k=3, mode="hybrid")
    assert hits and {h.dense_weight for h in hits} == {RULE.alpha}
    # The same code read from files by the code reader: its own signals apply, no gate.
    for n, text in enumerate(CODE_TEXTS[:1] + CODE_TEXTS[3:]):
        (tmp_path / f"m{n}.py").write_text(text + "\n")
    files = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "index")
    files.add_paths([tmp_path], glob=["*.py"])
    hits = files.search("read a json file", k=3, mode="hybrid")
    assert hits and {h.dense_weight for h in hits} == {RULE.alpha}
