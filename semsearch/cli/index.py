"""``semsearch index`` and ``semsearch remove``: change what an index holds."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import IndexLockedError, SemsearchError
from .app import Backend, EngineName, IndexOpt, IndexType, JsonOpt, Precision, app
from .output import Bar, display_path, human_size, plural, safe

#: How often a foreground ``index`` reads the background worker's progress (seconds).
FOLLOW_EVERY = 0.25


@app.command()
def index(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, directories or glob patterns [default: the index's own]."),
    ] = None,
    index: IndexOpt = None,
    model: Annotated[
        str | None, typer.Option(help="Model name or local directory [default: the index's].")
    ] = None,
    backend: Annotated[Backend, typer.Option(help="Vector search backend.")] = Backend.auto,
    index_type: Annotated[
        IndexType | None,
        typer.Option(help="auto: exact up to 25k chunks, then IVF tuned to recall@10 >= 0.95."),
    ] = None,
    chunk_tokens: Annotated[
        int | None, typer.Option(min=8, help="Token budget per chunk [default: 200].")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(min=0, help="Sentences repeated between chunks [default: 0].")
    ] = None,
    glob: Annotated[
        list[str] | None, typer.Option(help="Only files matching this pattern (repeatable).")
    ] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(help="int8 (default, faster) or fp32 (sentence-transformers' vectors)."),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Re-embed every document already indexed under the settings given.",
        ),
    ] = False,
    engine: Annotated[
        EngineName,
        typer.Option(help="Where chunking and embedding run (ray: pip install 'semsearch[ray]')."),
    ] = EngineName.local,
    ray_address: Annotated[
        str | None,
        typer.Option(help="auto, or ray://HOST:10001; default: start Ray in this process."),
    ] = None,
    ray_workers: Annotated[
        int | None, typer.Option(min=1, help="Ray embedding actors [default: one per node].")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Skip files and folders matching this gitignore pattern (repeatable)."),
    ] = None,
    max_file_size: Annotated[
        str,
        typer.Option(help="Skip larger files (PDF, DOCX, EPUB: 10x); 0: no limit. E.g. 8MB."),
    ] = "8MB",
    text_field: Annotated[
        str | None,
        typer.Option(help="JSONL/CSV: the field holding the text [default: text, content...]."),
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Follow links to files outside the folders given (remembered for refresh).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what would be indexed, by type, and what is skipped and why; "
            "write nothing.",
        ),
    ] = False,
    progressive: Annotated[
        bool,
        typer.Option(
            "--progressive",
            help="New index: searchable in seconds with keyword + static vectors (phase 1), "
            "then upgraded in place to the transformer's (phase 2, resumed by running "
            "index again if stopped).",
        ),
    ] = False,
    background: Annotated[
        bool | None,
        typer.Option(
            "--background/--foreground",
            help="Phase 2 in a detached background process (the default when stdout is a "
            "terminal: the command returns once phase 1 is searchable) or here, with progress.",
        ),
    ] = None,
    stop: Annotated[
        bool,
        typer.Option(
            "--stop",
            help="Stop the index's phase 2 running in the background (index again resumes it).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also show Ray's own warnings and log lines.")
    ] = False,
) -> None:
    """Build or update an index. With no paths, refresh the folders it was built from.

    An existing index keeps its own model, precision and chunking; naming a different one
    is refused unless --rebuild is given, so nothing indexed is ever thrown away.
    Generated and minified files (lock files, source maps, *.min.js, Sphinx _sources and
    _static, build output) are skipped by default; re-include one with --exclude '!PATTERN'
    or a !PATTERN line in .semsearchignore.
    """
    from .. import api

    if verbose:  # read by the Ray engine (and anything else that logs at DEBUG)
        logging.getLogger("semsearch").setLevel(logging.DEBUG)
    limit = api.parse_size(max_file_size)
    where = index if index is not None else api.default_index_dir()
    if stop:
        _stop(paths, where, as_json)
        return
    if dry_run:
        _print_dry_run(
            api.dry_run(
                paths or [], where, glob=glob, excludes=exclude or (), max_file_size=limit,
                follow_symlinks=follow_symlinks,
            ),
            as_json,
        )  # fmt: skip
        return
    with Bar("Indexing") as bar:
        if paths:
            stats = api.index_paths(
                paths,
                where,
                model=model,
                backend=backend.value,
                chunk_tokens=chunk_tokens,
                overlap=overlap,
                glob=glob,
                progress=bar.update,
                engine=engine.value,
                index_type=index_type.value if index_type else None,
                precision=precision.value if precision else None,
                ray_address=ray_address,
                ray_workers=ray_workers,
                rebuild=rebuild,
                excludes=exclude or (),
                max_file_size=limit,
                text_field=text_field,
                follow_symlinks=follow_symlinks,
                progressive=progressive,
            )
        else:
            stats = api.refresh_index(where, progress=bar.update, rebuild=rebuild)
    pending = api.pending_upgrade(where)
    if pending is None:
        if as_json:
            out = {**asdict(stats), "index": str(Path(where).resolve())}
            typer.echo(json.dumps(out, indent=2))
            return
        typer.echo(summary(stats, where), err=True)
        return
    if background if background is not None else sys.stdout.isatty():
        _phase_two_background(stats, where, pending, as_json)
    else:
        _phase_two(stats, where, pending, as_json)


def _stop(paths: list[str] | None, where: Path, as_json: bool) -> None:
    from .. import api

    if paths:
        raise typer.BadParameter("--stop takes no paths: it stops the index's phase 2")
    pid = api.stop_phase_two(where)
    if as_json:
        typer.echo(json.dumps({"index": str(Path(where).resolve()), "stopped_pid": pid}))
    elif pid is None:
        typer.echo(f"No phase 2 is running for {display_path(str(where))}", err=True)
    else:
        typer.echo(
            f"Stopped phase 2 (pid {pid}): the index answers from phase 1; run semsearch index "
            "again to resume it",
            err=True,
        )


def _phase_two_background(first: Any, where: Path, pending: str, as_json: bool) -> None:
    """Progressive indexing: phase 1 is searchable now; phase 2 goes on in a worker process
    of its own (or the one already running), and this command returns."""
    from .. import api

    worker = api.start_phase_two(where)
    if worker is None:  # another process finished it meanwhile
        if as_json:
            out = {**asdict(first), "index": str(Path(where).resolve()), "phase": "complete"}
            typer.echo(json.dumps(out, indent=2))
        else:
            typer.echo(summary(first, where), err=True)
        return
    if as_json:
        out = {**asdict(first), "index": str(Path(where).resolve()), "phase": "phase-1",
               "pending_model": pending, "phase2": asdict(worker)}  # fmt: skip
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(summary(first, where), err=True)
    how = "runs" if worker.started else "was already running"
    typer.echo(
        f"Phase 1 searchable (keyword + static vectors). Phase 2 ({pending}) {how} in the "
        f"background (pid {worker.pid}): semsearch info shows its progress, semsearch index "
        f"--stop stops it; log: {display_path(worker.log)}",
        err=True,
    )


def _phase_two(first: Any, where: Path, pending: str, as_json: bool) -> None:
    """Progressive indexing: phase 1 is searchable now; embed with the transformer in the
    foreground and publish it at once (or follow the background worker already doing it).
    Stopped, the index keeps answering from phase 1."""
    from .. import api

    if not as_json:
        typer.echo(summary(first, where), err=True)
        typer.echo(
            f"Phase 1 searchable (keyword + static vectors); phase 2 embeds every chunk with "
            f"{pending} (stop it any time: running index again resumes it)",
            err=True,
        )
    started, following = time.perf_counter(), False
    try:
        with Bar("Phase 2", unit="chunks") as bar:
            try:
                stats = api.run_phase_two(where, progress=bar.update)
            except IndexLockedError:  # a background worker is at it: follow it
                following = True
                _follow(where, bar)
                stats = None
    except KeyboardInterrupt:
        if following:
            why = "Stopped following: phase 2 goes on in the background (index --stop stops it)"
        else:
            why = (
                "Phase 2 stopped: the index answers from phase 1 as before; run semsearch index "
                "again to resume (chunks already embedded are not embedded again)"
            )
        typer.echo(why, err=True)
        raise
    if stats is None:  # another process (the background worker) published it
        stats = replace(
            first, embedded_chunks=0, cache_hits=0, seconds=time.perf_counter() - started,
            **_counts(where),
        )  # fmt: skip
    if as_json:
        out = {**asdict(stats), "index": str(Path(where).resolve()), "phase": "complete",
               "phase1": asdict(first)}  # fmt: skip
        typer.echo(json.dumps(out, indent=2))
        return
    looked_up = stats.embedded_chunks + stats.cache_hits
    hits = f" (cache hits {stats.cache_hits:,}/{looked_up:,})" if looked_up else ""
    typer.echo(
        f"Phase 2 done: {plural(stats.chunks, 'chunk')} now answered by {pending}{hits} in "
        f"{stats.seconds:.1f}s -> {display_path(str(Path(where).resolve()))}",
        err=True,
    )


def _follow(where: Path, bar: Bar) -> None:
    """Show the progress of the background worker running phase 2 until it ends (Ctrl-C
    stops following, not the worker); an error if it ended without publishing."""
    from .. import api

    while True:
        info = api.index_info(where)
        p = info.phase2
        if info.phase == "complete":
            return
        if p is None or not p.running:
            state = f"{p.state}: {p.error}" if p and p.error else (p.state if p else "gone")
            raise SemsearchError(
                f"phase 2 ended without publishing ({state}); see "
                f"{p.log if p else 'the log in the index directory'}; run semsearch index to "
                "resume it"
            )
        if p.state == "embedding" and p.total:
            bar.update(p.done, p.total)
        time.sleep(FOLLOW_EVERY)


def _counts(where: Path) -> dict[str, int]:
    from .. import api

    info = api.index_info(where)
    return {"documents": info.documents, "chunks": info.chunks}


def _print_dry_run(plan: Any, as_json: bool) -> None:
    """The dry run on stdout: types by size, then reasons by count, with a few paths each."""
    if as_json:
        typer.echo(json.dumps(asdict(plan), indent=2))
        return
    typer.echo(f"Would index {plural(plan.files, 'file')} ({human_size(plan.bytes)})")
    for t in plan.types:
        typer.echo(f"  {safe(t.kind):<12} {t.files:>8,}  {human_size(t.bytes):>10}")
    skipped = sum(s.count for s in plan.skipped)
    if skipped:
        typer.echo(f"Would skip {skipped:,} (folders count once)")
    for s in plan.skipped:
        more = f" +{s.count - len(s.examples):,} more" if s.count > len(s.examples) else ""
        names = ", ".join(display_path(e) for e in s.examples)
        typer.echo(f"  {s.count:>8,}  {safe(s.reason)}: {names}{more}")


def summary(stats: Any, where: Path) -> str:
    """One line that adds up: documents = added + updated + unchanged + kept."""
    parts = [
        f"{stats.added:,} added",
        f"{stats.updated:,} updated",
        f"{stats.unchanged:,} unchanged",
    ]
    if stats.kept:
        parts.append(f"{stats.kept:,} kept from before")
    parts.append(f"{stats.removed:,} removed")
    skipped = f"; {stats.skipped:,} skipped" if stats.skipped else ""
    looked_up = stats.embedded_chunks + stats.cache_hits
    cache = f"; cache hits {stats.cache_hits:,}/{looked_up:,}" if looked_up else ""
    return (
        f"Indexed {plural(stats.documents, 'document')}, {plural(stats.chunks, 'chunk')} "
        f"({', '.join(parts)}{skipped}{cache}) in {stats.seconds:.1f}s -> "
        f"{display_path(str(Path(where).resolve()))}"
    )


@app.command()
def remove(
    sources: Annotated[list[str], typer.Argument(help="Source paths or document ids to drop.")],
    index: IndexOpt = None,
    glob: Annotated[
        bool, typer.Option("--glob", help="Treat each argument as a glob on ids and paths.")
    ] = False,
) -> None:
    """Remove documents from an index (removing the last one leaves a valid empty index)."""
    from .. import api

    removed = api.remove_documents(sources, index, glob=glob)
    typer.echo(f"Removed {plural(removed, 'document')}", err=True)
