"""``semsearch query``'s work: search an index and print hits people (or scripts) can use.

No Typer here: :mod:`.query` declares the command's options (for Typer) and calls
:func:`answer`; so does the fast path (:mod:`.fast`), which parses a plain query without
importing Typer at all.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..api.hits import hit_record
from ..api.request import Grouping, Mode, SearchOptions
from ..errors import UsageError
from .hitprint import Style, print_files, print_hits
from .output import Bar, color_enabled, echo, plural

if TYPE_CHECKING:
    from ..api import SemanticIndex


def answer(
    text: str, *, k: int, index: Path | None, as_json: bool, source: str | None,
    mode: Mode, per_source: int | None, diverse: bool, where_: list[str] | None,
    min_score: float | None, model: str | None, rerank: Path | None,
    group: Grouping | None, keep_copies: bool, full: bool, files_only: bool,
    context: int | None, after: int | None, before: int | None, refresh: bool,
    refresh_budget: float,
) -> int:  # fmt: skip
    """``semsearch query`` once its arguments are parsed (by Typer, or by :mod:`.fast` from
    the table derived from Typer's declaration in :mod:`.query`): the exit status, 1 when
    nothing passes."""
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
        echo(
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
        echo(json.dumps([hit_record(h) for h in hits], ensure_ascii=False, indent=2))
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
        echo("no results", err=True)
        return 1
    return 0


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
        echo(
            f"semsearch: note: {plural(result.pending, 'changed file')} not applied "
            f"({result.reason}, budget {budget:g}s); answering from the index as it is",
            err=True,
        )
    elif s.changed:
        echo(
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
