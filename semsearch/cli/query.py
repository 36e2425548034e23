"""``semsearch query``: the command's options, as Typer reads them; the work is
:func:`.querying.answer`. The fast path (:mod:`.fast`) parses from a table derived from this
declaration, so it stays the one place the options are declared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..api.request import DEFAULT_MODE, Grouping, Mode, option_bounds, option_default, option_help
from .app import IndexOpt, JsonOpt, app
from .querying import answer, parse_where

__all__ = ["parse_where", "query"]


def _said(name: str) -> str:
    """An option's help, as the CLI's sentences start: capitalised."""
    words = option_help(name)
    return words[:1].upper() + words[1:]


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[
        int,
        typer.Option(
            "-k",
            "--top-k",
            help=f"{_said('k')} ({'-'.join(map(str, option_bounds('k')))}).",
        ),
    ] = option_default("k"),
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    source: Annotated[
        str | None, typer.Option("--source", help="Only hits from sources matching this glob.")
    ] = None,
    mode: Annotated[Mode, typer.Option(help=option_help("mode") + ".")] = DEFAULT_MODE,
    per_source: Annotated[
        int | None,
        typer.Option(
            "--per-source",
            help=_said("per_source") + ".",
        ),
    ] = None,
    diverse: Annotated[
        bool, typer.Option("--diverse", help=_said("diverse") + ".")
    ] = option_default("diverse"),
    where_: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help=(
                "Only documents whose metadata matches: KEY=VALUE (a list holding VALUE "
                "matches too), KEY!=VALUE, KEY>=VALUE, KEY<VALUE, ..., 'KEY in A,B', "
                "'KEY not in A,B', or JSON such as '{\"year\": {\"$gte\": 2020}}' "
                "(repeatable; all must hold)."
            ),
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            help=(
                "Drop hits whose score (the number printed before each hit) is below this. "
                "dense: cosine similarity. keyword (0-1): BM25 (of the document, and a "
                "quarter of the chunk's own) as a fraction of the most BM25 can give the "
                "query's words (each once, at average length: 0.45). hybrid (0-1): w x "
                "the cosine's rise above the query's background (as a fraction of the way "
                "to 1) + (1 - w) x the keyword fraction of a full document match, capped at "
                "1, where the dense weight w is 0.45, less (down to 0.11) for a query in a "
                "language or script the English model was not trained on. "
                "--json shows these parts as dense_score and keyword_score, the raw "
                "measures as cosine and bm25."
            ),
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Load this model (a directory or hub name) for an index built with a model "
            "semsearch does not know; never loaded on the index's word alone.",
        ),
    ] = None,
    rerank: Annotated[
        Path | None,
        typer.Option(
            "--rerank",
            help="A local sentence-transformers CrossEncoder directory: re-score the best "
            "100 hits with it (slower; the score printed is then the cross-encoder's).",
        ),
    ] = None,
    group: Annotated[
        Grouping | None, typer.Option("--group", help=option_help("group") + ".")
    ] = None,
    keep_copies: Annotated[
        bool,
        typer.Option("--no-collapse", help=f"Do not {option_help('collapse').split(' (')[0]}."),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Print each hit's whole chunk, not its best sentence.")
    ] = False,
    files_only: Annotated[
        bool,
        typer.Option(
            "-l", "--files-with-matches", help="Print only the files with hits, best first."
        ),
    ] = False,
    context: Annotated[
        int | None,
        typer.Option(
            "-C", "--context", min=0, help="Show N lines of the file around the best sentence."
        ),
    ] = None,
    after: Annotated[
        int | None, typer.Option("-A", "--after-context", min=0, help="N lines after.")
    ] = None,
    before: Annotated[
        int | None, typer.Option("-B", "--before-context", min=0, help="N lines before.")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option("--refresh", help="Apply changes in the indexed folders first."),
    ] = False,
    refresh_budget: Annotated[
        float,
        typer.Option(
            "--refresh-budget",
            min=0.0,
            help="Seconds --refresh may take; past them, answer from the index as it is.",
        ),
    ] = 2.0,
) -> None:
    """Search an index (the bundled sample articles when you have none yet).

    Exits with status 1 and "no results" when nothing passes, like grep.
    """
    code = answer(**locals())  # every parameter above, by name
    if code:
        raise typer.Exit(code)
