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


#: Most definitions marked in one file: past them the rest of the file is chunked without
#: names (a 32 MB file of one-line functions would otherwise make millions of sections).
MAX_DEFINITIONS = 10_000
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class Outline(NamedTuple):
    """A file's definition sections, and whether ``MAX_DEFINITIONS`` cut them short."""

    sections: tuple[Section, ...]
    cut: bool = False


def language_of(name: str) -> str | None:
    """The language family of a file name, or None when definitions are not looked for."""
    dot = name.rfind(".")
    return _LANGUAGE_OF.get(name[dot:].lower()) if dot >= 0 else None


def definition_sections(text: str, name: str) -> Outline:
    """Sections of ``text``, one per definition, headed by its qualified name; none when
    the language is unknown or no definition is found. One pass over the lines, memory
    bounded by the sections kept."""
    language = language_of(name)
    if language is None:
        return Outline(())
    patterns = _COMPILED[language]
    out: list[Section] = []
    current: tuple[int, str] | None = None  # start and heading of the open section
    containers: list[tuple[int, str]] = []  # enclosing classes, modules...: indent, name
    nest: list[tuple[int, bool]] = []  # every enclosing definition: indent, is a container
    lead = -1  # where the comments and decorators right above this line start (-1: none)
    prev_start, prev_line, lead_before_prev = -1, "", -1
    for m in _LINE.finditer(text):
        pos, line = m.start(), m.group()
        if not line.strip() or len(line) > _MAX_LINE:
            lead, prev_start = -1, -1
            continue
        indent = len(line) - len(line.lstrip())
        while nest and nest[-1][0] >= indent:
            nest.pop()
        found = _match(patterns, line, language)
        if found is None:
            lead_before_prev, prev_start, prev_line = lead, pos, line
            lead = (pos if lead < 0 else lead) if _LEAD.match(line) else -1
            continue
        head, container = found
        inside_function = bool(nest) and not nest[-1][1]
        nest.append((indent, container))
        if inside_function:
            lead, prev_start = -1, -1
            continue
        start = lead if lead >= 0 else pos
        # GNU-style C: the return type on the line above the name belongs to the function.
        c_type = prev_start >= 0 and _C_TYPE_LINE.match(prev_line.rstrip("\r\n"))
        if language == "c" and lead < 0 and c_type:
            start = lead_before_prev if lead_before_prev >= 0 else prev_start
        while containers and containers[-1][0] >= indent:
            containers.pop()
        if current is not None:
            out.append(Section(current[0], start, None, current[1]))
        if len(out) >= MAX_DEFINITIONS:
            return Outline(tuple(out), cut=True)
        current = (start, ".".join([*(c[1] for c in containers), head]))
        if container:
            containers.append((indent, head))
        lead, prev_start = -1, -1
    if current is not None:
        out.append(Section(current[0], len(text), None, current[1]))
    return Outline(tuple(out))


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
