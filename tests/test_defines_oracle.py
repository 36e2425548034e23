"""group.defines against how it was before stop 33 (kept here as the oracle): the C-style
head expression is now searched only where a name is followed by whitespace and ``(``."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from semsearch.search import group
from semsearch.search.group import defines, definition_pattern


def _old_after_keyword(text: str, names: Sequence[str]) -> bool:
    for name in set(names):
        at = text.find(name)
        while at >= 0:
            end = at + len(name)
            if end == len(text) or not group._is_word(text[end]):
                j = at - 1 if at > 0 and text[at - 1] in "*&" else at
                k = j
                while k > 0 and text[k - 1].isspace():
                    k -= 1
                if k < j:
                    window = max(0, k - group._LONGEST_DEFINER - 1)
                    found = group._WORD_BEFORE.search(text, window, k)
                    if found and found.group() in group._DEFINERS:
                        return True
            at = text.find(name, at + 1)
    return False


def _old_defines(text: str, names: Sequence[str], pattern: re.Pattern[str] | None = None) -> bool:
    """group.defines as it was (e6796ab), word for word."""
    if not names or not any(n in text for n in names):
        return False
    return _old_after_keyword(text, names) or bool(
        (pattern or definition_pattern(names)).search(text)
    )


PIECES = [
    "def", "class", "int", "static", "void", "*", "&", "(", ")", ";", "\n", " ", "\t",
    "\u00a0", "\u2003", "\x1c", "\x0b", "{", "}", "run", "run_all", "Run", "$run", "x",
    "return", "function", "async def", "fn", "=", ",", "//", "é",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_defines_equals_the_old(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = list(rng.choice(["run", "run_all", "Run", "$run", "x"], int(rng.integers(1, 3))))
    pattern = definition_pattern(names)
    for _ in range(300):
        text = "".join(rng.choice(PIECES, int(rng.integers(0, 30))))
        want = _old_defines(text, names, pattern)
        assert defines(text, names, pattern) == want, (text, names)
        assert defines(text, names) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("int run\n  (int a)\n{", True),  # whitespace across lines before "("
        ("int run\u2003(int a)", True),  # any Unicode whitespace, as \s
        ("static void run_all(void);", False),  # a declaration
        ("x = run (3)", False),
        ("run(x)", False),  # (the head needs a word before the name)
        ("void\x1crun\x0b(x)", False),
        ("void *run_all(x)", True),
        ("    run(x)", False),  # not at a line start
        ("def  run(self):", True),
    ],
)
def test_defines_cases(text: str, want: bool) -> None:
    assert defines(text, ["run", "run_all"]) is want is _old_defines(text, ["run", "run_all"])
