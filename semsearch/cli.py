"""The ``semsearch`` command: parsing and printing only; the work happens in :mod:`semsearch.api`.

Every ``SemsearchError`` becomes one line on stderr and its exit code, here and only here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._version import __version__
from .embed import DEFAULT_PRECISION
from .errors import SemsearchError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Local semantic search over your text files.",
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


_DEFAULT_PRECISION = Precision(DEFAULT_PRECISION)


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
    """Local semantic search over your text files."""


@app.command()
def index(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or glob patterns.")],
    index: IndexOpt = None,
    model: Annotated[str | None, typer.Option(help="Model name or local directory.")] = None,
    backend: Annotated[Backend, typer.Option(help="Vector search backend.")] = Backend.auto,
    index_type: Annotated[
        IndexType,
        typer.Option(help="auto: exact up to 25k chunks, then IVF tuned to recall@10 >= 0.95."),
    ] = IndexType.auto,
    chunk_tokens: Annotated[int, typer.Option(min=8, help="Token budget per chunk.")] = 200,
    overlap: Annotated[int, typer.Option(min=0, help="Sentences repeated between chunks.")] = 0,
    glob: Annotated[str | None, typer.Option(help="Only files matching this pattern.")] = None,
    precision: Annotated[
        Precision, typer.Option(help="fp32, or int8 (faster, slightly different vectors).")
    ] = _DEFAULT_PRECISION,
    engine: Annotated[
        EngineName,
        typer.Option(help="Where chunking and embedding run (ray: pip install semsearch[ray])."),
    ] = EngineName.local,
    ray_address: Annotated[
        str | None,
        typer.Option(help="auto, or ray://HOST:10001; default: start Ray in this process."),
    ] = None,
    ray_workers: Annotated[
        int | None, typer.Option(min=1, help="Ray embedding actors [default: one per node].")
    ] = None,
) -> None:
    """Build or update an index from text files."""
    from . import api

    with _Bar("Indexing") as bar:
        stats = api.index_paths(
            paths,
            index,
            model=model,
            backend=backend.value,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            glob=glob,
            progress=bar.update,
            engine=engine.value,
            index_type=index_type.value,
            precision=precision.value,
            ray_address=ray_address,
            ray_workers=ray_workers,
        )
    where = index if index is not None else api.default_index_dir()
    changes = (
        f"{stats.added} added, {stats.updated} updated, {stats.removed} removed, "
        f"{stats.unchanged} unchanged"
    )
    skipped = f", {stats.skipped} skipped" if stats.skipped else ""
    looked_up = stats.embedded_chunks + stats.cache_hits
    cache = f"; cache hits {stats.cache_hits}/{looked_up}" if looked_up else ""
    typer.echo(
        f"Indexed {stats.documents} documents, {stats.chunks} chunks in {stats.seconds:.1f}s "
        f"({changes}{skipped}{cache}; backend {stats.backend}) -> {where}",
        err=True,
    )


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("-k", "--top-k", help="Number of results.")] = 5,
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as a JSON array.")] = False,
    source: Annotated[
        str | None, typer.Option("--source", help="Only hits from sources matching this glob.")
    ] = None,
    mode: Annotated[
        Mode, typer.Option(help="dense (meaning), keyword (BM25) or hybrid (both, fused).")
    ] = Mode.hybrid,
    per_source: Annotated[
        int | None, typer.Option("--per-source", min=1, help="At most N hits per source.")
    ] = None,
    diverse: Annotated[
        bool, typer.Option("--diverse", help="Prefer hits unlike each other (MMR).")
    ] = False,
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="Drop hits scoring below this.")
    ] = None,
) -> None:
    """Search an index (the bundled samples when no index exists yet).

    Exits with status 1 and "no results" when nothing passes, like grep.
    """
    if not text.strip():
        raise UsageError("query is empty")
    if k <= 0:
        raise UsageError(f"-k must be a positive integer, got {k}")
    from . import api

    where = index if index is not None else api.default_index_dir()
    if index is None and not (where / "CURRENT").exists():
        typer.echo(f"No index at {where}; indexing the bundled sample documents first.", err=True)
        with _Bar("Indexing samples") as bar:
            api.ensure_seed_index(where, progress=bar.update)
    searcher = api.SemanticIndex.load(where)
    hits = searcher.search(
        text,
        k=k,
        mode=mode.value,
        where={"source": source} if source else None,
        per_source=per_source,
        diverse=diverse,
        min_score=min_score,
    )
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], ensure_ascii=False, indent=2))
    elif hits:
        # The highlight costs an embedding of every sentence shown (~0.2 s for k=5), so
        # it is computed only where it can be seen: on a terminal.
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _print_hits(hits, searcher.best_sentences(text, hits) if color else None)
    if not hits:
        typer.echo("no results", err=True)
        raise typer.Exit(1)


def _print_hits(hits: list[Any], best: list[tuple[int, int]] | None) -> None:
    """Rank, score, source:lines, then the chunk, its best-matching sentence in bold yellow."""
    for rank, h in enumerate(hits, 1):
        lines = f"{h.line_start}" if h.line_start == h.line_end else f"{h.line_start}-{h.line_end}"
        typer.echo(f"{rank}. {h.score:.3f}  {_display_path(h.source)}:{lines}")
        a, b = best[rank - 1] if best else (0, 0)
        before, match, after = (" ".join(p.split()) for p in (h.text[:a], h.text[a:b], h.text[b:]))
        body = " ".join(p for p in (before, "\x00" + match + "\x01" if match else "", after) if p)
        wrapped = textwrap.fill(body, width=100, initial_indent="   ", subsequent_indent="   ")
        typer.echo(wrapped.replace("\x00", "\x1b[1;33m").replace("\x01", "\x1b[0m"))
        typer.echo("")


@app.command()
def remove(
    sources: Annotated[list[str], typer.Argument(help="Source paths, ids or globs to drop.")],
    index: IndexOpt = None,
) -> None:
    """Remove documents from an index."""
    from . import api

    removed = api.remove_documents(sources, index)
    typer.echo(f"Removed {removed} document{'s' if removed != 1 else ''}", err=True)


@app.command()
def info(
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check every file against its checksum.")
    ] = False,
) -> None:
    """Describe an index: documents, chunks, model, backend, size on disk."""
    from . import api
    from .store import IndexDir, check_files

    where = index if index is not None else api.default_index_dir()
    if verify:  # works even when the index is too damaged to open
        gen, manifest = IndexDir(where).manifest()
        problems = check_files(gen, manifest, checksums=True)
        for problem in problems:
            typer.echo(f"damaged: {problem}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{gen.name}: all files match their checksums", err=True)
    details = api.SemanticIndex.load(where).info()
    if as_json:
        typer.echo(json.dumps(asdict(details), indent=2))
        return
    for key, value in asdict(details).items():
        if key == "size_bytes":
            key, value = "size on disk", _human_size(value)
        typer.echo(f"{key.replace('_', ' ')}: {value}")


@app.command(name="eval")
def eval_(
    dataset: Annotated[
        Path, typer.Argument(help="A BEIR directory (corpus.jsonl, queries.jsonl, qrels/).")
    ],
    mode: Annotated[
        list[Mode] | None, typer.Option("--mode", help="Modes to score [default: all three].")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name or local directory.")] = None,
    chunk_tokens: Annotated[int, typer.Option(min=8, help="Token budget per chunk.")] = 200,
    split: Annotated[str, typer.Option(help="Which qrels file to use.")] = "test",
    precision: Annotated[
        Precision, typer.Option(help="fp32 or int8 vectors.")
    ] = _DEFAULT_PRECISION,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score retrieval on a labelled BEIR collection: nDCG@10, Recall@10/100, MRR@10."""
    from .evaluate import run_eval

    modes: list[Any] = [m.value for m in mode] if mode else [m.value for m in Mode]
    with _Bar("Indexing corpus") as bar:
        report = run_eval(
            dataset, modes=modes, model=model, chunk_tokens=chunk_tokens, split=split,
            precision=precision.value, progress=bar.update,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
        return
    typer.echo(
        f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, "
        f"{report.queries} queries; model {report.model} ({report.precision}); "
        f"{report.scoring}"
    )
    typer.echo(f"{'mode':<8} {'nDCG@10':>8} {'Recall@10':>10} {'Recall@100':>11} {'MRR@10':>7}")
    for r in report.results:
        typer.echo(
            f"{r.mode:<8} {r.ndcg_at_10:>8.3f} {r.recall_at_10:>10.3f} "
            f"{r.recall_at_100:>11.3f} {r.mrr_at_10:>7.3f}"
        )


class _Bar:
    """A progress bar on stderr that appears once the total is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __enter__(self) -> _Bar:
        return self

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _display_path(source: str) -> str:
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"semsearch: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every expected failure into one line + exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logger = logging.getLogger("semsearch")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        result = app(args=argv, prog_name="semsearch", standalone_mode=False)
    except SemsearchError as exc:
        typer.echo(f"semsearch: error: {exc}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("semsearch: interrupted", err=True)
        return 130
    except typer.TyperException as exc:  # command-line parsing errors: usage, exit 2
        fmt = getattr(exc, "format_message", None)
        message = fmt() if fmt is not None else str(exc)
        if message:  # empty when help was shown for a bare command
            typer.echo(f"semsearch: error: {message} (see semsearch --help)", err=True)
        return int(getattr(exc, "exit_code", 2))
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
