"""Hits as people scan them, grep-style: one hit is its location, its score and its best
sentence on one line; ``--full`` shows the chunk (code and preformatted text keep their
lines), ``-l`` only the files, ``-C/-A/-B`` lines around the match read from the file."""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..api.hits import file_lines, location
from .output import display_path, echo, safe

if TYPE_CHECKING:
    from ..api.hits import Hit

#: Longest best-sentence line printed (characters), and longest line read from a file.
SENTENCE_CHARS = 200
LINE_CHARS = 1000
#: ANSI colours as ripgrep uses them: path magenta, line numbers green, match bold red.
_PATH, _NUM, _MATCH, _DIM, _OFF = "\x1b[35m", "\x1b[32m", "\x1b[1;31m", "\x1b[2m", "\x1b[0m"
_STALE = {"changed": "  [file changed since indexed]", "deleted": "  [file deleted]"}


@dataclass(frozen=True)
class Style:
    """How hits print: ``full`` chunk or best sentence, ``before``/``after`` file lines."""

    full: bool = False
    before: int = 0
    after: int = 0
    color: bool = False


def shown_location(hit: Hit, samples: Path | None = None) -> str:
    """The hit's location (:func:`semsearch.api.hits.location`) with the path as people
    read it here (relative, ``~``, ``samples/``) and control characters escaped."""
    return safe(location(hit, display_path(hit.source, samples)))


def print_files(hits: Sequence[Hit], samples: Path | None) -> None:
    """``-l``: each file with a hit once, best first."""
    for path in dict.fromkeys(display_path(h.source, samples) for h in hits):
        echo(path)


def print_hits(
    hits: Sequence[Hit], best: Sequence[tuple[int, int]], samples: Path | None, style: Style
) -> None:
    for n, h in enumerate(hits):
        a, b = best[n] if n < len(best) else (0, len(h.text))
        where = shown_location(h, samples) + _STALE.get(h.stale or "", "")
        score = f"{h.score:.3f}"
        if style.color:
            where, score = _PATH + where + _OFF, _DIM + score + _OFF
        echo(f"{where}  {score}")
        if style.full:
            echo(_chunk(h, a, b, style.color))
        elif style.before or style.after:
            echo(_file_context(h, a, style) or _sentence(h.text[a:b]))
        else:
            echo("  " + _sentence(h.text[a:b]))
        for more in h.more:  # grouped by file: the file's further chunks
            echo(f"  also {safe(location(more, display_path(more.source, samples)))}")
        if h.also_in:
            also = ", ".join(display_path(s, samples) for s in h.also_in)
            echo(f"  also in: {also}")
        if style.full or style.before or style.after:
            echo("--" if not style.full else "")


def _sentence(text: str) -> str:
    """One line: whitespace collapsed, cut at ``SENTENCE_CHARS``."""
    line = " ".join(text.split())
    if len(line) > SENTENCE_CHARS:
        line = line[: SENTENCE_CHARS - 1].rstrip() + "…"
    return safe(line)


def _chunk(h: Hit, a: int, b: int, color: bool) -> str:
    """The whole chunk: prose paragraphs reflowed to 100 columns, code and preformatted
    paragraphs as written; the best sentence marked on a colour terminal."""
    text = h.text
    if color and b > a:
        text = text[:a] + "\x00" + text[a:b] + "\x01" + text[b:]
    out = []
    for para in re.split(r"\n[ \t]*\n", text):
        if h.kind == "code" or _preformatted(para):
            out.append(textwrap.indent(safe(para, newlines=True), "  "))
        else:
            out.append(
                textwrap.fill(
                    safe(" ".join(para.split())),
                    width=100,
                    initial_indent="  ",
                    subsequent_indent="  ",
                )
            )
    shown = "\n\n".join(p for p in out if p.strip())
    return shown.replace("\x00", _MATCH).replace("\x01", _OFF)


def _preformatted(para: str) -> bool:
    """Indented lines, fences or tables: text whose line breaks carry meaning."""
    return any(
        line.startswith(("    ", "\t", "```", "~~~", "|", ">>>")) for line in para.splitlines()
    )


def _file_context(h: Hit, a: int, style: Style) -> str | None:
    """The best sentence's line in the file with ``before``/``after`` lines around it,
    grep-style (``12:`` the match, ``11-`` context); None where the file's lines are not
    the hit's (HTML, PDF, documents) or the file changed since it was indexed."""
    lines = file_lines(h)
    if lines is None or h.stale is not None:
        return None
    match = lines[0] + h.text[:a].count("\n")
    first = max(1, match - style.before)
    try:
        with open(h.source, encoding="utf-8", errors="replace") as f:
            wanted = list(itertools.islice(f, first - 1, match + style.after))
    except OSError:
        return None
    out = []
    for n, line in enumerate(wanted, first):
        mark = ":" if n == match else "-"
        num = f"{_NUM}{n}{_OFF}" if style.color else str(n)
        body = safe(line.rstrip("\r\n")[:LINE_CHARS])
        if style.color and n == match:
            body = _MATCH + body + _OFF
        out.append(f"{num}{mark}{body}")
    return "\n".join(out) or None
