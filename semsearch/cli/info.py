"""``semsearch info``: what an index holds, and whether its files are intact."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer

from .app import IndexOpt, JsonOpt, app
from .output import human_size, safe


@app.command()
def info(
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check every file against its checksum.")
    ] = False,
) -> None:
    """Describe an index: documents, chunks, model, backend, size on disk."""
    from .. import api

    where = index if index is not None else api.default_index_dir()
    if verify:  # works even when the index is too damaged to open
        generation, problems = api.verify_files(where)
        for problem in problems:
            typer.echo(f"damaged: {safe(problem)}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{generation}: all files match their checksums", err=True)
    details = api.index_info(where)
    if as_json:
        typer.echo(json.dumps(asdict(details), indent=2))
        return
    for key, value in asdict(details).items():
        if key == "size_bytes":
            key, value = "size on disk", human_size(value)
        elif key == "roots":
            value = ", ".join(value) or "-"
        elif key == "phase2":
            if value is None:
                continue
            value = phase2_line(value)
        typer.echo(f"{key.replace('_', ' ')}: {safe(str(value))}")


def phase2_line(p: dict[str, Any]) -> str:
    """The phase-2 worker's progress in words: where it is, whether it runs, its log."""
    where = f"{p['done']:,}/{p['total']:,} chunks embedded"
    if p["running"]:
        state = f"{p['state']}, {where} (pid {p['pid']}; semsearch index --stop stops it)"
    elif p["state"] in ("interrupted", "stopped", "failed"):
        why = f": {p['error']}" if p["error"] else ""
        state = f"{p['state']}{why} at {where} (semsearch index resumes it)"
    else:
        state = f"{p['state']}, {where}"
    return f"{state}; log: {p['log']}"
