"""HTML and XHTML: the main text, without scripts, styles or navigation.

Parsed by selectolax's Lexbor engine (an HTML5 parser in C: ~22 MB/s on the Python docs
here, 10x the standard library's parser; see README "Formats"). The page title becomes
the title; headings become sections with their path; block elements become paragraph
breaks so sentences and chunks do not run across them.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, NamedTuple

from .base import (
    Extracted,
    Reader,
    ReaderMissing,
    SectionBuilder,
    heading_path,
    merge_bare_headings,
)
from .text import decode

#: Removed with everything inside them before any text is taken.
_DROP = (
    "script, style, noscript, template, svg, canvas, iframe, object, head, nav, header, "
    "footer, aside, form, button, [role=navigation], [role=banner], [role=contentinfo], "
    "[role=search], [aria-hidden=true], .headerlink, .sphinxsidebar, .related"
)
#: Where the main text lives, most specific first; the whole body otherwise.
_MAIN = ("main", "[role=main]", "article")
_BLOCK = frozenset(
    "p div section article main li ul ol dl dt dd table tr td th thead tbody tfoot pre "
    "blockquote figure figcaption h1 h2 h3 h4 h5 h6 br hr caption details summary address "
    "body html".split()
)
_SPACE = re.compile(r"\s+")
_BLOCK_CSS = ", ".join(sorted(_BLOCK - {"pre", "body", "html"}))


class _Marks(NamedTuple):
    """Characters marking blocks, ``<pre>`` and headings in the text taken in one call:
    private-use characters (never whitespace to the regex engine, unlike \x1c-\x1f) that
    the page itself does not contain, so its own text is never taken for a mark."""

    block: str
    pre_open: str
    pre_close: str
    head_open: str
    head_close: str
    #: A run of block marks with the spaces and tabs after it; with those before it (cut
    #: off the text before), a paragraph break. Starting with the mark, the regex engine
    #: jumps from mark to mark (3x faster than a pattern starting with the spaces).
    brk: re.Pattern[str]

    @classmethod
    def of(cls, chars: str) -> _Marks:
        b = re.escape(chars[0])
        brk = re.compile(f"{b}[{b} \t]*")
        return cls(chars[0], chars[1], chars[2], chars[3], chars[4], brk)

    def breaks(self, text: str) -> str:
        """Each run of block marks, with the spaces and tabs around it, as a paragraph
        break (``[ \\t]*M[M \\t]*`` -> two newlines, tested against that pattern)."""
        parts = self.brk.split(text)
        last = parts.pop()
        return "\n\n".join([*(p.rstrip(" \t") for p in parts), last])


_MARKS = _Marks.of("\ue000\ue001\ue002\ue003\ue004")
_PRIVATE_USE = itertools.chain(range(0xE000, 0xF900), range(0xF0000, 0xFFFFE))


def _marks_for(text: str) -> _Marks:
    """The usual marks, or private-use characters absent from ``text`` if it has any."""
    if not any(c in text for c in _MARKS[:5]):
        return _MARKS
    free = (chr(c) for c in _PRIVATE_USE if chr(c) not in text)
    return _Marks.of("".join(itertools.islice(free, 5)))


class HtmlReader(Reader):
    kind = "html"
    suffixes = frozenset({".html", ".htm", ".xhtml", ".shtml"})

    def sniff(self, head: bytes) -> bool:
        start = head.lstrip()[:200].lower()
        return start.startswith((b"<!doctype html", b"<html")) or (
            start.startswith(b"<?xml") and b"<html" in head[:1000].lower()
        )

    def read(self, data: bytes, name: str) -> Extracted:
        try:
            from selectolax.lexbor import LexborHTMLParser
        except ImportError:
            raise ReaderMissing("HTML", "formats") from None
        tree = LexborHTMLParser(decode(data))
        title_node = tree.css_first("title")
        title = _SPACE.sub(" ", title_node.text()).strip() if title_node is not None else ""
        for node in tree.css(_DROP):
            node.decompose()
        root: Any = None
        for selector in _MAIN:
            root = tree.css_first(selector)
            if root is not None:
                break
        if root is None:
            root = tree.body or tree.root
        out = SectionBuilder()
        headings: list[tuple[int, str]] = []
        for level, heading, body in _segments(root) if root is not None else ():
            path = heading_path(headings, level, heading) if level else ""
            out.begin(heading=path)
            out.add(f"{heading}\n\n{body}\n\n" if heading else f"{body}\n\n")
        text, sections = out.finish()
        sections = merge_bare_headings(text, sections)
        if not title:
            h1 = tree.css_first("h1")
            title = _SPACE.sub(" ", h1.text()).strip() if h1 is not None else name
        return Extracted(text.rstrip() + "\n", self.kind, title, sections, None)


def _segments(root: Any) -> list[tuple[int, str, str]]:
    """(heading level, heading, text below it) in document order; level 0 for the text
    before the first heading.

    Marks are inserted around blocks, ``<pre>`` and headings, then the whole text is
    taken in one call: the DOM is walked in C, not node by node in Python (30x faster).
    """
    marks = _marks_for(root.text(deep=True, separator="", strip=False))
    for node in root.css(_BLOCK_CSS):
        node.insert_before(marks.block)
        node.insert_after(marks.block)
    for node in root.css("pre"):
        node.insert_before(marks.pre_open)
        node.insert_after(marks.pre_close)
    for node in root.css("h1, h2, h3, h4, h5, h6"):
        node.insert_before(f"{marks.head_open}{node.tag[1]}")
        node.insert_after(marks.head_close)
    raw = root.text(deep=True, separator="", strip=False)
    out: list[tuple[int, str, str]] = []
    for i, part in enumerate(raw.split(marks.head_open)):
        level, heading, body = 0, "", part
        if i > 0 and marks.head_close in part:
            head, _, body = part.partition(marks.head_close)
            level, heading = int(head[0]), _clean(head[1:], marks).replace("\n", " ").strip()
        text = _clean(body, marks)
        if heading or text:
            out.append((level, heading, text))
    return out


def _clean(text: str, marks: _Marks) -> str:
    """Collapse whitespace outside ``<pre>`` (kept as is inside), block marks to breaks."""
    pieces = []
    for i, chunk in enumerate(text.split(marks.pre_open)):
        pre, _, rest = chunk.partition(marks.pre_close) if i > 0 else ("", "", chunk)
        if pre:
            pieces.append(marks.block + pre.replace(marks.block, "").strip("\n") + marks.block)
        pieces.append(_collapsed(rest))
    joined = marks.breaks("".join(pieces))
    return joined.replace(marks.head_close, "").strip()


def _collapsed(text: str) -> str:
    """``_SPACE.sub(" ", text)``: every run of whitespace as one space, by ``split`` and
    ``join`` (twice as fast on the Python docs; ``\\s`` is ``str.isspace``, tested)."""
    core = " ".join(text.split())
    if not core:
        return " " if text else ""
    return f"{' ' if text[0].isspace() else ''}{core}{' ' if text[-1].isspace() else ''}"
