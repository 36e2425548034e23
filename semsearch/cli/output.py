"""Printing for people: progress, paths they can use, text that cannot drive the terminal."""

from __future__ import annotations

import logging
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

#: C0/C1 controls and DEL, except tab and newline handled by callers: in a file name or an
#: indexed text they could move the cursor, recolour or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str, *, newlines: bool = False) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``); newlines too unless
    ``newlines``. For human output only: JSON stays exact."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return out if newlines else out.replace("\n", "\\n").replace("\r", "\\r")


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def display_path(source: str, samples: Path | None = None) -> str:
    """Relative to the working directory when the file is under it; else absolute with
    ``~`` for the home folder; bundled samples as ``samples/NAME``."""
    path = Path(source)
    if not path.is_absolute():
        return safe(source)
    if samples is not None:
        try:
            return "samples/" + safe(path.relative_to(samples).as_posix())
        except ValueError:
            pass
    try:
        return safe(str(path.relative_to(Path.cwd())))
    except ValueError:
        pass
    home = Path.home()
    try:
        return "~/" + safe(str(path.relative_to(home)))
    except ValueError:
        return safe(source)


#: Readers whose line numbers count in extracted text, not in the file: located by section.
_NO_FILE_LINES = frozenset({"html", "docx", "epub", "odt"})


def location(hit: Any, samples: Path | None = None) -> str:
    """Where a hit is, in a form editors and terminals jump to: ``path:line`` for text,
    code and Markdown, ``path p. N`` for a PDF page, ``path:N`` for the row of a data file,
    and ``› Section`` after it when the file has headings (alone for HTML and documents,
    whose extracted lines are not the file's)."""
    where = display_path(hit.source, samples)
    kind = getattr(hit, "kind", "text")
    section = hit.section
    if kind == "record":
        row = str(hit.doc_id).rsplit("#", 1)[-1]
        where += f":{row}" if row.isdigit() else ""
        section = ""
    elif hit.page is not None:
        where += f" p. {hit.page}"
    elif kind not in _NO_FILE_LINES:
        lines = (
            hit.line_start if hit.line_start == hit.line_end else f"{hit.line_start}-{hit.line_end}"
        )
        where += f":{lines}"
    if section:
        where += f" › {safe(section)}"
    return where


def print_hits(
    hits: Sequence[Any], best: list[tuple[int, int]] | None, samples: Path | None
) -> None:
    """Rank, score, location, then the chunk, its best-matching sentence in bold yellow."""
    for rank, h in enumerate(hits, 1):
        note = {"changed": "  [file changed since indexed]", "deleted": "  [file deleted]"}
        typer.echo(f"{rank}. {h.score:.3f}  {location(h, samples)}{note.get(h.stale or '', '')}")
        a, b = best[rank - 1] if best else (0, 0)
        parts = (safe(" ".join(p.split())) for p in (h.text[:a], h.text[a:b], h.text[b:]))
        before, match, after = parts
        body = " ".join(p for p in (before, "\x00" + match + "\x01" if match else "", after) if p)
        wrapped = textwrap.fill(body, width=100, initial_indent="   ", subsequent_indent="   ")
        typer.echo(wrapped.replace("\x00", "\x1b[1;33m").replace("\x01", "\x1b[0m"))
        for more in getattr(h, "more", ()):  # grouped by file: the file's further chunks
            typer.echo(f"   also {location(more, samples)}")
        typer.echo("")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def color_enabled() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


class Bar:
    """A progress bar on stderr that appears once the total is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __enter__(self) -> Bar:
        return self

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


class OneLine(logging.Formatter):
    """Warnings as ``semsearch: warning: ...`` lines, control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO:  # notices: what is happening, not a problem
            return f"semsearch: {safe(record.getMessage())}"
        return f"semsearch: {record.levelname.lower()}: {safe(record.getMessage())}"


def wrap(text: str) -> str:
    return textwrap.fill(text, width=100)
