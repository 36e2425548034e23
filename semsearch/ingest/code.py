"""Definitions in source code: each function, class or method is a section of its own.

A section is what chunks never cross, and its heading is what a hit reports, so every
chunk of code lies inside one definition and carries its qualified name (``Foo.bar``).
Found line by line with one pattern per language family and the indentation, not a
parser: tree-sitter's bundled-grammar packages either fetch grammars at run time (no
network here) or are no longer kept (docs/code-search.md). A definition nested in a
function stays part of that function; one nested in a class (or module, impl, ...) is its
own section. Comments and decorators directly above a definition belong to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from .document import Section

_C_HEAD = r"^(?:[A-Za-z_][\w]*[\s\*]+)*\*?(?P<name>[A-Za-z_]\w*)\s*\([^;{]*(?:\{\s*)?$"
_PATTERNS: dict[str, tuple[str, ...]] = {
    "python": (r"^\s*(?:async\s+)?(?P<kind>def|class)\s+(?P<name>\w+)",),
    "js": (
        r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?(?P<kind>class|interface|enum)"
        r"\s+(?P<name>\w+)",
        r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(?P<name>\w+)",
        r"^\s*(?:export\s+)?(?:const|let|var)\s+(?P<name>\w+)\s*(?::[^=]+)?=\s*(?:async\s*)?"
        r"(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|\w+\s*=>)",
        r"^\s+(?:(?:public|private|protected|static|async|readonly|get|set|override)\s+)*"
        r"(?!(?:if|for|while|switch|catch|return|function|new)\b)(?P<name>\w+)\s*\([^)]*\)"
        r"\s*(?::\s*[^{]+)?\{\s*$",
    ),
    "go": (
        r"^func\s+(?:\([^)]*\)\s*)?(?P<name>\w+)",
        r"^type\s+(?P<name>\w+)\s+(?P<kind>struct|interface)",
    ),
    "ruby": (r"^\s*(?P<kind>def|class|module)\s+(?:self\.)?(?P<name>[\w:]+[?!=]?)",),
    "php": (
        r"^\s*(?:abstract\s+|final\s+)?(?P<kind>class|interface|trait)\s+(?P<name>\w+)",
        r"^\s*(?:(?:public|private|protected|static|abstract|final)\s+)*function\s+&?"
        r"(?P<name>\w+)",
    ),
    "shell": (r"^\s*(?:function\s+(?P<name>[\w.:-]+)|(?P<name2>[\w.:-]+)\s*\(\s*\))",),
    "elixir": (
        r"^\s*(?P<kind>defmodule|defprotocol|defimpl|defp?|defmacrop?)\s+(?P<name>[\w.?!]+)",
    ),
    "rust": (
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|const\s+|unsafe\s+)*fn\s+(?P<name>\w+)",
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?P<kind>struct|enum|trait|mod)\s+(?P<name>\w+)",
        r"^\s*(?P<kind>impl)(?:<[^>]*>)?\s+(?:[\w:<>, ]+\s+for\s+)?(?P<name>\w+)",
    ),
    "c": (
        r"^(?:typedef\s+)?(?P<kind>struct|union|enum|class|namespace)\s+(?P<name>\w+)\s*[:{]?[^;]*$",
        _C_HEAD,
    ),
}
_LANGUAGES = {
    "python": ".py .pyi",
    "js": ".js .mjs .cjs .jsx .ts .tsx .vue .svelte",
    "go": ".go",
    "ruby": ".rb",
    "php": ".php",
    "shell": ".sh .bash .zsh",
    "elixir": ".ex .exs",
    "rust": ".rs",
    "c": ".c .h .cc .cpp .cxx .hpp .hh",
}
_LANGUAGE_OF = {s: lang for lang, suffixes in _LANGUAGES.items() for s in suffixes.split()}
_COMPILED = {lang: [re.compile(p) for p in ps] for lang, ps in _PATTERNS.items()}
#: Kinds that hold definitions of their own (a def inside a def stays in its function).
_CONTAINERS = frozenset(
    "class interface module defmodule defprotocol defimpl impl trait namespace".split()
)
_C_NOT_FUNCTIONS = frozenset("if for while switch return sizeof else do case".split())
_LEAD = re.compile(r"\s*(#|//|/\*|\*|@|--|%|;)")
# C's return type on a line of its own above the function's name (GNU style).
_C_TYPE_LINE = re.compile(r"[A-Za-z_][\w \t\*]*$")
#: Lines longer than this are never definition heads (minified code): bounded regex work.
_MAX_LINE = 400


class _Head(NamedTuple):
    line: int
    indent: int
    name: str
    container: bool


def language_of(name: str) -> str | None:
    """The language family of a file name, or None when definitions are not looked for."""
    dot = name.rfind(".")
    return _LANGUAGE_OF.get(name[dot:].lower()) if dot >= 0 else None


def definition_sections(text: str, name: str) -> tuple[Section, ...]:
    """Sections of ``text``, one per definition, headed by its qualified name; nothing
    when the language is unknown or no definition is found."""
    language = language_of(name)
    if language is None:
        return ()
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    heads = list(_heads(lines, language))
    if not heads:
        return ()
    out = []
    stack: list[_Head] = []  # enclosing definitions
    starts = [_start_with_lead(lines, h.line, language) for h in heads]
    for n, head in enumerate(heads):
        while stack and stack[-1].indent >= head.indent:
            stack.pop()
        path = ".".join([*(h.name for h in stack), head.name])
        end = starts[n + 1] if n + 1 < len(heads) else len(lines)
        out.append(Section(offsets[starts[n]], offsets[end], None, path))
        if head.container:
            stack.append(head)
    return tuple(out)


def _heads(lines: list[str], language: str) -> Iterator[_Head]:
    """Definition lines that start a section (not those nested inside a function)."""
    patterns = _COMPILED[language]
    stack: list[_Head] = []
    for i, line in enumerate(lines):
        if len(line) > _MAX_LINE or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1].indent >= indent:
            stack.pop()
        found = _match(patterns, line, language)
        if found is None:
            continue
        name, container = found
        head = _Head(i, indent, name, container)
        if not stack or stack[-1].container:
            yield head
        stack.append(head)


def _match(patterns: list[re.Pattern[str]], line: str, language: str) -> tuple[str, bool] | None:
    for p in patterns:
        m = p.match(line)
        if m is None:
            continue
        groups = m.groupdict()
        name = groups.get("name") or groups.get("name2") or ""
        if language == "c" and (name in _C_NOT_FUNCTIONS or line[0].isspace()):
            continue
        return name, groups.get("kind") in _CONTAINERS
    return None


def _start_with_lead(lines: list[str], i: int, language: str) -> int:
    """The first line of the comments and decorators (and C return type) right above
    line ``i``."""
    if language == "c" and i > 0 and _C_TYPE_LINE.match(lines[i - 1].rstrip("\r\n")):
        i -= 1
    while i > 0 and lines[i - 1].strip() and _LEAD.match(lines[i - 1]):
        i -= 1
    return i
