"""HTML and XHTML: the main text, without scripts, styles or navigation.

Parsed by selectolax's Lexbor engine (an HTML5 parser in C: ~22 MB/s on the Python docs
here, 10x the standard library's parser; see README "Formats"). The page title becomes
the title; headings become sections with their path; block elements become paragraph
breaks so sentences and chunks do not run across them.
"""

from __future__ import annotations

import re
from typing import Any

from .base import Extracted, Reader, ReaderMissing, SectionBuilder, heading_path
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
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_SPACE = re.compile(r"\s+")
_BREAKS = re.compile(r"[ \t]*\n(?:[ \t]*\n)*")


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
        segments: list[tuple[str, list[str]]] = [("", [])]
        if root is not None:
            _walk(root, segments)
        out = SectionBuilder()
        for heading, parts in segments:
            out.begin(heading=heading)
            out.add(_BREAKS.sub(_break, "".join(parts)).strip(" \n") + "\n\n")
        text, sections = out.finish()
        if not title:
            h1 = tree.css_first("h1")
            title = _SPACE.sub(" ", h1.text()).strip() if h1 is not None else name
        return Extracted(text.rstrip() + "\n", self.kind, title, sections, None)


def _break(m: re.Match[str]) -> str:
    return "\n\n" if m.group().count("\n") > 1 else "\n"


def _walk(root: Any, segments: list[tuple[str, list[str]]]) -> None:
    """Depth-first over the DOM with explicit end markers (no recursion limit); a heading
    starts a new segment named by its heading path."""
    parts = segments[-1][1]
    stack: list[tuple[Any, bool]] = [(root, False)]
    headings: list[tuple[int, str]] = []
    pre = 0
    while stack:
        node, closing = stack.pop()
        tag = node.tag
        if closing:
            if tag == "pre":
                pre -= 1
            if tag in _BLOCK:
                parts.append("\n\n")
            continue
        if tag == "-text":
            piece = node.text_content or ""
            parts.append(piece if pre else _SPACE.sub(" ", piece))
            continue
        if tag in _HEADINGS:
            heading = _SPACE.sub(" ", node.text()).strip()
            if heading:
                parts = [heading, "\n\n"]
                segments.append((heading_path(headings, _HEADINGS[tag], heading), parts))
                continue
        if tag in _BLOCK:
            parts.append("\n\n")
        if tag == "pre":
            pre += 1
        stack.append((node, True))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, False) for c in reversed(children))
