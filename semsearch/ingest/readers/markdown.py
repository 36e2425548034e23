"""Markdown: headings become sections, YAML front matter becomes metadata.

The text kept is the Markdown source itself (minus the front matter, whose lines are
blanked so line numbers stay true): it reads as clean text and code blocks survive.
Headings are found by markdown-it-py (CommonMark), so a ``#`` inside a code fence or a
setext heading is handled as Markdown defines it. Its token stream costs ~500 bytes and
~15 us per list item or one-line paragraph (an 8 MB list: 3 GB), so a text longer than
``MAX_MARKDOWN_PARSE`` is scanned line by line for ATX and setext headings outside fences.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from ..limits import MAX_MARKDOWN_PARSE, MAX_YAML_CHARS, MAX_YAML_NODES
from .base import (
    DROP,
    Extracted,
    Reader,
    SectionBuilder,
    heading_path,
    merge_bare_headings,
    meta_value,
)
from .text import decode

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
# The line scan (see _scanned).
_LINES = re.compile(r"[^\n]*\n?")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*\r?\n?\Z")
_UNDERLINE = re.compile(r" {0,3}(?:=+|-+)[ \t]*\r?\n?\Z")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_NOT_PARAGRAPH = re.compile(r" {0,3}(?:[-+*>]|\d+[.)])(?:[ \t]|\r?\n?\Z)| {4}|\t")


class _Heading(NamedTuple):
    start: int  # where its first line starts
    level: int
    text: str


class MarkdownReader(Reader):
    kind = "markdown"
    suffixes = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})

    def read(self, data: bytes, name: str) -> Extracted:
        text = decode(data)
        meta: dict[str, Any] = {}
        warning = ""
        m = _FRONT.match(text)
        if m:
            meta, warning = _front_matter(m.group(1))
            text = "\n" * text.count("\n", 0, m.end()) + text[m.end() :]
        out = SectionBuilder()
        stack: list[tuple[int, str]] = []
        title = str(meta.get("title") or "")
        pos = 0
        headings = _parsed(text) if len(text) <= MAX_MARKDOWN_PARSE else _scanned(text)
        for start, level, heading in headings:
            out.add(text[pos:start])
            pos = start
            out.begin(heading=heading_path(stack, level, heading))
            if not title and level == 1:
                title = heading
        out.add(text[pos:])
        body, sections = out.finish()
        sections = merge_bare_headings(body, sections)
        warnings = out.warnings(warning)
        return Extracted(body, self.kind, title or name, sections, meta or None, warnings)


def _parsed(text: str) -> Iterator[_Heading]:
    """Headings as CommonMark defines them (block parse only: inline is not needed)."""
    from markdown_it import MarkdownIt  # core dependency (via rich); heavy-ish import

    tokens = MarkdownIt("commonmark").disable("inline").parse(text)
    line_starts = _line_offsets(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map is not None:
            heading = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            yield _Heading(line_starts[tok.map[0]], int(tok.tag[1]), heading)


def _scanned(text: str) -> Iterator[_Heading]:
    """Headings by a line scan in constant memory: ATX lines, and setext underlines below
    a paragraph line, outside fenced code (an approximation of CommonMark for big files)."""
    fence = ""
    title: tuple[int, str] | None = None  # a paragraph line an underline would make a heading
    for m in _LINES.finditer(text):
        line = m.group(0)
        if not line:
            break
        if fence:
            if line.lstrip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
            continue
        opened = _FENCE.match(line)
        atx = None if opened else _ATX.match(line)
        if opened:
            fence = opened.group(1)
        elif atx:
            yield _Heading(m.start(), len(atx.group(1)), (atx.group(2) or "").strip())
        elif title is not None and _UNDERLINE.match(line):
            yield _Heading(title[0], 1 if line.strip()[0] == "=" else 2, title[1])
        elif line.strip() and not _NOT_PARAGRAPH.match(line):
            title = (m.start(), line.strip()) if title is None else title
            continue
        title = None


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    offsets.extend(m.end() for m in re.finditer("\n", text))
    return offsets


def _front_matter(block: str) -> tuple[dict[str, Any], str]:
    """JSON-typed fields of YAML front matter (see :func:`meta_value`), and a warning when
    it cannot be used: bad YAML, not a mapping, or aliases expanding past the bounds."""
    import yaml  # PyYAML ships with the model stack (transformers)

    loader = yaml.SafeLoader(block)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, ""
        nodes, chars = _expanded_size(node, {}, set())
        if nodes > MAX_YAML_NODES or chars > MAX_YAML_CHARS:
            return {}, (
                f"front matter expands to {nodes} YAML nodes and {chars} characters "
                f"(limit {MAX_YAML_NODES} and {MAX_YAML_CHARS}): indexed without it"
            )
        loaded = loader.construct_document(node)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return {}, f"front matter is not valid YAML ({_reason(exc)}): indexed without it"
    finally:
        loader.dispose()
    if not isinstance(loaded, Mapping):
        return {}, "front matter is not a YAML mapping of fields: indexed without it"
    meta: dict[str, Any] = {}
    for key, value in loaded.items():
        kept = meta_value(value)
        if kept is not DROP and kept is not None:
            meta[str(key)] = kept
    return meta, ""


def _reason(exc: BaseException) -> str:
    """One short line: the parser's problem and the front matter line it is on."""
    problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 2}" if mark is not None else ""  # +1 for the '---'
    return " ".join(str(problem).split())[:120] + where


def _expanded_size(node: Any, memo: dict[int, tuple[int, int]], open_: set[int]) -> tuple[int, int]:
    """(nodes, scalar characters) of ``node`` with every alias expanded, computed without
    expanding: an alias is the same node object, sized once. A node inside itself (a
    recursive alias) counts as unbounded."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        return MAX_YAML_NODES + 1, 0
    if not isinstance(node.value, list):  # a scalar
        size = (1, len(node.value))
    else:
        open_.add(key)
        nodes, chars = 1, 0
        for child in node.value:
            for part in child if isinstance(child, tuple) else (child,):  # mapping pairs
                n, c = _expanded_size(part, memo, open_)
                nodes, chars = nodes + n, chars + c
        open_.discard(key)
        size = (nodes, chars)
    memo[key] = size
    return size
