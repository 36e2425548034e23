"""``semsearch query``: search an index and print hits people (or scripts) can use."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..api.hits import hit_record
from ..api.request import (
    DEFAULT_MODE,
    Grouping,
    Mode,
    SearchOptions,
    option_bounds,
    option_default,
    option_help,
)
from ..errors import UsageError
from .app import IndexOpt, JsonOpt, app
from .hitprint import Style, print_files, print_hits
from .output import Bar, color_enabled, plural

if TYPE_CHECKING:
    from ..api import SemanticIndex


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
    if not text.strip():
        raise UsageError("query is empty")
    if min_score is not None and not math.isfinite(min_score):  # the one check the library's
        raise UsageError(f"--min-score must be a finite number, got {min_score}")  # words miss
    options = SearchOptions(
        k=k, mode=mode, where=parse_where(where_ or [], source), per_source=per_source,
        diverse=diverse, min_score=min_score, group=group, collapse=not keep_copies,
    )  # fmt: skip
    from .. import api
    from ..config import bundled_seeds

    where = index if index is not None else api.default_index_dir()
    samples = None
    if index is None and not api.index_exists(where):
        typer.echo(
            f"No index at {where} yet: searching the bundled sample articles "
            "(semsearch index PATH builds your own).",
            err=True,
        )
        where = api.sample_index_dir()
        if not api.index_exists(where):  # built once; later queries only open it
            with Bar("Indexing samples") as bar:
                where, _ = api.ensure_sample_index(progress=bar.update)
        samples = bundled_seeds()
    if model is None:  # before importing the index: its session is made while they load
        api.start_loading_model(where)
    searcher = api.SemanticIndex.load(where, model=model)
    if refresh and samples is None:
        _refresh(searcher, refresh_budget)
    hits = searcher.search_with([text], options, rerank=rerank)[0]
    if as_json:
        typer.echo(json.dumps([hit_record(h) for h in hits], ensure_ascii=False, indent=2))
    elif files_only:
        print_files(hits, samples)
    elif hits:
        style = Style(
            full=full,
            before=min(_lines(before, context), MAX_CONTEXT_LINES),
            after=min(_lines(after, context), MAX_CONTEXT_LINES),
            color=color_enabled(),
        )
        print_hits(hits, searcher.best_sentences(text, hits), samples, style)
    if not hits:
        typer.echo("no results", err=True)
        raise typer.Exit(1)


#: Most file lines ``-A``/``-B``/``-C`` print on each side of a match.
MAX_CONTEXT_LINES = 1000


def _lines(one_side: int | None, both: int | None) -> int:
    """``-A``/``-B`` win over ``-C``, as in grep."""
    return one_side if one_side is not None else both or 0


def _refresh(searcher: SemanticIndex, budget: float) -> None:
    """Bring the index up to date within ``budget`` seconds, saying what happened."""
    result = searcher.refresh(budget=budget)
    s = result.stats
    if not result.complete:
        typer.echo(
            f"semsearch: note: {plural(result.pending, 'changed file')} not applied "
            f"({result.reason}, budget {budget:g}s); answering from the index as it is",
            err=True,
        )
    elif s.changed:
        typer.echo(
            f"semsearch: refreshed: {s.added:,} added, {s.updated:,} updated, "
            f"{s.removed:,} removed in {s.seconds:.1f}s",
            err=True,
        )


#: ``--where`` comparisons written as symbols or words, and the filter operators they stand for.
_SYMBOLS = {"!=": "$ne", ">=": "$gte", "<=": "$lte", "=": "$eq", ">": "$gt", "<": "$lt"}
_WORDS = {" not in ": "$nin", " in ": "$in"}
_COMPARISON = re.compile("|".join(re.escape(w) for w in (*_WORDS, *_SYMBOLS)), flags=re.IGNORECASE)


def parse_where(pairs: list[str], source: str | None) -> dict[str, object] | None:
    """``--where`` filters: ``KEY=VALUE``, ``KEY!=VALUE``, ``KEY>=VALUE`` (also ``>``,
    ``<``, ``<=``), ``KEY in A,B`` and ``KEY not in A,B``, split at the first comparison;
    or a JSON object in the API's form (``{"year": {"$gte": 2020}}``). VALUE is a number,
    true/false/null when it reads as one (JSONL fields keep their types), else text."""
    where: dict[str, object] = {"source": source} if source else {}
    for pair in pairs:
        if pair.lstrip().startswith("{"):
            where.update(_json_where(pair))
            continue
        found = _COMPARISON.search(pair)
        key = pair[: found.start()].strip() if found else ""
        if found is None or not key:
            raise UsageError(
                f"--where wants KEY=VALUE, KEY>=VALUE, 'KEY in A,B' or a JSON object, got {pair!r}"
            )
        op = _WORDS.get(found.group().lower()) or _SYMBOLS[found.group()]
        raw = pair[found.end() :].strip()
        value = (
            [_scalar(v.strip()) for v in raw.split(",")] if op in ("$in", "$nin") else _scalar(raw)
        )
        conditions = where.setdefault(key, {})
        if not isinstance(conditions, dict):  # a JSON filter gave this key a plain value
            where[key] = conditions = {"$eq": conditions}
        conditions[op] = value
    return where or None


def _scalar(raw: str) -> object:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if value is None or isinstance(value, (bool, int, float, str)) else raw


def _json_where(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError(f"--where JSON is not valid: {text[:60]!r}") from None
    if not isinstance(value, dict):
        raise UsageError("--where JSON must be an object")
    return value
