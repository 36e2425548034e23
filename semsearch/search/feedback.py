"""Keyword-side pseudo-relevance feedback: RM3 and Bo1 query expansion.

The first keyword pass's best documents are taken as relevant, terms they share are added
to the query with weights, and the weighted query is scored again with BM25 (a term's
weight multiplies its BM25 contribution, as a repeated query word's count does).

* RM3 (Lavrenko & Croft's relevance model, interpolated as in Anserini): each feedback
  document's term distribution ``tf / length``, weighted by the document's share of the
  feedback documents' scores; the ``terms`` most likely terms, renormalised, are mixed with
  the query's own term distribution, the query keeping ``original`` of the mass.
* Bo1 (Amati's Bose-Einstein model, as in Terrier): a term's informativeness in the
  feedback documents, ``tf log2((1 + P) / P) + log2(1 + P)`` with ``P`` its documents'
  share of the collection; the ``terms`` best are added, the best at ``1 - original`` of the
  query's largest term weight.

Pure functions over term lists, so each is checked against a hand computation
(``tests/test_feedback.py``). Whether it is on by default was decided by leaving one of
nine collections out at a time (docs/ranking.md, ``benchmarks/ranking_prf.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Method = Literal["rm3", "bo1"]


@dataclass(frozen=True)
class Feedback:
    """One feedback setting: ``docs`` feedback documents, ``terms`` expansion terms, the
    original query's share ``original`` (RM3) or the expansion's top weight relative to the
    query's largest (Bo1: ``1 - original``)."""

    method: Method = "rm3"
    docs: int = 10
    terms: int = 10
    original: float = 0.5


#: Keyword-side feedback is off by default: under leave-one-collection-out it did not
#: generalise (docs/ranking.md, "Keyword-side feedback").
DEFAULT: Feedback | None = None
#: Characters of a feedback document read for its terms (bounds the work per query).
DOC_CHARS = 20_000


def rm3(
    query: Sequence[str],
    docs: Sequence[Sequence[str]],
    scores: Sequence[float],
    terms: int,
    original: float,
) -> dict[str, float]:
    """RM3 weights for ``query`` (its terms, repeats kept) given feedback documents (their
    terms) and their first-pass scores. The weights sum to the query's length, so a
    query's BM25 scale stays as it was; ties go to the alphabetically first term."""
    total = sum(max(s, 0.0) for s in scores)
    model: dict[str, float] = {}
    for words, s in zip(docs, scores, strict=True):
        if not words or total <= 0 or s <= 0:
            continue
        share = s / total / len(words)
        for t, tf in Counter(words).items():
            model[t] = model.get(t, 0.0) + share * tf
    top = sorted(model.items(), key=lambda kv: (-kv[1], kv[0]))[:terms]
    mass = sum(w for _, w in top)
    own = Counter(query)
    n = max(len(query), 1)
    out = {t: original * c for t, c in own.items()}
    if mass > 0:
        for t, w in top:
            out[t] = out.get(t, 0.0) + (1.0 - original) * n * w / mass
    else:
        out = {t: float(c) for t, c in own.items()}
    return out


def bo1(
    query: Sequence[str],
    docs: Sequence[Sequence[str]],
    df: Mapping[str, int],
    n_docs: int,
    terms: int,
    original: float,
) -> dict[str, float]:
    """Bo1 weights: the query's counts, plus each of the ``terms`` most informative
    feedback terms at ``(1 - original) * max count * w / max w``. ``df``: the number of
    documents holding each term (terms absent from it are not in the index and skipped)."""
    tf: Counter[str] = Counter()
    for words in docs:
        tf.update(words)
    info = {}
    for t, f in tf.items():
        if t not in df or n_docs <= 0:
            continue
        p = df[t] / n_docs
        info[t] = f * math.log2((1.0 + p) / p) + math.log2(1.0 + p)
    top = sorted(info.items(), key=lambda kv: (-kv[1], kv[0]))[:terms]
    own = Counter(query)
    out = {t: float(c) for t, c in own.items()}
    if not top or not own:
        return out
    peak, best = max(own.values()), top[0][1]
    for t, w in top:
        out[t] = out.get(t, 0.0) + (1.0 - original) * peak * w / best
    return out
