"""The Typer application and the options several commands share.

Commands live one per module beside this one and register themselves on :data:`app`;
heavy imports (the API, models, parsers, servers) happen inside the command functions.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .._version import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: "[default: ...]" and "semsearch[ray]" print as written
    help="Local semantic search over your files.",
)


class Mode(str, Enum):
    dense = "dense"
    keyword = "keyword"
    hybrid = "hybrid"


class EngineName(str, Enum):
    local = "local"
    ray = "ray"


class Precision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"


class IndexType(str, Enum):
    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"
    ivfpq = "ivfpq"


class Backend(str, Enum):
    auto = "auto"
    faiss = "faiss"
    numpy = "numpy"


IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index",
        "-i",
        help="Index directory [default: $SEMSEARCH_INDEX or ~/.local/share/semsearch/index]",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"semsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Local semantic search over your files."""
