"""Definitions in source code: each function, class or method is a section of its own.

A section is what chunks never cross, and its heading is what a hit reports, so every
chunk of code lies inside one definition and carries its qualified name (``Foo.bar``).
Found line by line with one pattern per language family and the indentation, not a
parser: on our benchmark's trees in eight languages the patterns find the definitions
tree-sitter's grammars find (by name, per file) at several times the speed and with no
15 MB of grammars (docs/code-search.md, "tree-sitter"). A definition nested in a
function stays part of that function; one nested in a class (or module, impl, ...) is its
own section, and Go methods are named after their receiver (``ServeMux.Handle``).
Comments, decorators and Elixir's ``@doc`` heredocs directly above a definition belong to
it; consecutive clauses or overloads of one function are one section. Scripts without a
suffix are recognised by their ``#!`` line or editor mode line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .document import Section

_C_HEAD = r"^(?:[A-Za-z_][\w]*[\s\*]+)*\*?(?P<name>[A-Za-z_]\w*)\s*\([^;{]*(?:\{\s*)?$"
_PATTERNS: dict[str, tuple[str, ...]] = {
    "python": (r"^\s*(?:async\s+)?(?P<kind>def|class)\s+(?P<name>\w+)",),
    "js": (
        r"^\s*(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?"
        r"(?P<kind>class|interface|enum)\s+(?P<name>[\w$]+)",
        r"^\s*(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:async\s+)?function\s*\*?\s*"
        r"(?P<name>[\w$]+)",
        r"^\s*(?:export\s+)?(?:const|let|var)\s+(?P<name>[\w$]+)\s*(?::[^=]+)?=\s*"
        r"(?:async\s*)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[\w$]+\s*=>)",
        # Top-level exports are definitions whatever they hold (zod's `export const
        # $ZodString = core.$constructor(...)`), and so are TypeScript type aliases.
        r"^(?:export\s+)(?:declare\s+)?(?:const|let|var)\s+(?P<name>[\w$]+)",
        r"^(?:export\s+)?(?:declare\s+)?type\s+(?P<name>[\w$]+)\s*(?:<[^=]*>)?\s*=",
        # `Foo.prototype.bar = function` and `module.exports.bar = function`.
        r"^(?:[\w$]+\.)+(?P<name>[\w$]+)\s*=\s*(?:async\s+)?function\b",
        r"^\s+(?:(?:public|private|protected|static|async|readonly|get|set|override)\s+)*"
        r"\*?(?!(?:if|for|while|switch|catch|return|function|new)\b)(?P<name>[\w$]+)\s*"
        r"(?:<[^>]*>)?\([^)]*\)\s*(?::\s*[^{]+)?\{\s*$",
    ),
    "go": (
        r"^func\s+(?:\(\s*(?:\w+\s+)?\*?(?P<receiver>\w+)[^)]*\)\s*)?(?P<name>\w+)",
        r"^type\s+(?P<name>\w+)\b",
    ),
    "ruby": (
        r"^\s*(?P<kind>class|module)\s+(?P<name>[\w:]+)",
        r"^\s*def\s+(?:self\.)?(?P<name>[\w]+[?!=]?|[-+*/%<=>!~^&|\[\]]+)",
    ),
    "php": (
        r"^\s*(?:(?:abstract|final|readonly)\s+)*(?P<kind>class|interface|trait|enum)\s+"
        r"(?P<name>\w+)",
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
# Files without a known suffix (shell scripts mostly): the interpreter of a ``#!`` line, or
# an editor's mode line (``-*- shell-script -*-``, ``vim: ft=sh``) in the first lines.
_INTERPRETERS = {
    "sh": "shell", "bash": "shell", "zsh": "shell", "ksh": "shell", "dash": "shell",
    "python": "python", "python3": "python", "ruby": "ruby", "node": "js", "php": "php",
    "elixir": "elixir",
}  # fmt: skip
_SHEBANG = re.compile(rb"#!\s*(?:\S*/)?([A-Za-z]+)[\d.]*(?:\s+(?:-\S+\s+)*([A-Za-z]+)[\d.]*)?")
_MODE_LINE = re.compile(
    rb"-\*-\s*(?:mode:\s*)?(sh|shell-script|bash|python|ruby|js|javascript|php|elixir)"
    rb"\s*;?.*-\*-|\b(?:vim?|ex):.*\b(?:ft|filetype)=(sh|bash|zsh|python|ruby|php|elixir)\b"
)
_MODES = {"shell-script": "shell", "javascript": "js", **_INTERPRETERS}
#: How much of a file's start is looked at for a ``#!`` or mode line.
_HEAD = 512
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


def language_of(name: str, head: str | bytes = b"") -> str | None:
    """The language family of a file, by its name's suffix, else by the ``#!`` line or an
    editor mode line in ``head`` (its first bytes); None when definitions are not looked
    for."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    found = _LANGUAGE_OF.get(base[dot:].lower()) if dot > 0 else None
    return found or (language_of_content(head) if head else None)


def language_of_content(head: str | bytes) -> str | None:
    """The language a file's first bytes name: a ``#!`` interpreter (``env`` skipped) or
    an Emacs/Vim mode line in its first three lines."""
    data = head.encode("utf-8", "replace") if isinstance(head, str) else head
    data = data[:_HEAD]
    if data.startswith(b"#!"):
        m = _SHEBANG.match(data)
        if m is not None:
            program = (m.group(2) if m.group(1) == b"env" and m.group(2) else m.group(1)) or b""
            found = _INTERPRETERS.get(program.decode("ascii").lower())
            if found:
                return found
    m = _MODE_LINE.search(b"\n".join(data.split(b"\n", 3)[:3]))
    if m is None:
        return None
    return _MODES.get((m.group(1) or m.group(2)).decode("ascii").lower())


def definition_sections(text: str, name: str) -> Outline:
    """Sections of ``text``, one per definition, headed by its qualified name; none when
    the language is unknown or no definition is found. One pass over the lines, memory
    bounded by the sections kept."""
    language = language_of(name, text[:_HEAD])
    if language is None:
        return Outline(())
    # Elixir's documentation heredocs (@doc """...""") hold example code: never heads.
    heredoc = '"""' if language == "elixir" else None
    in_heredoc = False
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
        if heredoc is not None and (in_heredoc or line.count(heredoc) % 2):
            # Inside, or opening: `@doc """` leads into what follows, like a comment.
            if not in_heredoc:
                lead = (pos if lead < 0 else lead) if _LEAD.match(line) else -1
            in_heredoc ^= line.count(heredoc) % 2 == 1
            prev_start = -1
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
        qualified = ".".join([*(c[1] for c in containers if c[0] < indent), head])
        if current is not None and current[1] == qualified and not container:
            # Another clause or overload of the same function (Elixir's `def f(0)`, `def
            # f(n)`; TypeScript's signatures): one section.
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
        if groups.get("receiver"):  # a Go method: named after its receiver's type
            name = f"{groups['receiver']}.{name}"
        return name, groups.get("kind") in _CONTAINERS
    return None
