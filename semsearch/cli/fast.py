"""A plain ``semsearch query`` answered without importing Typer (~0.05 s of a cold query's CPU,
docs/front-door.md, stop 32).

The options are still declared once, for Typer, in :mod:`.query`. :data:`.query_params.PARAMS`
is what Typer builds from that declaration, written out by ``python -m semsearch.cli.fast``
(a test checks it still matches). The command line is parsed here only when every word is
one this table answers as click would (an option it lists, ``--name value``, ``--name=value``,
``-x value``, a flag, the one query text) and every value converts and is in bounds; anything
else (``--help``, a typo, a bad value, ``-k5``, ``--``) goes to Typer, whose message and exit
status stay the only ones. So does every other command, and Windows or a stream whose
encoding click would replace (its ``echo`` differs there).
"""

from __future__ import annotations

import codecs
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SemsearchError


class Param(NamedTuple):
    """One parameter of the query command as click parses it."""

    name: str  #: the Python parameter it fills
    opts: tuple[str, ...]  #: its option names; () for the query text
    kind: str  #: "str", "int", "float", "path", "flag" or "choice"
    default: Any
    multiple: bool = False
    low: float | None = None  #: the least value allowed (inclusive)
    choices: tuple[str, ...] = ()


def fast_query(args: Sequence[str]) -> int | None:
    """The exit status of ``semsearch query ...`` answered without Typer, or None when Typer
    must parse ``args`` (the whole command line, command name first)."""
    if not args or args[0] != "query" or os.name != "posix" or not _plain_streams():
        return None
    from .query_params import PARAMS

    values = parse(args[1:], PARAMS)
    if values is None:
        return None
    from .output import reported
    from .querying import answer

    try:
        return answer(**values)
    except (SemsearchError, KeyboardInterrupt, OSError) as exc:
        return reported(exc)


def _plain_streams() -> bool:
    """stdout and stderr as click's ``echo`` uses them unchanged: text streams whose encoding
    is not ASCII (which click would replace with UTF-8)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or getattr(stream, "errors", None) is None:
            return False
        try:
            if codecs.lookup(encoding).name == "ascii":
                return False
        except LookupError:
            return False
    return True


def parse(words: Sequence[str], params: Sequence[Param]) -> dict[str, Any] | None:
    """The values Typer would call the command with, or None when ``words`` holds anything
    this parser does not answer exactly as click does."""
    by_opt = {o: p for p in params for o in p.opts}
    argument = [p for p in params if not p.opts]
    given: dict[str, Any] = {}
    texts: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--" or not word.startswith("-") or word == "-":
            if word == "--":
                return None
            texts.append(word)
            continue
        name, eq, attached = word.partition("=") if word.startswith("--") else (word, "", "")
        p = by_opt.get(name)
        if p is None:
            return None
        if p.kind == "flag":
            if eq:
                return None
            given[p.name] = True
            continue
        if eq:
            raw = attached
        elif i < len(words):
            raw = words[i]
            i += 1
        else:
            return None
        value = _converted(p, raw)
        if value is None:
            return None
        if p.multiple:
            given.setdefault(p.name, []).append(value)
        else:
            given[p.name] = value
    if len(argument) != 1 or len(texts) != 1:
        return None
    given[argument[0].name] = texts[0]
    return {p.name: given.get(p.name, p.default) for p in params}


def _converted(p: Param, raw: str) -> Any:
    """``raw`` as click converts it for ``p`` (and Typer after it), or None when click would
    refuse it (Typer then says why)."""
    value: Any
    try:
        if p.kind == "int":
            value = int(raw)
        elif p.kind == "float":
            value = float(raw)
        else:
            value = raw
    except ValueError:
        return None
    if p.low is not None and value < p.low:
        return None
    if p.kind == "choice" and value not in p.choices:
        return None
    if p.kind == "path":
        # click refuses a path that exists but cannot be read
        if os.path.exists(raw) and not os.access(raw, os.R_OK):
            return None
        return Path(raw)
    return value


def describe() -> tuple[Param, ...]:
    """The query command's parameters as Typer builds them from :mod:`.query`: what
    :data:`.query_params.PARAMS` must be. Raises ValueError for a parameter this parser
    cannot answer for (then it needs teaching, or the option goes)."""
    import typer.main

    from .commands import _narrowed

    group: Any = typer.main.get_command(_narrowed(["query"]))
    return tuple(_param(p) for p in group.commands["query"].params)


def _param(p: Any) -> Param:
    kind = {
        "IntParamType": "int", "IntRange": "int", "FloatParamType": "float",
        "FloatRange": "float", "StringParamType": "str", "TyperPath": "path",
        "TyperChoice": "choice", "BoolParamType": "flag",
    }.get(type(p.type).__name__)  # fmt: skip
    plain = (
        p.envvar is None and p.callback is None and p.nargs == 1 and p.expose_value
        and not p.is_eager and not getattr(p, "secondary_opts", ())
        and not getattr(p, "count", False) and not getattr(p, "prompt", None)
        and getattr(p.type, "max", None) is None
        and not getattr(p.type, "min_open", False) and not getattr(p.type, "clamp", False)
    )  # fmt: skip
    if kind == "flag":
        plain = plain and p.is_flag and p.default is False
    if kind == "path":
        t = p.type
        plain = plain and not (t.exists or t.writable or t.resolve_path or t.allow_dash)
        plain = plain and t.file_okay and t.dir_okay and t.type is None
    if kind == "choice":
        plain = plain and p.type.case_sensitive
    if kind is None or not plain:
        raise ValueError(f"the fast query parser cannot read {p.name!r} as click does")
    default = getattr(p.default, "value", p.default)  # an enum's value, as click has it
    is_option = p.param_type_name == "option"
    return Param(
        name=p.name, opts=tuple(p.opts) if is_option else (), kind=kind, default=default,
        multiple=bool(p.multiple), low=getattr(p.type, "min", None),
        choices=tuple(getattr(p.type, "choices", ())),
    )  # fmt: skip


def write_table(path: Path | None = None) -> Path:
    """Write :func:`describe` as :mod:`.query_params`."""
    path = path or Path(__file__).with_name("query_params.py")
    rows = "".join(
        "    Param(\n"
        + "".join(
            f"        {field}={_literal(value)},\n"
            for field, value in p._asdict().items()
            if field in ("name", "opts", "kind", "default") or value != Param._field_defaults[field]
        )
        + "    ),\n"
        for p in describe()
    )
    path.write_text(
        '"""The parameters of ``semsearch query`` as Typer builds them from :mod:`.query`.\n\n'
        "Generated by ``python -m semsearch.cli.fast``, not edited by hand: "
        "tests/test_query_path.py\nchecks that it matches the declaration.\n"
        '"""\n\nfrom .fast import Param\n\nPARAMS = (\n' + rows + ")\n",
        encoding="utf-8",
    )
    return path


def _literal(value: Any) -> str:
    """``value`` as the formatter writes it: strings in double quotes, one-tuples with a comma."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


if __name__ == "__main__":
    print(write_table())
