"""``semsearch verify`` and ``semsearch repair``: find damaged segments, rebuild from the rest."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from .app import IndexOpt, JsonOpt, app
from .output import plural, safe


@app.command()
def verify(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Check every file of the index against its checksum; exit 1 naming each damaged one.

    A damaged segment is named with its generation (gen-NNNNNN/chunks.sqlite); the live index
    is not changed. semsearch repair rebuilds the index from the intact segments.
    """
    from ..api.repair import verify_index

    found = verify_index(index if index is not None else _default())
    if as_json:
        data = {**asdict(found), "ok": found.ok}
        typer.echo(json.dumps(data, indent=2))
    elif found.ok:
        typer.echo(
            f"{found.generation}: {plural(found.files, 'file')} in "
            f"{plural(found.segments, 'segment')} match their checksums",
            err=True,
        )
    for d in found.damage if not as_json else ():
        typer.echo(f"semsearch: damaged: {safe(d.line)} (semsearch repair rebuilds)", err=True)
    if not found.ok:
        raise typer.Exit(1)


@app.command()
def repair(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the index from its intact segments, then re-read damaged ones' files.

    A segment whose chunk database is damaged is left out; its documents that came from
    files under the folders the index remembers are read and embedded again. Damaged vectors
    and faiss files are rebuilt from the chunk texts. Documents added as texts (not files)
    in a left-out segment cannot be recovered.
    """
    from ..api.repair import repair_index

    where = index if index is not None else _default()
    done = repair_index(where)
    if as_json:
        typer.echo(json.dumps({**asdict(done), "index": str(Path(where).resolve())}, indent=2))
        return
    if done.dropped:
        typer.echo(
            f"left out damaged {plural(len(done.dropped), 'segment')} "
            f"{', '.join(done.dropped)} ({plural(done.dropped_documents, 'document')}); "
            f"read {plural(done.reread, 'document')} again from their files",
            err=True,
        )
    typer.echo(
        f"Repaired: {plural(done.documents, 'document')}, {plural(done.chunks, 'chunk')}",
        err=True,
    )


def _default() -> Path:
    from .. import api

    return Path(api.default_index_dir())
