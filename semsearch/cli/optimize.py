"""``semsearch optimize``: merge an index's segments into one."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from .app import IndexOpt, JsonOpt, app
from .output import display_path, plural


@app.command()
def optimize(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Merge the index's segments into one and drop deleted rows (searches answer the same).

    Writes keep the segment count bounded on their own; this is for a quiet moment. A
    damaged segment is left out with a warning and the intact ones make the new index;
    semsearch repair does the same and also reads the left-out files again.
    """
    from .. import api

    where = index if index is not None else api.default_index_dir()
    stats = api.optimize_index(where)
    if as_json:
        typer.echo(json.dumps({**asdict(stats), "index": str(Path(where).resolve())}, indent=2))
        return
    done = "Merged" if stats.changed else "Already one segment:"
    typer.echo(
        f"{done} {plural(stats.documents, 'document')}, {plural(stats.chunks, 'chunk')} "
        f"in {stats.seconds:.1f}s -> {display_path(str(Path(where).resolve()))}",
        err=True,
    )
