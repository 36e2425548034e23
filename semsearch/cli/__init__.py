"""The ``semsearch`` command: parsing and printing only; the work happens in :mod:`semsearch.api`.

Every ``SemsearchError`` becomes one line on stderr and its exit code, here and only here
(:func:`.output.reported`). Light to import: a plain ``semsearch query`` is parsed by
:mod:`.fast` and never loads Typer; everything else goes through :mod:`.commands`.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading

from .output import OneLine

__all__ = ["main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning every expected failure into one line + exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    logger = logging.getLogger("semsearch")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    args = sys.argv[1:] if argv is None else argv
    _light_start(args)
    from .fast import fast_query

    code = fast_query(args)
    if code is not None:
        return code
    from .commands import typer_main

    return typer_main(argv)


#: Commands that run once and exit, where start-up is most of the time.
_ONE_SHOT = ("query",)


def _light_start(args: list[str]) -> None:
    """Before NumPy loads (nothing on the CLI's path has imported it yet), a one-shot
    command's NumPy gets one BLAS thread: its OpenBLAS otherwise starts a thread per core as
    it loads, and their busy-waiting cost a cold query ~0.03 s of CPU on the 2-core machine
    (docs/front-door.md, stop 30). A query's products already stay on one thread
    (``index.base.row_dots`` keeps each below OpenBLAS's threading size) and the ONNX session
    has threads of its own. A value the user set is kept."""
    if args and args[0] in _ONE_SHOT:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


#: Commands that only read and print, whose process may end without tearing the interpreter
#: down (:func:`_exit_now`); with no command (``--help``, ``--version``) it may too.
_QUICK_EXIT = ("query", "show", "ls", "info")


def run() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    code = main()
    if not args or args[0] in _QUICK_EXIT or args[0].startswith("-"):
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """End the process once its answer is out, skipping the interpreter's teardown: freeing
    every module, the ONNX session and the NumPy and SQLite objects one by one took a cold
    query 0.05-0.1 s after its last line was printed (docs/front-door.md, stop 31). What an
    exit must still do is done first, as the interpreter does it: wait for the threads that
    are not daemons, run the ``atexit`` handlers (logging's flush among them), flush stdout
    and stderr. When a flush fails (a closed pipe), the ordinary exit reports it as before."""
    # The interpreter's own first step: tell idle pool workers (concurrent.futures, the
    # embedder's lanes) to stop, then wait for every thread that is not a daemon; joining
    # them directly would wait forever on an idle worker.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:
        return
    shutdown()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
