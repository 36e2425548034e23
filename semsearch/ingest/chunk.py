"""Split documents into chunks that fit the model, with exact character spans.

Sentences are found with a small rule set (paragraph breaks, then ``.!?`` followed
by space), then packed greedily up to a token budget measured by the model's own
tokenizer. A sentence longer than the budget is cut at token boundaries, never
dropped or silently truncated by the model. Spans always satisfy
``source_text[chunk.start:chunk.end] == chunk.text``.

Structure is respected: a chunk never crosses a section boundary (a page of a PDF, a
heading's section of Markdown or HTML), so every chunk has one page and one heading path.
Source code is packed from blank-line blocks (a block longer than the budget from whole
lines), and a new chunk starts at a top-level definition once the current one is half full.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import UsageError
from .document import Section

#: Default token budget: below all-MiniLM-L6-v2's 256 (minus [CLS]/[SEP]) with room to spare.
DEFAULT_CHUNK_TOKENS = 200

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_NONSPACE = re.compile(r"\S")
_BLANK_LINES = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")
_LINE = re.compile(r"[^\n]*\n?")

_ABBREVIATIONS = frozenset(
    (
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e",
        "cf", "fig", "no", "vol", "approx", "inc", "ltd", "co", "corp",
    )
)  # fmt: skip

TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]
#: How many tokens each text has, exactly as many as its ``TokenSpans`` (never truncated).
TokenCounts = Callable[[Sequence[str]], list[int]]


class _Unit(NamedTuple):
    """A piece chunks are packed from: a sentence, or a block or line of code."""

    start: int
    end: int
    tokens: int
    definition: bool = False  # code: starts at a top-level definition


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


def iter_sentence_spans(
    text: str, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int]]:
    """:func:`sentence_spans` of ``text[start:end]``, lazily: memory does not grow with the
    length of the text."""
    pos = start
    for para_end, next_start in _paragraph_bounds(text, start, len(text) if end is None else end):
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


def _paragraph_bounds(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _PARAGRAPH.finditer(text, start, end):
        yield m.start(), m.end()
    yield end, end


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
    sections: Sequence[Section] = (),
    kind: str = "text",
    token_counts: TokenCounts | None = None,
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
            sections=sections,
            kind=kind,
            token_counts=token_counts,
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
    sections: Sequence[Section] = (),
    kind: str = "text",
    token_counts: TokenCounts | None = None,
    counts_add_up: bool = False,
) -> Iterator[Chunk]:
    """:func:`chunk_text`, lazily: units are tokenised a window at a time, so a document
    of any length is chunked in bounded memory (beyond the text itself). Chunks stay
    inside ``sections`` (and inside the gaps between them); ``kind="code"`` packs lines.

    ``token_counts``, when given, must count exactly the tokens ``token_spans`` finds: the
    chunks are then the same, but spans are asked only for the rare unit over the budget.
    ``counts_add_up``: a text's count is the sum of its lines' (a tokenizer that splits at
    whitespace, as BERT's does), which lets code be counted once."""
    if max_tokens < 8:
        raise UsageError(f"chunk size must be at least 8 tokens, got {max_tokens}")
    if overlap < 0:
        raise UsageError(f"overlap must be >= 0 sentences, got {overlap}")
    ordinal = 0
    tok = _Tokens(token_spans, token_counts)
    for a, b in _regions(len(text), sections):
        if kind == "code":
            units = _code_units(text, a, b, tok, max_tokens, counts_add_up)
        else:
            units = _units(text, a, b, tok, max_tokens)
        for start, end in _pack(units, max_tokens, overlap):
            yield Chunk(doc_id, source, ordinal, start, end, text[start:end])
            ordinal += 1


def _regions(length: int, sections: Sequence[Section]) -> Iterator[tuple[int, int]]:
    """The sections' ranges in order, plus the uncovered gaps between them."""
    pos = 0
    for s in sorted(sections, key=lambda s: s.start):
        start, end = max(s.start, pos), min(s.end, length)
        if start > pos:
            yield pos, start
        if end > start:
            yield start, end
            pos = end
    if pos < length:
        yield pos, length


def _pack(
    source_units: Iterator[_Unit], max_tokens: int, overlap: int
) -> Iterator[tuple[int, int]]:
    """Greedy packing of units up to ``max_tokens``; a definition unit starts a new chunk
    once the current one is half full."""
    units: list[_Unit] = []
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

    i = 0
    while have(i):
        j, used = i, 0
        while have(j) and (j == i or used + units[j].tokens <= max_tokens):
            if j > i and units[j].definition and used * 2 >= max_tokens:
                break
            used += units[j].tokens
            j += 1
        yield units[i].start, units[j - 1].end
        if not have(j):
            break
        i = _next_start(units, i, j, overlap, max_tokens)
        del units[:i]  # consumed: keep memory bounded by the window, not the document
        i = 0


def _next_start(units: list[_Unit], i: int, j: int, overlap: int, max_tokens: int) -> int:
    """Start the next chunk ``overlap`` sentences back, but only as far back as still leaves
    room for the next new sentence, so no chunk is a subset of the one before."""
    for start in range(max(j - overlap, i + 1), j):
        if sum(u.tokens for u in units[start : j + 1]) <= max_tokens:
            return start
    return j


#: Sentences (or code blocks) tokenised per call: large enough to amortise the call.
_WINDOW = 512
#: Most characters tokenised per call, and the longest span tokenised whole: a longer
#: sentence or line (an 8 MB list with no full stop, minified code) is cut at whitespace
#: first, so the tokenizer's offsets never grow with the text (4M tokens took ~1 GB).
_WINDOW_CHARS = 64 * 1024
#: A code block of more characters than this many times the budget is surely over it
#: (code has 3-4 characters per token), so it is counted by its lines at once.
_SURELY_OVER = 4


class _Tokens:
    """Token counts of unit texts, and spans only for those over the budget (the spans of a
    unit that fits are never used, so a counting tokenizer may skip making them)."""

    def __init__(self, spans: TokenSpans, counts: TokenCounts | None) -> None:
        self.spans, self.counts = spans, counts

    def __call__(
        self, texts: list[str], limit: int
    ) -> list[tuple[int, list[tuple[int, int]] | None]]:
        """Each text's token count, with its spans when the count is over ``limit``."""
        if self.counts is None:
            return [(len(sp), sp) for sp in self.spans(texts)]
        counts = self.counts(texts)
        over = [t for t, n in zip(texts, counts, strict=True) if n > limit]
        spans = iter(self.spans(over) if over else ())
        return [(n, next(spans) if n > limit else None) for n in counts]


def _units(text: str, a: int, b: int, tok: _Tokens, max_tokens: int) -> Iterator[_Unit]:
    """Sentences of ``text[a:b]``; over-long ones are cut into budget-sized pieces."""
    for window in _windows(text, iter_sentence_spans(text, a, b)):
        counted = tok([text[s:e] for s, e in window], max_tokens)
        for (s, e), (n, spans) in zip(window, counted, strict=True):
            yield from _pieces(text, s, e, n, spans, max_tokens)


def _code_units(
    text: str, a: int, b: int, tok: _Tokens, max_tokens: int, counts_add_up: bool = False
) -> Iterator[_Unit]:
    """Blank-line blocks of ``text[a:b]``; a block over the budget becomes its lines (a
    single line over the budget is the only thing ever cut inside a line).

    ``counts_add_up``: a block's count is the sum of its lines' (a tokenizer that splits at
    whitespace), so a block long enough to be surely over the budget is counted by its
    lines alone, not as a block and then by lines: the same units, counted once."""
    for window in _windows(text, _blocks(text, a, b)):
        by_lines = [counts_add_up and e - s > _SURELY_OVER * max_tokens for s, e in window]
        # A block over the budget is split into lines, never cut: its spans are not needed.
        whole = [text[s:e] for (s, e), lines in zip(window, by_lines, strict=True) if not lines]
        counted_blocks = iter(tok(whole, 1 << 62) if whole else ())
        for (s, e), lines in zip(window, by_lines, strict=True):
            definition = not text[s].isspace() and text[s] not in ")]}"
            if lines:
                counted = _lines_counted(text, s, e, tok, max_tokens)
                n = sum(c for _, (c, _) in counted)
            else:
                counted, n = None, next(counted_blocks)[0]
            if n <= max_tokens and e - s <= _WINDOW_CHARS:
                yield _Unit(s, e, max(n, 1), definition)
                continue
            first = True
            for (ls, le), (ln, sp) in counted or _lines_counted(text, s, e, tok, max_tokens):
                for unit in _pieces(text, ls, le, ln, sp, max_tokens):
                    yield unit._replace(definition=definition and first)
                    first = False


def _lines_counted(
    text: str, s: int, e: int, tok: _Tokens, max_tokens: int
) -> list[tuple[tuple[int, int], tuple[int, list[tuple[int, int]] | None]]]:
    """The non-blank lines of a block (at most ``_WINDOW_CHARS``), each with its count and,
    over ``max_tokens``, its spans."""
    lines = (_rstripped(text, m.start(), m.end()) for m in _LINE.finditer(text, s, e))
    out: list[tuple[tuple[int, int], tuple[int, list[tuple[int, int]] | None]]] = []
    for window in _windows(text, ((ls, le) for ls, le in lines if le > ls)):
        out += zip(window, tok([text[ls:le] for ls, le in window], max_tokens), strict=True)
    return out


def _windows(text: str, spans: Iterable[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """``spans`` in batches of at most ``_WINDOW`` spans and about ``_WINDOW_CHARS``
    characters, a span longer than that cut at whitespace (or anywhere, if it has none)."""
    batch: list[tuple[int, int]] = []
    size = 0
    for s, e in spans:
        while e - s > _WINDOW_CHARS:
            cut = text.rfind(" ", s + _WINDOW_CHARS // 2, s + _WINDOW_CHARS)
            cut = text.rfind("\n", s + _WINDOW_CHARS // 2, s + _WINDOW_CHARS) if cut < 0 else cut
            cut = s + _WINDOW_CHARS if cut < 0 else cut
            batch.append(_rstripped(text, s, cut))
            size += cut - s
            s = cut
            while s < e and text[s].isspace():
                s += 1
            if len(batch) >= _WINDOW or size >= _WINDOW_CHARS:
                yield batch
                batch, size = [], 0
        if e > s:
            batch.append((s, e))
            size += e - s
        if len(batch) >= _WINDOW or size >= _WINDOW_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _rstripped(text: str, start: int, end: int) -> tuple[int, int]:
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _blocks(text: str, a: int, b: int) -> Iterator[tuple[int, int]]:
    """Runs of non-blank lines, each from the start of its first line (indentation kept)."""
    pos = a
    for m in itertools.chain(_BLANK_LINES.finditer(text, a, b), [None]):
        end = b if m is None else m.start()
        first = _NONSPACE.search(text, pos, end)
        if first is not None:
            line_start = text.rfind("\n", pos, first.start()) + 1
            start = max(line_start, pos)
            while end > start and text[end - 1].isspace():
                end -= 1
            yield start, end
        if m is not None:
            pos = m.end()


def _pieces(
    text: str, a: int, b: int, n: int, spans: list[tuple[int, int]] | None, max_tokens: int
) -> Iterator[_Unit]:
    """A unit of ``n`` tokens, or budget-sized pieces of it cut at its token ``spans``."""
    if n <= max_tokens:
        yield _Unit(a, b, max(n, 1))
        return
    assert spans is not None, "spans are asked for every unit over the budget"
    for k in range(0, n, max_tokens):
        piece = spans[k : k + max_tokens]
        s = a + piece[0][0]
        e = a + piece[-1][1] if k + max_tokens >= n else a + spans[k + max_tokens][0]
        # Trim so pieces start and end on non-space characters.
        while e > s and text[e - 1].isspace():
            e -= 1
        yield _Unit(s, e, len(piece))
