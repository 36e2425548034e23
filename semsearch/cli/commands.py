"""The Typer application with every command registered, and how it runs: the whole command
line but a plain query, which :mod:`semsearch.cli` answers without Typer (:mod:`.fast`)."""

from __future__ import annotations

import copy
import sys

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
from .output import reported, safe

__all__ = ["app", "typer_main"]


def typer_main(argv: list[str] | None = None) -> int:
    """Run the app through Typer, turning every expected failure into one line + exit code."""
    try:
        result = _narrowed(argv)(args=argv, prog_name="semsearch", standalone_mode=False)
    except (SemsearchError, KeyboardInterrupt, OSError) as exc:
        return reported(exc)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("semsearch: interrupted", err=True)
        return 130
    except typer.TyperException as exc:  # command-line parsing errors: usage, exit 2
        fmt = getattr(exc, "format_message", None)
        message = fmt() if fmt is not None else str(exc)
        if message:  # empty when help was shown for a bare command
            typer.echo(f"semsearch: error: {safe(message)} (see semsearch --help)", err=True)
        return int(getattr(exc, "exit_code", 2))
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


def _command_name(command: CommandInfo) -> str | None:
    """The name Typer gives a registered command."""
    if command.name:
        return command.name
    callback = command.callback
    return callback.__name__.lower().replace("_", "-") if callback is not None else None
