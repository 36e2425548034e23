"""``semsearch eval``: ranking quality on a labelled BEIR collection."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import JsonOpt, Mode, Precision, app
from .output import Bar


class SelfHits(str, Enum):
    auto = "auto"
    drop = "drop"
    keep = "keep"


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
    split: Annotated[
        str,
        typer.Option(
            help="Which qrels file to score: qrels/SPLIT.tsv (e.g. dev to tune, test to report)."
        ),
    ] = "test",
    self_hits: Annotated[
        SelfHits,
        typer.Option(
            "--self-hits",
            help="A hit whose id is the query's id: auto drops it when that document's text "
            "is the query (ArguAna), drop always (BEIR), keep never.",
        ),
    ] = SelfHits.auto,
    precision: Annotated[
        Precision | None,
        typer.Option(help="fp32 or int8 vectors [default: the library's, as semsearch index]."),
    ] = None,
    rerank: Annotated[
        Path | None,
        typer.Option(
            "--rerank",
            help="A local sentence-transformers CrossEncoder directory: re-score each "
            "mode's best 100 chunks with it.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score retrieval on a labelled BEIR collection: nDCG@10, Recall@10/100, MRR@10."""
    from ..evaluation import run_eval

    modes: list[Any] = [m.value for m in mode] if mode else [m.value for m in Mode]
    # No --precision: run_eval's default, the library's own.
    run = functools.partial(run_eval, precision=precision.value) if precision else run_eval
    with Bar("Indexing corpus") as bar:
        report = run(
            dataset, modes=modes, model=model, chunk_tokens=chunk_tokens, split=split,
            progress=bar.update, self_hits=self_hits.value, rerank=rerank,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
        return
    typer.echo(
        f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, "
        f"{report.queries} queries; model {report.model} ({report.precision}); "
        f"{report.scoring}"
    )
    if report.self_hits_dropped:
        typer.echo(
            f"self-hits: {report.self_hits_dropped} queries' own document left out of their hits"
        )
    typer.echo(f"{'mode':<8} {'nDCG@10':>8} {'Recall@10':>10} {'Recall@100':>11} {'MRR@10':>7}")
    for r in report.results:
        typer.echo(
            f"{r.mode:<8} {r.ndcg_at_10:>8.3f} {r.recall_at_10:>10.3f} "
            f"{r.recall_at_100:>11.3f} {r.mrr_at_10:>7.3f}"
        )
    if report.baseline_ndcg_at_10 is not None:
        typer.echo(f"BM25 baseline (bm25_baseline.json): nDCG@10 {report.baseline_ndcg_at_10:.3f}")
        for r in report.results:
            if (p := r.vs_baseline) is not None:
                typer.echo(
                    f"  {r.mode:<8} minus baseline {p.mean:+.3f} (95% bootstrap "
                    f"{p.low:+.3f}..{p.high:+.3f}; better on {p.wins}, worse on {p.losses} "
                    f"of {p.queries} queries)"
                )
