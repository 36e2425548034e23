"""Keeping Ray's own log lines out of the user's terminal during a build (unless --verbose).

Ray's C++ core writes some lines straight to file descriptor 2, out of reach of Python
logging, so the only place to drop them is the descriptor itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

#: A log line of Ray's C++ core ("[2026-01-01 10:00:00,123 E 123 123] file.cc:1: ...") or of
#: its Python loggers ("2026-01-01 10:00:00,123<TAB>WARNING file.py:1 -- ...").
_RAY_LOG_LINE = re.compile(
    rb"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z] \d+ \d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t[A-Z]+ )"
)


@contextlib.contextmanager
def ray_log_lines_hidden(hide: bool) -> Iterator[None]:
    """Drop Ray's own log lines from this process's stderr for the build, keep everything else.

    Ray's C++ core writes some lines straight to file descriptor 2 (e.g. advice logged at error
    level whenever an actor that may be restarted is created), out of reach of Python logging.
    So fd 2 becomes a pipe for the build; a thread passes our own output (messages, progress)
    through as it comes and drops whole lines that look like Ray's log lines. Ray keeps them in
    its session log files, and a failure still reaches the caller as an exception.
    """
    if not hide:
        yield
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no usable fd 2: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_forward, args=(read_end, terminal), daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last write end closes: the thread sees end of file
        thread.join(timeout=5)
        if not thread.is_alive():
            os.close(read_end)
            os.close(terminal)


def _forward(read_end: int, terminal: int) -> None:
    """Copy the pipe to the terminal, minus Ray's log lines. Output without a newline (a
    progress bar redrawn with ``\\r``) is passed on at once, except a tail that may be the
    start of a Ray line, which waits for the rest of its line."""
    pending = b""
    while True:
        try:
            data = os.read(read_end, 65536)
        except OSError:
            return
        if not data:
            if pending:
                _write_all(terminal, pending)
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        out = b"".join(_without_ray(line) for line in lines)
        hold = next((i for i in range(len(pending)) if _may_start_ray(pending[i:])), len(pending))
        out, pending = out + pending[:hold], pending[hold:]
        if out:
            _write_all(terminal, out)


#: How Ray's log lines begin, with 0 for any digit.
_RAY_STARTS = (b"[0000-00-00 00:00:00,", b"0000-00-00 00:00:00,")


def _may_start_ray(text: bytes) -> bool:
    return any(
        all(
            c in b"0123456789" if t == ord("0") else c == t
            for c, t in zip(text, start, strict=False)  # a prefix of either is enough
        )
        for start in _RAY_STARTS
    )


def _without_ray(line: bytes) -> bytes:
    """A complete line, its newline put back, minus a Ray log line in it: Ray's part runs to
    the end of the line (with the newline), and may follow a progress bar's last redraw."""
    found = _RAY_LOG_LINE.search(line)
    return line + b"\n" if found is None else line[: found.start()]


def _write_all(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]
