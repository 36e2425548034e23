"""Ranking metrics (nDCG@k, Recall@k, MRR@k) computed the way trec_eval / BEIR compute them.

Kept dependency-free so evaluation numbers can be reproduced without pytrec_eval, and so the
choices that move scores (tie order, unjudged queries) are written down in one place:

* Gain is the graded relevance itself and the discount is ``log2(rank + 1)``; the ideal
  ranking is built from the qrels. Documents with relevance <= 0 count as non-relevant.
* A ranking given as ``(doc_id, score)`` pairs is ordered like trec_eval: score descending,
  ties broken by doc id descending, so the result never depends on the order of tied input.
  A ranking given as bare doc ids is taken in the order given.
* A doc id that appears twice counts once, at its best rank.
* Queries with no relevant document in the qrels are skipped (as BEIR does). A judged query
  missing from the run, or with an empty ranking, scores 0. pytrec_eval silently drops such
  queries, which inflates averages; here they count, like ``trec_eval -c``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import UsageError

Qrels = Mapping[str, Mapping[str, int]]
Ranking = Sequence[tuple[str, float]] | Sequence[str]
Run = Mapping[str, Ranking]

DEFAULT_KS: tuple[int, ...] = (1, 10, 100)


@dataclass(frozen=True, slots=True)
class MetricsAtK:
    """The three metrics at one cutoff ``k``."""

    k: int
    ndcg: float
    recall: float
    mrr: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics averaged over ``num_queries`` judged queries, one entry per cutoff."""

    num_queries: int
    cutoffs: tuple[MetricsAtK, ...]

    def at(self, k: int) -> MetricsAtK:
        """The metrics at cutoff ``k``; a UsageError if ``k`` was not evaluated."""
        for m in self.cutoffs:
            if m.k == k:
                return m
        evaluated = ", ".join(str(m.k) for m in self.cutoffs)
        raise UsageError(f"cutoff {k} was not evaluated (have: {evaluated})")

    def as_dict(self) -> dict[str, float]:
        """Flat ``{"nDCG@10": ..., "Recall@10": ..., "MRR@10": ...}`` for printing or JSON."""
        out: dict[str, float] = {}
        for m in self.cutoffs:
            out[f"nDCG@{m.k}"] = m.ndcg
            out[f"Recall@{m.k}"] = m.recall
            out[f"MRR@{m.k}"] = m.mrr
        return out


def ranked_ids(ranking: Ranking) -> list[str]:
    """Doc ids in evaluation order: pairs sorted like trec_eval, duplicates dropped."""
    if isinstance(ranking, (str, bytes)):
        raise UsageError("a ranking must be a sequence of doc ids or (doc_id, score) pairs")
    items = list(ranking)
    if all(isinstance(x, str) for x in items):
        ids: list[str] = items  # type: ignore[assignment]
    else:
        pairs = [_pair(x) for x in items]
        # trec_eval: higher score first; equal scores by doc id, descending.
        pairs.sort(key=lambda p: (p[1], p[0]), reverse=True)
        ids = [doc for doc, _ in pairs]
    seen: set[str] = set()
    out: list[str] = []
    for doc in ids:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def _pair(item: object) -> tuple[str, float]:
    if isinstance(item, str):
        raise UsageError("a ranking mixes bare doc ids and (doc_id, score) pairs")
    if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
        raise UsageError(f"ranking entry {item!r} is neither a doc id nor a (doc_id, score) pair")
    try:
        score = float(item[1])
    except (TypeError, ValueError):
        raise UsageError(f"ranking entry {item!r}: score is not a number") from None
    if math.isnan(score):
        raise UsageError(f"ranking entry {item!r}: score is NaN")
    return item[0], score


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"cutoff k must be a positive integer, got {k!r}")
    return k


def _relevant(rels: Mapping[str, int]) -> dict[str, int]:
    return {doc: rel for doc, rel in rels.items() if rel > 0}


def ndcg_at_k(rels: Mapping[str, int], ranking: Ranking, k: int) -> float:
    """nDCG@k for one query; 0.0 when it has no relevant document (``evaluate`` skips those)."""
    return _at_k(_relevant(rels), ranked_ids(ranking), _check_k(k)).ndcg


def recall_at_k(rels: Mapping[str, int], ranking: Ranking, k: int) -> float:
    """Relevant docs in the top k over all relevant docs; 0.0 when there are none."""
    return _at_k(_relevant(rels), ranked_ids(ranking), _check_k(k)).recall


def mrr_at_k(rels: Mapping[str, int], ranking: Ranking, k: int) -> float:
    """1 / rank of the first relevant doc within the top k, else 0.0."""
    return _at_k(_relevant(rels), ranked_ids(ranking), _check_k(k)).mrr


def _at_k(relevant: Mapping[str, int], ids: Sequence[str], k: int) -> MetricsAtK:
    """All three metrics from one pass over the top k (``relevant`` holds only rel > 0)."""
    if not relevant:
        return MetricsAtK(k, 0.0, 0.0, 0.0)
    dcg = 0.0
    hits = 0
    rr = 0.0
    for rank, doc in enumerate(ids[:k], start=1):
        rel = relevant.get(doc)
        if rel is None:
            continue
        dcg += rel / math.log2(rank + 1)
        hits += 1
        if rr == 0.0:
            rr = 1.0 / rank
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 1) for rank, rel in enumerate(ideal, start=1))
    return MetricsAtK(k, dcg / idcg, hits / len(relevant), rr)


def _check_ks(ks: int | Iterable[int]) -> tuple[int, ...]:
    if isinstance(ks, int):
        ks = (ks,)
    checked = tuple(sorted({_check_k(k) for k in ks}))
    if not checked:
        raise UsageError("give at least one cutoff k")
    return checked


def per_query(
    qrels: Qrels, run: Run, ks: int | Iterable[int] = DEFAULT_KS
) -> dict[str, Evaluation]:
    """Metrics for each judged query (for paired comparisons, splits, bootstraps)."""
    cutoffs = _check_ks(ks)
    out: dict[str, Evaluation] = {}
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            continue
        ids = ranked_ids(run.get(qid, ()))
        out[qid] = Evaluation(1, tuple(_at_k(relevant, ids, k) for k in cutoffs))
    return out


def mean(evaluations: Iterable[Evaluation]) -> Evaluation:
    """Average several evaluations query-weighted; all must share the same cutoffs."""
    evals = list(evaluations)
    if not evals:
        raise UsageError("no judged queries to evaluate (no qrels entry has relevance > 0)")
    ks = tuple(m.k for m in evals[0].cutoffs)
    total = sum(e.num_queries for e in evals)
    cutoffs = []
    for i, k in enumerate(ks):
        if any(len(e.cutoffs) != len(ks) or e.cutoffs[i].k != k for e in evals):
            raise UsageError("cannot average evaluations made at different cutoffs")
        cutoffs.append(
            MetricsAtK(
                k,
                sum(e.cutoffs[i].ndcg * e.num_queries for e in evals) / total,
                sum(e.cutoffs[i].recall * e.num_queries for e in evals) / total,
                sum(e.cutoffs[i].mrr * e.num_queries for e in evals) / total,
            )
        )
    return Evaluation(total, tuple(cutoffs))


def evaluate(qrels: Qrels, run: Run, ks: int | Iterable[int] = DEFAULT_KS) -> Evaluation:
    """Mean nDCG@k, Recall@k and MRR@k over the judged queries of ``qrels``."""
    return mean(per_query(qrels, run, ks).values())
