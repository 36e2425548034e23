"""File-level results: a programmer, or an agent, wants files, not five chunks of one file.

A document's score is its best chunk's, adjusted by code-aware signals; its further
matching chunks are shown with it. Ungrouped chunk hits get the same signals per chunk
(:func:`rescore_rows`); where none fires (prose) their ranking is left exactly as it was.
Each signal was kept because leaving it out lowered file-level nDCG@10 on
``benchmarks/code`` in paired per-query comparisons (docs/code-search.md, "Signals one by
one"):

* definition over reference: a chunk that defines a name the query asks for (×1.3), and
  far more (×3) a chunk inside the very definition a one-symbol query names (its section
  is the name and the query's qualifiers are in the section or the path): on 129 queries
  in nine languages this won 7 queries and lost none in hybrid, keyword and dense alike;
* tests, vendored and generated files are down-weighted.

Three were measured and are not applied: a bonus for the query's words in the file's path
and a larger bonus for every definition of a symbol-like query's names (neither told from
noise, each lost queries: a same-named method elsewhere is not the definition asked for),
and further chunks of a file adding to its score (helped here, hurt CoSQA).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..store.records import ChunkMention

#: Chunks a grouped hit shows in all (its best, then its further ones).
SHOWN_CHUNKS = 3
#: Score factor of a chunk that defines a name the query asks for.
DEFINITION_BONUS = 0.3
#: Score factor of a chunk inside the very definition a one-symbol query names: its
#: section is that name, and the query's qualifiers (``ServeMux`` of ``ServeMux.Handle``)
#: are in the section's name or the file's path (a call or a same-named method elsewhere
#: is not the definition asked for).
EXACT_DEFINITION_BONUS = 2.0
#: Score factor of tests, vendored and generated files.
DOWNWEIGHT = 0.8

_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Keywords that introduce a definition in the languages the chunker knows (``async def``
# and ``async function`` end in one of them).
_DEFINERS = frozenset(
    "def class function func fn sub module struct interface type enum trait impl defmodule "
    "defp defmacro defmacrop defprotocol defimpl defdelegate defguard const let var".split()
)
_LONGEST_DEFINER = max(map(len, _DEFINERS))
_WORD_BEFORE = re.compile(r"\w*\Z")
_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|specs?|testing|testdata)/|(^|/)test_[^/]*$|_(test|spec)\.[a-z]+$|"
    r"\.(test|spec)\.[a-z]+$|(?-i:Test)\.php$",
    re.IGNORECASE,
)
_VENDORED_PATH = re.compile(r"(^|/)(vendor|vendored|third_party|node_modules|external)/")
_GENERATED_PATH = re.compile(r"(_pb2\.py|\.pb\.go|\.min\.js|[._]generated\.[a-z]+)$")


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
    """A C-style function head defining one of ``names``: at the start of a line, no ``;``
    after it on that line."""
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(rf"^[A-Za-z_][\w \t\*]*\b(?:{alt})\s*\([^;\n]*$", re.MULTILINE)


def defines(text: str, names: Sequence[str], pattern: re.Pattern[str] | None = None) -> bool:
    """Whether ``text`` defines one of ``names``: a definition keyword before it
    (``def name``, ``class *name``), or a C-style function head (``pattern``: their
    :func:`definition_pattern`)."""
    if not names or not any(n in text for n in names):  # cheap: most chunks never name them
        return False
    defined, called = _after_keyword(text, names)
    # The C-style head needs a name, whitespace and "(": no such occurrence, no search.
    return defined or (called and bool((pattern or definition_pattern(names)).search(text)))


def _after_keyword(text: str, names: Sequence[str]) -> tuple[bool, bool]:
    """Whether a whole-word occurrence of a name follows a definition keyword, whitespace
    and an optional ``*``; and, when none does, whether one is followed by whitespace and
    ``(`` (as in :func:`definition_pattern`; else that expression cannot match). Only the
    occurrences are looked at: a regular expression trying every keyword at every word of
    the text cost most of a grouped query."""
    called = False
    for name in set(names):
        at = text.find(name)
        while at >= 0:
            end = at + len(name)
            if end == len(text) or not _is_word(text[end]):
                called = called or _paren_after(text, end)
                j = at - 1 if at > 0 and text[at - 1] in "*&" else at
                k = j
                while k > 0 and text[k - 1].isspace():
                    k -= 1
                if k < j:
                    window = max(0, k - _LONGEST_DEFINER - 1)
                    found = _WORD_BEFORE.search(text, window, k)
                    if found and found.group() in _DEFINERS:
                        return True, called
            at = text.find(name, at + 1)
    return False, called


def _paren_after(text: str, end: int) -> bool:
    """Whether ``text`` from ``end`` on is whitespace (``\\s``: ``str.isspace``), then ``(``."""
    while end < len(text) and text[end].isspace():
        end += 1
    return end < len(text) and text[end] == "("


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def definition_tiers(
    rows: np.ndarray, mentions: Iterable[ChunkMention], query: str, source_of: Mapping[int, str]
) -> np.ndarray:
    """Per row: 2 when the chunk lies in the definition a one-symbol query names (see
    ``EXACT_DEFINITION_BONUS``), 1 when it defines one of the query's names (its section
    or its text, :func:`defines`), else 0. ``mentions`` are the rows that name one of
    them (``ChunkStore.mentions``); ``source_of`` gives a row's file."""
    names = query_names(query)
    tiers = np.zeros(len(rows), np.int8)
    if not names:
        return tiers
    pattern = definition_pattern(names)
    parts = symbol_parts(query)
    at = {int(r): i for i, r in enumerate(np.asarray(rows).tolist())}
    for m in mentions:
        last = section_name(m.section)
        if last in names or defines(m.text, names, pattern):
            tier = 1
            exact = may_be_exact(m.section, parts)
            if exact and parts[:-1]:
                where = {_plain(w) for w in re.split(r"[./:\\]+", m.section)}
                where |= {_plain(w.split(".")[0]) for w in source_of[m.row].split("/")}
                tier = 2 if all(q in where for q in parts[:-1]) else 1
            elif exact:
                tier = 2
            tiers[at[m.row]] = max(tiers[at[m.row]], tier)
    return tiers


def symbol_parts(query: str) -> list[str]:
    """The names of a one-word query (``ServeMux.Handle``: ``servemux``, ``handle``) as
    :func:`_plain` compares them; none for a query of several words, which never reaches
    the exact tier (``EXACT_DEFINITION_BONUS``)."""
    words = query.split()
    return [_plain(p) for p in _NAME.findall(words[0])] if len(words) == 1 else []


def section_name(section: str) -> str:
    """The name a chunk's section defines: its last part (``Foo::bar?`` names ``bar``)."""
    return section.replace("::", ".").rsplit(".", 1)[-1].rstrip("?!=")


def may_be_exact(section: str, parts: Sequence[str]) -> bool:
    """Whether a chunk under ``section`` can reach the exact tier of the query whose
    :func:`symbol_parts` are ``parts`` (its section must name the last of them)."""
    return bool(parts) and _plain(section_name(section)) == parts[-1]


def _plain(name: str) -> str:
    """A name compared across spellings: ``ServeMux``, ``serve_mux``, ``$ServeMux``."""
    return name.replace("_", "").replace("$", "").lower()


def path_factor(source: str) -> float:
    """``DOWNWEIGHT`` for tests, vendored and generated files, else 1."""
    path = source.replace("\\", "/")
    if _TEST_PATH.search(path) or _VENDORED_PATH.search(path) or _GENERATED_PATH.search(path):
        return DOWNWEIGHT
    return 1.0


class Grouped(NamedTuple):
    """Documents best first: each one's best chunk row, its score, and its further rows."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32
    further: np.ndarray  # object: a tuple of rows each


def group_rows(
    rows: np.ndarray, scores: np.ndarray, docs: np.ndarray, defining: np.ndarray,
    factor: np.ndarray,
) -> Grouped:  # fmt: skip
    """Group ranked chunk ``rows`` (with their ``scores``) by their document (``docs``,
    any integer key). A row that ``defining`` marks (its :func:`definition_tiers`; True
    is tier 1) scores ``1 + DEFINITION_BONUS`` times its own, or ``1 +
    EXACT_DEFINITION_BONUS`` at tier 2; a document scores its best chunk's times its
    ``factor`` (:func:`path_factor`, given per row). Documents are ordered by score, then by
    best row; a document's chunks by score, then by row; ``SHOWN_CHUNKS`` kept."""
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return Grouped(rows, np.zeros(0, np.float32), np.empty(0, dtype=object))
    adjusted = _tiered(scores, defining)
    by_doc = np.lexsort((rows, -adjusted, docs))
    sorted_docs = np.asarray(docs)[by_doc]
    starts = np.flatnonzero(np.r_[True, sorted_docs[1:] != sorted_docs[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    best = by_doc[starts]
    doc_scores = adjusted[best] * np.asarray(factor, np.float64)[best]
    order = np.lexsort((rows[best], -doc_scores))
    further = np.empty(len(order), dtype=object)
    for i, g in enumerate(order.tolist()):
        lo, hi = int(starts[g]) + 1, min(int(starts[g]) + SHOWN_CHUNKS, int(ends[g]))
        further[i] = tuple(rows[by_doc[lo:hi]].tolist())
    return Grouped(rows[best[order]], doc_scores[order].astype(np.float32), further)


class Rescored(NamedTuple):
    """Chunk hits re-ordered by the signals: positions into the given rows, best first, and
    their new scores."""

    positions: np.ndarray  # int64
    scores: np.ndarray  # float32


def rescore_rows(
    rows: np.ndarray, scores: np.ndarray, defining: np.ndarray, factor: np.ndarray
) -> Rescored | None:
    """Ungrouped chunk hits under the same signals as :func:`group_rows`: each chunk's
    score times its definition tier's factor and its file's ``factor``, then ordered by
    that score, ties to the smaller row. None when no signal fires (every factor 1): the
    ranking is then left exactly as it was."""
    rows = np.asarray(rows, np.int64)
    factor = np.asarray(factor, np.float64)
    if not np.any(np.asarray(defining)) and np.all(factor == 1.0):
        return None
    adjusted = _tiered(scores, defining) * factor
    positions = np.lexsort((rows, -adjusted))
    return Rescored(positions, adjusted[positions].astype(np.float32))


def _tiered(scores: np.ndarray, defining: np.ndarray) -> np.ndarray:
    """Scores times the factor of each row's definition tier (0, 1 or 2)."""
    bonus = np.array([1.0, 1.0 + DEFINITION_BONUS, 1.0 + EXACT_DEFINITION_BONUS])
    return np.asarray(scores, np.float64) * bonus[np.asarray(defining, np.int64)]
