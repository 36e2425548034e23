"""``semsearch serve`` (HTTP API and search page) and ``semsearch mcp`` (MCP over stdio): the
index and the model are loaded once and kept warm. Server libraries load only here."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import IndexOpt, app


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            help="Every request must carry it (Authorization: Bearer); or SEMSEARCH_TOKEN."
        ),
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Enable POST /upsert, /delete and /refresh.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker threads (default: one per core, at least 2)."),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(min=1, max=64, help="Server processes sharing the port (default: 1)."),
    ] = 1,
) -> None:
    """Serve the index over HTTP: JSON API, OpenAPI docs at /docs, a search page at /."""
    from .. import config
    from ..serve import serve_http

    cfg = config.load()
    where = index if index is not None else cfg.index_dir
    token = token or cfg.token
    serve_http(
        where, host=host, port=port, token=token, allow_writes=allow_writes, workers=workers,
        processes=processes,
    )  # fmt: skip


@app.command()
def mcp(index: IndexOpt = None) -> None:
    """Answer MCP (Model Context Protocol) requests on stdin/stdout: search, read, status."""
    from .. import config
    from ..serve.mcp_server import serve_mcp

    cfg = config.load()
    serve_mcp(index if index is not None else cfg.index_dir)
