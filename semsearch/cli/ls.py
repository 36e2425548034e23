"""``semsearch ls``: the documents an index holds, with type, chunks, size and status."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from .app import IndexOpt, JsonOpt, app
from .output import display_path, human_size, safe


@app.command("ls")
def ls(
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    status: Annotated[
        str | None,
        typer.Option(help="Only documents with this status: ok, changed, missing or text."),
    ] = None,
) -> None:
    """List indexed documents: type, chunks, size and whether the file changed since."""
    from .. import api

    where = index if index is not None else api.default_index_dir()
    rows = [s for s in api.list_sources(where) if status is None or s.status == status]
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in rows], ensure_ascii=False, indent=2))
        return
    for s in rows:
        size = human_size(s.size) if s.size is not None else "-"
        name = display_path(s.source)
        if s.kind == "record":  # one document per row: the id says which line
            name += "#" + s.doc_id.rpartition("#")[2]
        typer.echo(f"{s.kind:<8} {s.chunks:>6} {size:>9}  {s.status:<7} {safe(name)}")
    counts: dict[str, int] = {}
    for s in rows:
        counts[s.status] = counts.get(s.status, 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    typer.echo(f"{len(rows)} documents ({tally or 'none'})", err=True)
