"""Split documents into chunks that fit the model, with exact character spans.

Sentences are found with a small rule set (paragraph breaks, then ``.!?`` followed
by space), then packed greedily up to a token budget measured by the model's own
tokenizer. A sentence longer than the budget is cut at token boundaries, never
dropped or silently truncated by the model. Spans always satisfy
``source_text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .errors import UsageError

#: Default token budget: below all-MiniLM-L6-v2's 256 (minus [CLS]/[SEP]) with room to spare.
DEFAULT_CHUNK_TOKENS = 200

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_NONSPACE = re.compile(r"\S")

_ABBREVIATIONS = frozenset(
    (
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e",
        "cf", "fig", "no", "vol", "approx", "inc", "ltd", "co", "corp",
    )
)  # fmt: skip

TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a document: its text and where it sits in the source."""

    doc_id: str
    source: str
    ordinal: int
    start: int
    end: int
    text: str


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences, whitespace trimmed; paragraph breaks always end one."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for para_end, next_start in _paragraph_bounds(text):
        cut = pos
        for m in _SENTENCE_END.finditer(text, pos, para_end):
            if _is_abbreviation(text, m.start()):
                continue
            _append_trimmed(text, cut, m.end(), spans)
            cut = m.end()
        _append_trimmed(text, cut, para_end, spans)
        pos = next_start
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    """True for the dot of an initial ("A. Smith") or a common abbreviation ("e.g.", "Dr.")."""
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    if len(word) == 1 and text[word_start].isupper():
        return True
    return word in _ABBREVIATIONS


def _paragraph_bounds(text: str) -> Iterator[tuple[int, int]]:
    for m in _PARAGRAPH.finditer(text):
        yield m.start(), m.end()
    yield len(text), len(text)


def _append_trimmed(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    m = _NONSPACE.search(text, start, end)
    if m is None:
        return
    start = m.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    out.append((start, end))


def chunk_text(
    text: str,
    *,
    doc_id: str,
    source: str,
    token_spans: TokenSpans,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = 0,
) -> list[Chunk]:
    """Chunk one document; ``overlap`` repeats that many sentences at the next chunk's start."""
    if max_tokens < 8:
        raise UsageError(f"chunk size must be at least 8 tokens, got {max_tokens}")
    if overlap < 0:
        raise UsageError(f"overlap must be >= 0 sentences, got {overlap}")
    units = _units(text, token_spans, max_tokens)
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (j == i or used + units[j][2] <= max_tokens):
            used += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(doc_id, source, len(chunks), start, end, text[start:end]))
        if j >= len(units):
            break
        i = _next_start(units, i, j, overlap, max_tokens)
    return chunks


def _next_start(
    units: list[tuple[int, int, int]], i: int, j: int, overlap: int, max_tokens: int
) -> int:
    """Start the next chunk ``overlap`` sentences back, but only as far back as still leaves
    room for the next new sentence, so no chunk is a subset of the one before."""
    for start in range(max(j - overlap, i + 1), j):
        if sum(u[2] for u in units[start : j + 1]) <= max_tokens:
            return start
    return j


def _units(text: str, token_spans: TokenSpans, max_tokens: int) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, tokens); over-long ones are cut into budget-sized pieces."""
    sentences = sentence_spans(text)
    if not sentences:
        return []
    all_spans = token_spans([text[a:b] for a, b in sentences])
    units: list[tuple[int, int, int]] = []
    for (a, b), spans in zip(sentences, all_spans, strict=True):
        n = len(spans)
        if n <= max_tokens:
            units.append((a, b, max(n, 1)))
            continue
        for k in range(0, n, max_tokens):
            piece = spans[k : k + max_tokens]
            s = a + piece[0][0]
            e = a + piece[-1][1] if k + max_tokens >= n else a + spans[k + max_tokens][0]
            # Trim so pieces start and end on non-space characters.
            while e > s and text[e - 1].isspace():
                e -= 1
            units.append((s, e, len(piece)))
    return units
