"""The ``semsearch`` command: parsing and printing only; the work happens in :mod:`semsearch.api`.

Every ``SemsearchError`` becomes one line on stderr and its exit code, here and only here.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import sys
import threading

import typer
from typer.models import CommandInfo

from ..errors import SemsearchError
from . import eval as _eval  # noqa: F401  (each module registers its commands on app)
from . import index as _index  # noqa: F401
from . import info as _info  # noqa: F401
from . import ls as _ls  # noqa: F401
from . import optimize as _optimize  # noqa: F401
from . import query as _query  # noqa: F401
from . import serve as _serve  # noqa: F401  (serve, mcp)
from . import show as _show  # noqa: F401
from . import verify as _verify  # noqa: F401  (verify, repair)
from . import watch as _watch  # noqa: F401
from .app import app
from .output import OneLine, safe

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every expected failure into one line + exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    logger = logging.getLogger("semsearch")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    _light_start(sys.argv[1:] if argv is None else argv)
    try:
        result = _narrowed(argv)(args=argv, prog_name="semsearch", standalone_mode=False)
    except SemsearchError as exc:
        typer.echo(f"semsearch: error: {safe(str(exc))}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("semsearch: interrupted", err=True)
        return 130
    except typer.TyperException as exc:  # command-line parsing errors: usage, exit 2
        fmt = getattr(exc, "format_message", None)
        message = fmt() if fmt is not None else str(exc)
        if message:  # empty when help was shown for a bare command
            typer.echo(f"semsearch: error: {safe(message)} (see semsearch --help)", err=True)
        return int(getattr(exc, "exit_code", 2))
    except OSError as exc:  # disk full, permissions: the index on disk is left as it was
        typer.echo(
            f"semsearch: error: {safe(exc.strerror or str(exc))}"
            + (f": {safe(str(exc.filename))}" if exc.filename else ""),
            err=True,
        )
        return 1
    if result == 130:  # Typer turns Ctrl-C into a silent exit status 130
        typer.echo("semsearch: interrupted", err=True)
    return result if isinstance(result, int) else 0


def _narrowed(argv: list[str] | None) -> typer.Typer:
    """:data:`app` with only the command ``argv`` starts with, when it names one: Typer builds
    the parser of every registered command before it dispatches, and one runs. The root
    options, help and a mistyped command get the whole app."""
    args = sys.argv[1:] if argv is None else argv
    named = [c for c in app.registered_commands if args and _command_name(c) == args[0]]
    if len(named) != 1:
        return app
    narrow = copy.copy(app)
    narrow.registered_commands = named
    return narrow


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


def _command_name(command: CommandInfo) -> str | None:
    """The name Typer gives a registered command."""
    if command.name:
        return command.name
    callback = command.callback
    return callback.__name__.lower().replace("_", "-") if callback is not None else None


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
