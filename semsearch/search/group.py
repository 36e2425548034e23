"""File-level results: a programmer, or an agent, wants files, not five chunks of one file.

A document's score is its best chunk's, adjusted by code-aware signals; its further
matching chunks are shown with it. Each signal was kept because it raised file-level
nDCG@10 on ``benchmarks/code`` (docs/code-search.md):

* definition over reference: a chunk that defines a name the query asks for;
* tests, vendored and generated files are down-weighted.

Two others lowered it and are not applied: a bonus for the query's words in the file's
path (hybrid 0.907 without, 0.898 with) and one for further matching chunks of the same
file (0.909 without, 0.898 with 0.1 x the next two chunks' scores).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Chunks a grouped hit shows in all (its best, then its further ones).
SHOWN_CHUNKS = 3
#: Score factor of a chunk that defines a name the query asks for.
DEFINITION_BONUS = 0.3
#: Score factor of tests, vendored and generated files.
DOWNWEIGHT = 0.8

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keywords that introduce a definition in the languages the chunker knows.
_DEFINERS = (
    r"def|class|function|func|fn|sub|module|struct|interface|type|enum|trait|impl|"
    r"defmodule|defp?|defmacro|const|let|var|async\s+def|async\s+function"
)
_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec|testing)/|(^|/)test_[^/]*$|_(test|spec)\.[a-z]+$|"
    r"\.(test|spec)\.[a-z]+$"
)
_VENDORED_PATH = re.compile(r"(^|/)(vendor|vendored|third_party|node_modules|external)/")
_GENERATED_PATH = re.compile(r"(_pb2\.py|\.pb\.go|\.min\.js|[._]generated\.[a-z]+)$")


@dataclass(frozen=True)
class Group:
    """One document's evidence: its chunk rows best first and its combined score."""

    doc_id: str
    rows: tuple[int, ...]
    score: float


@dataclass(frozen=True)
class Candidate:
    """What grouping needs to know of one ranked chunk."""

    row: int
    score: float
    doc_id: str
    source: str
    text: str
    #: The chunk's section: for code, the qualified name of its definition (``Lock.acquire``).
    section: str = ""


def query_names(query: str) -> list[str]:
    """The names a query asks for: its identifiers, and the last part of each dotted path
    (``Semaphore.acquire`` asks for ``Semaphore`` and ``acquire``). Natural-language words
    count only in a one-word query (``gather``)."""
    words = query.split()
    names: list[str] = []
    for word in words:
        parts = _NAME.findall(word)
        symbolic = len(words) == 1 or "_" in word.strip("_") or "." in word.strip(".()")
        if symbolic or any(p[1:] != p[1:].lower() for p in parts):
            names.extend(p for p in parts if len(p) > 1)
    return names


def definition_pattern(names: Sequence[str]) -> re.Pattern[str]:
    """What defines one of ``names``: a keyword before it, or a C-style function head at
    the start of a line (no ``;`` after it on that line)."""
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"\b(?:{_DEFINERS})\s+\*?(?:{alt})\b|^[A-Za-z_][\w \t\*]*\b(?:{alt})\s*\([^;\n]*$",
        re.MULTILINE,
    )


def defines(text: str, names: Sequence[str], pattern: re.Pattern[str] | None = None) -> bool:
    """Whether ``text`` defines one of ``names`` (``pattern``: their definition_pattern)."""
    if not names or not any(n in text for n in names):  # cheap: most chunks never name them
        return False
    return bool((pattern or definition_pattern(names)).search(text))


def path_factor(source: str) -> float:
    """``DOWNWEIGHT`` for tests, vendored and generated files, else 1."""
    path = source.replace("\\", "/")
    if _TEST_PATH.search(path) or _VENDORED_PATH.search(path) or _GENERATED_PATH.search(path):
        return DOWNWEIGHT
    return 1.0


def group_by_document(query: str, candidates: Sequence[Candidate]) -> list[Group]:
    """Documents best first, each with its best ``SHOWN_CHUNKS`` chunk rows."""
    names = query_names(query)
    pattern = definition_pattern(names) if names else None
    by_doc: dict[str, list[tuple[float, int]]] = {}
    factor: dict[str, float] = {}
    for c in candidates:
        score = c.score
        if names and (c.section.rsplit(".", 1)[-1] in names or defines(c.text, names, pattern)):
            score *= 1.0 + DEFINITION_BONUS
        by_doc.setdefault(c.doc_id, []).append((score, c.row))
        if c.doc_id not in factor:
            factor[c.doc_id] = path_factor(c.source)
    groups = []
    for doc, chunks in by_doc.items():
        chunks.sort(key=lambda sr: (-sr[0], sr[1]))
        score = chunks[0][0] * factor[doc]
        groups.append(Group(doc, tuple(r for _, r in chunks[:SHOWN_CHUNKS]), score))
    groups.sort(key=lambda g: (-g.score, g.rows[0]))
    return groups


def as_arrays(groups: Sequence[Group]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each group's best row, its score, and its further rows (an object array of tuples)."""
    further = np.empty(len(groups), dtype=object)
    for i, g in enumerate(groups):
        further[i] = g.rows[1:]
    return (
        np.array([g.rows[0] for g in groups], dtype=np.int64),
        np.array([g.score for g in groups], dtype=np.float32),
        further,
    )
