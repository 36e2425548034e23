"""``semsearch update`` and ``semsearch watch``: keep an index as fresh as its folders."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .app import IndexOpt, JsonOpt, app
from .index import summary
from .output import Bar, display_path, plural

#: Exit status after Ctrl-C: 128 + SIGINT, the shell's convention for "stopped by the user",
#: so a script can tell a watch that was stopped from one that failed (1) or was misused (2).
INTERRUPTED = 130


@app.command()
def update(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Refresh an index from the folders it was built from (= semsearch index, no paths).

    Unchanged files cost one stat each; the model is loaded only when something changed.
    """
    from .. import api

    where = index if index is not None else api.default_index_dir()
    with Bar("Indexing") as bar:
        stats = api.refresh_index(where, progress=bar.update)
    if as_json:
        typer.echo(json.dumps({**asdict(stats), "index": str(Path(where).resolve())}, indent=2))
        return
    typer.echo(summary(stats, where), err=True)


@app.command()
def watch(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Folders or files to watch [default: the index's own]."),
    ] = None,
    index: IndexOpt = None,
    debounce: Annotated[
        float,
        typer.Option(
            min=0.05, max=3600, help="Longest wait, in seconds, while changes keep coming."
        ),
    ] = 2.0,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll for changes (network drives, containers).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per batch on stdout.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Name every changed file in each batch line.")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks", help="Follow links to files outside the folders (new folders)."
        ),
    ] = False,
) -> None:
    """Keep an index in sync with its folders while this runs; Ctrl-C stops it.

    Each batch of changes (debounced) is published as one generation; one line per batch
    says what was added, updated and removed, naming the first few files (all with
    --verbose). Folders given that the index does not hold
    yet are indexed first. Stopping exits with status 130 and leaves the index intact.
    """
    from .. import api

    where = Path(index if index is not None else api.default_index_dir())
    if paths:
        _index_new_roots(paths, where, follow_symlinks)
    elif not api.index_exists(where):
        raise UsageError(f"no index at {where} yet: name the folders to watch")

    def report(batch: api.BatchReport) -> None:
        if as_json:
            typer.echo(json.dumps(asdict(batch)))

    watcher = api.Watcher(where, paths or None, force_polling=poll or None, debounce=debounce,
                      on_batch=report, verbose=verbose)  # fmt: skip
    roots = ", ".join(display_path(r) for r in watcher.roots[:3])
    more = f" and {len(watcher.roots) - 3:,} more" if len(watcher.roots) > 3 else ""
    typer.echo(
        f"Watching {plural(len(watcher.roots), 'path')} ({roots}{more}) -> "
        f"{display_path(str(where.resolve()))}; Ctrl-C stops",
        err=True,
    )
    try:
        watcher.run()
    except KeyboardInterrupt:
        # A batch in progress was abandoned whole (its temporary generation removed), so the
        # live index is the last one published; the CLI boundary prints the one line.
        raise typer.Exit(INTERRUPTED) from None


def _index_new_roots(paths: list[str], where: Path, follow_symlinks: bool) -> None:
    """Index the paths the index does not remember yet, so the watch starts from them."""
    import os

    from .. import api

    known = api.indexed_roots(where)
    new = [p for p in paths if os.path.abspath(Path(p).expanduser()) not in known]
    if not new:
        return
    with Bar("Indexing") as bar:
        stats = api.index_paths(new, where, progress=bar.update, follow_symlinks=follow_symlinks)
    typer.echo(summary(stats, where), err=True)
