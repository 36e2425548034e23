"""The reader interface: a file's bytes in, text plus structure out.

Every format reader turns bytes into one :class:`Extracted`: the text to chunk, its title,
sections (character ranges carrying a page or a heading path, which chunks never cross)
and metadata. Readers raise :class:`Unreadable` for a file they cannot read (corrupt,
encrypted, image-only) and :class:`ReaderMissing` when their parser is not installed;
``read_document`` turns both into one warning naming the file, and the build goes on.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..document import Section
from ..limits import MAX_TEXT_CHARS

#: Joins the headings of a section path, as hits print it: ``Guide › Install › Linux``.
HEADING_SEP = " › "


class Unreadable(Exception):
    """This file cannot be read by its reader (the message says why)."""


class ReaderMissing(Exception):
    """The reader's parser is not installed; ``extra`` is what to ``pip install``."""

    def __init__(self, kind: str, extra: str) -> None:
        super().__init__(f"the {kind} reader needs: pip install 'semsearch[{extra}]'")
        self.kind, self.extra = kind, extra


@dataclass(frozen=True, slots=True)
class Extracted:
    """What a reader found in one file. ``warnings`` say what was cut or left out (a bound
    reached, bad front matter); the caller logs each once, naming the file."""

    text: str
    kind: str
    title: str = ""
    sections: tuple[Section, ...] = ()
    meta: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()


class Reader(ABC):
    """One format. ``suffixes`` choose it first; ``sniff`` recognises content otherwise."""

    kind: str = ""
    suffixes: frozenset[str] = frozenset()
    #: Size limit multiplier over the text limit (PDFs carry fonts and images).
    size_factor: int = 1

    def sniff(self, head: bytes) -> bool:
        """True when the first bytes of a file look like this format."""
        return False

    @abstractmethod
    def read(self, data: bytes, name: str) -> Extracted:
        """Extract text and structure; ``name`` is the file name (a fallback title)."""


class SectionBuilder:
    """Accumulates text pieces and heading changes into text + non-overlapping sections.

    Text past ``limit`` characters is dropped: ``full`` tells a reader to stop reading, and
    ``warnings()`` says what was cut."""

    def __init__(self, limit: int = MAX_TEXT_CHARS) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.limit = limit
        self.full = False
        self.sections: list[Section] = []
        self._start = 0
        self._page: int | None = None
        self._heading = ""

    def add(self, piece: str) -> None:
        if len(piece) > self.limit - self.length:
            piece, self.full = piece[: self.limit - self.length], True
        if piece:
            self.parts.append(piece)
            self.length += len(piece)

    def warnings(self, *more: str) -> tuple[str, ...]:
        cut = (f"text cut at {self.limit} characters (the rest is not indexed)",)
        return (cut if self.full else ()) + tuple(m for m in more if m)

    def begin(self, *, page: int | None = None, heading: str = "") -> None:
        """Close the current section and start a new one here."""
        self._close()
        self._start, self._page, self._heading = self.length, page, heading

    def _close(self) -> None:
        if self.length > self._start and (self._page is not None or self._heading):
            self.sections.append(Section(self._start, self.length, self._page, self._heading))

    def finish(self) -> tuple[str, tuple[Section, ...]]:
        self._close()
        self._start = self.length
        return "".join(self.parts), tuple(self.sections)


#: What :func:`meta_value` returns for a value metadata cannot hold.
DROP = object()
_INT64 = 1 << 63


def meta_value(value: Any) -> Any:
    """``value`` as filterable metadata, JSON-typed: text, a finite number within int64,
    a bool, None, or a list of those (lists stay lists, so membership can match them).
    NaN/Infinity become None (JSON has no such numbers); a huge integer or an element of a
    list that is none of these is DROP. Other objects (a date) become their text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else DROP
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        items = [meta_value(v) for v in value]
        ok = all(v is not DROP and not isinstance(v, list) for v in items)
        return items if ok else DROP
    if isinstance(value, Mapping):
        return DROP
    return str(value)


def merge_bare_headings(text: str, sections: tuple[Section, ...]) -> tuple[Section, ...]:
    """Fold a section that is only its heading line (a title straight above a subtitle)
    into the section after it, which keeps its own heading path: alone, the bare heading
    became a chunk of its own that matched every query about the topic and ranked first."""
    out: list[Section] = []
    start: int | None = None  # where a run of bare headings began
    for i, sec in enumerate(sections):
        if start is not None:
            sec = sec._replace(start=start)
            start = None
        after = sections[i + 1] if i + 1 < len(sections) else None
        if after is not None and after.start == sec.end and _bare(text, sec):
            start = sec.start
            continue
        out.append(sec)
    return tuple(out)


def _bare(text: str, sec: Section) -> bool:
    """True when the section holds its heading line (and a setext underline) and no text."""
    if not sec.heading:
        return False
    body = text[sec.start : sec.end].strip()
    _, _, rest = body.partition("\n")
    return not rest.strip().strip("=-").strip()


def heading_path(stack: list[tuple[int, str]], level: int, title: str) -> str:
    """Push heading ``title`` at ``level`` onto ``stack`` (popping deeper or equal levels)
    and return the joined path."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, title))
    return HEADING_SEP.join(t for _, t in stack if t)
