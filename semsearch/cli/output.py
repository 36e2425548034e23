"""Printing for people: progress, paths they can use, text that cannot drive the terminal."""

from __future__ import annotations

import logging
import os
import re
import sys
import textwrap
import time
import unicodedata
from pathlib import Path
from typing import Any

#: C0/C1 controls and DEL, except tab and newline handled by callers: in a file name or an
#: indexed text they could move the cursor, recolour or retitle the terminal.
#: Bidi controls and line separators too (``rtl\u202egnp.txt`` would show as ``rtltxt.png``),
#: and lone surrogates (bytes of a file name that were not UTF-8).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


#: The escape sequences of colours and styles, as click recognises them.
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def echo(message: str, *, err: bool = False) -> None:
    """One line to stdout (stderr with ``err``): ``typer.echo`` once Typer is loaded (every
    command but a query on the fast path, :mod:`.fast`); before that the same for text on
    POSIX with UTF-8 streams, the only case the fast path runs in: the line and a newline,
    colour codes removed unless the stream is a terminal, and a flush."""
    typer = sys.modules.get("typer")
    if typer is not None:
        typer.echo(message, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    try:
        tty = stream.isatty()
    except Exception:  # as click: a stream that cannot tell is not a terminal
        tty = False
    stream.write((message if tty else _ANSI.sub("", message)) + "\n")
    stream.flush()


def reported(exc: BaseException) -> int:
    """The one line and exit status of a failure any command may meet: a ``SemsearchError``
    (its own status), Ctrl-C (130), an ``OSError`` (disk full, permissions: the index on
    disk is left as it was; 1)."""
    from ..errors import SemsearchError

    if isinstance(exc, SemsearchError):
        echo(f"semsearch: error: {safe(str(exc))}", err=True)
        return exc.exit_code
    if isinstance(exc, OSError):
        echo(
            f"semsearch: error: {safe(exc.strerror or str(exc))}"
            + (f": {safe(str(exc.filename))}" if exc.filename else ""),
            err=True,
        )
        return 1
    echo("semsearch: interrupted", err=True)
    return 130


def safe(text: str, *, newlines: bool = False, name: bool = False) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\u202e``); newlines
    too unless ``newlines``; every format character (zero-width, soft hyphen, ...) too when
    it is a ``name`` (a path), where an invisible character hides what the name is. For
    human output only: JSON stays exact."""
    out = _CONTROL.sub(_escape, text)
    if name:
        out = "".join(_escape_char(c) if unicodedata.category(c) == "Cf" else c for c in out)
    return out if newlines else out.replace("\n", "\\n").replace("\r", "\\r")


def _escape(m: re.Match[str]) -> str:
    return _escape_char(m.group())


def _escape_char(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def display_path(source: str, samples: Path | None = None) -> str:
    """Relative to the working directory when the file is under it; else absolute with
    ``~`` for the home folder; bundled samples as ``samples/NAME``."""
    path = Path(source)
    if not path.is_absolute():
        return safe(source, name=True)
    if samples is not None:
        try:
            return "samples/" + safe(path.relative_to(samples).as_posix(), name=True)
        except ValueError:
            pass
    try:
        return safe(str(path.relative_to(Path.cwd())), name=True)
    except ValueError:
        pass
    home = Path.home()
    try:
        return "~/" + safe(str(path.relative_to(home)), name=True)
    except ValueError:
        return safe(source, name=True)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def color_enabled() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


#: Seconds between progress lines when stderr is not a terminal (a log, CI, a pipe).
PROGRESS_EVERY = 5.0


class Bar:
    """A progress bar on stderr that appears once the total is known; when stderr is not a
    terminal, a plain line every few seconds instead (as pip does), so logs show progress."""

    def __init__(self, label: str, unit: str = "files") -> None:
        self.label, self.unit = label, unit
        self.bar: Any = None
        self.done = 0
        self.said = False
        self.tty = sys.stderr.isatty()
        self.started = self.last = time.monotonic()

    def __enter__(self) -> Bar:
        return self

    def update(self, done: int, total: int) -> None:
        if not self.tty:
            self._line(done, total)
            return
        if self.bar is None:
            import typer

            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def _line(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.said and (now - self.last < PROGRESS_EVERY or done >= total):
            return
        self.said = True  # the first line at once: a log shows what started
        self.last = now
        pct = 100 * done // total if total else 100
        echo(
            f"{self.label}: {done:,}/{total:,} {self.unit} ({pct}%), {now - self.started:.0f}s",
            err=True,
        )

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
