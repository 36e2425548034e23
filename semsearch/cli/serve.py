"""``semsearch serve`` (HTTP API and search page) and ``semsearch mcp`` (MCP over stdio): the
index and the model are loaded once and kept warm. Server libraries load only here."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import IndexOpt, app

EngineOpt = Annotated[
    str, typer.Option(help="local: search in this process; ray: fan out to shards on Ray.")
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="Ray cluster to join [default: start a local one].")
]
ShardsOpt = Annotated[
    int, typer.Option(min=1, max=256, help="Ray: shard groups the segments are spread over.")
]
ReplicasOpt = Annotated[int, typer.Option(min=1, max=16, help="Ray: replicas of each shard group.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", help="Also show Ray's own warnings and log lines.")
]


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
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    shards: ShardsOpt = 2,
    replicas: ReplicasOpt = 1,
    verbose: VerboseOpt = False,
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
    _check_engine(engine)
    serve_http(
        where, host=host, port=port, token=token, allow_writes=allow_writes, workers=workers,
        engine=engine, shards=shards, replicas=replicas, ray_address=ray_address, verbose=verbose,
        processes=processes,
    )  # fmt: skip


@app.command()
def mcp(
    index: IndexOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    shards: ShardsOpt = 2,
    replicas: ReplicasOpt = 1,
    verbose: VerboseOpt = False,
) -> None:
    """Answer MCP (Model Context Protocol) requests on stdin/stdout: search, read, status."""
    from .. import config
    from ..serve.mcp_server import serve_mcp

    cfg = config.load()
    where = index if index is not None else cfg.index_dir
    _check_engine(engine)
    if engine == "local":
        serve_mcp(where)
        return
    serve_mcp(
        where, engine=engine, shards=shards, replicas=replicas, ray_address=ray_address,
        verbose=verbose,
    )  # fmt: skip


def _check_engine(engine: str) -> None:
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"must be local or ray, got {engine!r}", param_hint="--engine")
