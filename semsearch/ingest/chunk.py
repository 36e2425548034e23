"""Split documents into chunks that fit the model, with exact character spans.

Sentences are found with a small rule set (paragraph breaks, then ``.!?`` followed
by space), then packed greedily up to a token budget measured by the model's own
tokenizer. A sentence longer than the budget is cut at token boundaries, never
dropped or silently truncated by the model. Spans always satisfy
``source_text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..errors import UsageError

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
    return list(iter_sentence_spans(text))


def iter_sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """:func:`sentence_spans`, lazily: memory does not grow with the length of the text."""
    pos = 0
    for para_end, next_start in _paragraph_bounds(text):
        cut = pos
        for m in _SENTENCE_END.finditer(text, pos, para_end):
            if _is_abbreviation(text, m.start()):
                continue
            span = _trimmed(text, cut, m.end())
            if span is not None:
                yield span
            cut = m.end()
        span = _trimmed(text, cut, para_end)
        if span is not None:
            yield span
        pos = next_start


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


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    m = _NONSPACE.search(text, start, end)
    if m is None:
        return None
    start = m.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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
    return list(
        iter_chunks(
            text,
            doc_id=doc_id,
            source=source,
            token_spans=token_spans,
            max_tokens=max_tokens,
            overlap=overlap,
        )
    )


def iter_chunks(
    text: str,
    *,
    doc_id: str,
    source: str,
    token_spans: TokenSpans,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = 0,
) -> Iterator[Chunk]:
    """:func:`chunk_text`, lazily: sentences are tokenised a window at a time, so a
    document of any length is chunked in bounded memory (beyond the text itself)."""
    if max_tokens < 8:
        raise UsageError(f"chunk size must be at least 8 tokens, got {max_tokens}")
    if overlap < 0:
        raise UsageError(f"overlap must be >= 0 sentences, got {overlap}")
    source_units = _units(text, token_spans, max_tokens)
    units: list[tuple[int, int, int]] = []
    exhausted = False

    def have(n: int) -> bool:
        """Pull units until ``units`` holds more than ``n`` (False if the text ends first)."""
        nonlocal exhausted
        while len(units) <= n and not exhausted:
            nxt = next(source_units, None)
            if nxt is None:
                exhausted = True
            else:
                units.append(nxt)
        return len(units) > n

    ordinal, i = 0, 0
    while have(i):
        j, used = i, 0
        while have(j) and (j == i or used + units[j][2] <= max_tokens):
            used += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        yield Chunk(doc_id, source, ordinal, start, end, text[start:end])
        ordinal += 1
        if not have(j):
            break
        i = _next_start(units, i, j, overlap, max_tokens)
        del units[:i]  # consumed: keep memory bounded by the window, not the document
        i = 0


def _next_start(
    units: list[tuple[int, int, int]], i: int, j: int, overlap: int, max_tokens: int
) -> int:
    """Start the next chunk ``overlap`` sentences back, but only as far back as still leaves
    room for the next new sentence, so no chunk is a subset of the one before."""
    for start in range(max(j - overlap, i + 1), j):
        if sum(u[2] for u in units[start : j + 1]) <= max_tokens:
            return start
    return j


#: Sentences tokenised per call: large enough to amortise the tokenizer call.
_WINDOW = 512


def _units(text: str, token_spans: TokenSpans, max_tokens: int) -> Iterator[tuple[int, int, int]]:
    """Sentences as (start, end, tokens); over-long ones are cut into budget-sized pieces."""
    sentences = iter_sentence_spans(text)
    while True:
        window = list(itertools.islice(sentences, _WINDOW))
        if not window:
            return
        all_spans = token_spans([text[a:b] for a, b in window])
        for (a, b), spans in zip(window, all_spans, strict=True):
            yield from _pieces(text, a, b, spans, max_tokens)


def _pieces(
    text: str, a: int, b: int, spans: list[tuple[int, int]], max_tokens: int
) -> Iterator[tuple[int, int, int]]:
    n = len(spans)
    if n <= max_tokens:
        yield a, b, max(n, 1)
        return
    for k in range(0, n, max_tokens):
        piece = spans[k : k + max_tokens]
        s = a + piece[0][0]
        e = a + piece[-1][1] if k + max_tokens >= n else a + spans[k + max_tokens][0]
        # Trim so pieces start and end on non-space characters.
        while e > s and text[e - 1].isspace():
            e -= 1
        yield s, e, len(piece)
