"""Markdown: headings become sections, YAML front matter becomes metadata.

The text kept is the Markdown source itself (minus the front matter, whose lines are
blanked so line numbers stay true): it reads as clean text and code blocks survive.
Headings are found by markdown-it-py (CommonMark), so a ``#`` inside a code fence or a
setext heading is handled as Markdown defines it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..limits import MAX_YAML_CHARS, MAX_YAML_NODES
from .base import DROP, Extracted, Reader, SectionBuilder, heading_path, meta_value
from .text import decode

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


class MarkdownReader(Reader):
    kind = "markdown"
    suffixes = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})

    def read(self, data: bytes, name: str) -> Extracted:
        from markdown_it import MarkdownIt  # core dependency (via rich); heavy-ish import

        text = decode(data)
        meta: dict[str, Any] = {}
        warning = ""
        m = _FRONT.match(text)
        if m:
            meta, warning = _front_matter(m.group(1))
            text = "\n" * text.count("\n", 0, m.end()) + text[m.end() :]
        tokens = MarkdownIt("commonmark").parse(text)
        line_starts = _line_offsets(text)
        out = SectionBuilder()
        stack: list[tuple[int, str]] = []
        title = str(meta.get("title") or "")
        pos = 0
        for i, tok in enumerate(tokens):
            if tok.type != "heading_open" or tok.map is None:
                continue
            level = int(tok.tag[1])
            heading = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            start = line_starts[tok.map[0]]
            out.add(text[pos:start])
            pos = start
            out.begin(heading=heading_path(stack, level, heading))
            if not title and level == 1:
                title = heading
        out.add(text[pos:])
        body, sections = out.finish()
        warnings = out.warnings(warning)
        return Extracted(body, self.kind, title or name, sections, meta or None, warnings)


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
