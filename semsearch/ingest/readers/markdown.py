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

from .base import Extracted, Reader, SectionBuilder, heading_path
from .text import decode

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


class MarkdownReader(Reader):
    kind = "markdown"
    suffixes = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})

    def read(self, data: bytes, name: str) -> Extracted:
        from markdown_it import MarkdownIt  # core dependency (via rich); heavy-ish import

        text = decode(data)
        meta: dict[str, Any] = {}
        m = _FRONT.match(text)
        if m:
            meta = _front_matter(m.group(1))
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
        return Extracted(body, self.kind, title or name, sections, meta or None)


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    offsets.extend(m.end() for m in re.finditer("\n", text))
    return offsets


def _front_matter(block: str) -> dict[str, Any]:
    """Scalar (and list-of-scalar) YAML fields; anything else, or bad YAML, is ignored."""
    import yaml  # PyYAML ships with the model stack (transformers)

    try:
        loaded = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    if not isinstance(loaded, Mapping):
        return {}
    meta: dict[str, Any] = {}
    for key, value in loaded.items():
        if isinstance(value, (str, int, float, bool)) or _scalar_list(value):
            meta[str(key)] = value
        elif value is not None:
            meta[str(key)] = str(value)
    return meta


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)
