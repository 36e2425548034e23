"""Scores that mean the same from one query to the next, and their hybrid blend.

* dense part: how far the chunk's cosine stands above the query's background (the cosine
  of the ``CANDIDATES``-th best chunk), as a fraction of the way to a perfect 1.0. A query
  that matches nothing in particular ("the and of") stays near 0 however its list is cut.
* keyword part: the BM25 evidence as a fraction of the most BM25 can give the query's
  words (each word's idf x (k1 + 1), reached as a word repeats without end). It reads the
  same whatever the query's length or the words' rarity; one mention of every query word
  in a document of average length gives 1 / (k1 + 1) = 0.45.
* hybrid: ``w * dense + (1 - w) * keyword``, in [0, 1], where the dense weight ``w`` is
  set per query (:func:`dense_weight`, rule :data:`RULE`): ``alpha``, cut where the dense
  model cannot read the query. semsearch's models are English-only (:data:`ENGLISH_ONLY`):
  a query in another language (its function words say so, or its letters are not Latin)
  or one the model's vocabulary splits into pieces of a character or two (Chinese) gets a
  smaller dense weight, as an English model's cosines say little there. Chosen by leaving
  one of nine collections out at a time (docs/ranking.md).
* code given as plain text: where most of a query's best dense candidates look like
  source code (:func:`on_code`, :mod:`.codelike`: by their content) and no reader made
  them code, the dense weight is :data:`CODE_RULE`'s and the dense side gets no feedback.
  Without the code reader's signals (definitions, paths) keyword evidence is thin on code,
  and feedback pulls a query towards its first pass's other functions (CoSQA; chosen on
  its ``dev`` qrels; files the code reader made keep the default, docs/ranking.md).

Pure functions on arrays, so each can be checked against a hand computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..store.bm25 import K1

if TYPE_CHECKING:
    from ..embed import Embedder
#: Candidates whose scores measure a list's confidence (:func:`confidence`).
CONFIDENCE_TOP = 10
#: BM25's k1 + 1: a word's score approaches idf x this as it repeats.
K1_PLUS_1 = K1 + 1.0
#: Pseudo-relevance feedback: the query vector moves towards the mean vector of the first
#: pass's best FEEDBACK_DOCS hits (distinct documents) with this weight (README).
FEEDBACK_WEIGHT = 1.0
FEEDBACK_DOCS = 3
#: The first pass that picks those documents blends with this fixed weight (the per-query
#: weight was measured on the final blend only; docs/ranking.md).
FEEDBACK_ALPHA = 0.35
#: Characters per model token at and above which the vocabulary reads a query whole;
#: English prose gives about 4, German through an English vocabulary 2.6, Chinese 1.
WHOLE_TOKEN = 3.0


def dense_part(cosine: np.ndarray, floor: float) -> np.ndarray:
    """Cosine above the background ``floor``, as a fraction of the way to 1, in [0, 1]."""
    span = max(1.0 - floor, 1e-6)
    return np.clip((np.asarray(cosine, np.float64) - floor) / span, 0.0, 1.0)


def keyword_part(bm25: np.ndarray, full_match: float) -> np.ndarray:
    """BM25 as a fraction of its ceiling ``K1_PLUS_1 * full_match`` (``full_match``: the sum
    of the query terms' idf), in [0, 1]; 0 everywhere when no query term is in the index."""
    b = np.asarray(bm25, np.float64)
    if not np.isfinite(b).all():  # (a pass that tells, cheaper than the copy that mends)
        b = np.nan_to_num(b, nan=0.0)
    if full_match <= 0:
        return np.zeros_like(b)
    return np.clip(b / (K1_PLUS_1 * full_match), 0.0, 1.0)


def confidence(part: np.ndarray, top: int = CONFIDENCE_TOP) -> float:
    """How far a list's best score stands above its best ``top`` on average, as a fraction
    of the best, in [0, 1); 0 for a list with nothing above 0."""
    v = np.asarray(part, np.float64)
    if len(v) == 0:
        return 0.0
    if 0 < top < len(v) and not np.isnan(v.max()):  # (a partition first: the same values)
        best = -np.sort(np.partition(-v, top - 1)[:top])
    else:
        best = np.sort(v)[::-1][:top]
    return float((best[0] - best.mean()) / best[0]) if best[0] > 0 else 0.0


def blend(dense: np.ndarray, keyword: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """The hybrid score of each candidate from its two parts (each in [0, 1]), with the
    dense weight ``alpha`` (by default :func:`dense_weight` of a query the model reads)."""
    d = np.asarray(dense, np.float64)
    k = np.asarray(keyword, np.float64)
    w = dense_weight(d, k) if alpha is None else alpha
    return w * d + (1.0 - w) * k


def order(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions sorting candidates best first, ties to the smaller row."""
    return np.lexsort((rows, -scores))


def feedback_query(query: np.ndarray, feedback: np.ndarray, weight: float) -> np.ndarray:
    """Rocchio: the unit vector of ``query + weight * mean(feedback)``."""
    if len(feedback) == 0 or weight == 0:
        return query
    moved = np.asarray(query, np.float64) + weight * np.asarray(feedback, np.float64).mean(0)
    norm = np.linalg.norm(moved)
    return (moved / norm).astype(np.float32) if norm > 0 else query


@dataclass(frozen=True)
class WeightRule:
    """A query's dense weight from its signals: ``alpha`` moved ``conf`` of the way towards
    the dense list's confidence share and ``strength`` towards its share of the best parts,
    then cut by ``fit`` x the query's foreignness and ``vocab`` x its split share."""

    alpha: float
    conf: float = 0.0
    strength: float = 0.0
    fit: float = 0.0
    vocab: float = 0.0

    def weight(self, s: QuerySignals) -> np.ndarray:
        """The weight (fields of ``s`` may be arrays: one weight per query), in [0, 1]."""
        w = (
            self.alpha
            + self.conf * (np.asarray(s.conf_share) - self.alpha)
            + self.strength * (np.asarray(s.strength_share) - self.alpha)
        )
        w = w * (1.0 - self.fit * np.asarray(s.foreign)) * (1.0 - self.vocab * np.asarray(s.split))
        return np.clip(w, 0.0, 1.0)


#: The hybrid's dense weight rule, chosen by leaving one of nine collections out at a time
#: (docs/ranking.md); a model whose dense side is far weaker has its own (the static model:
#: 0.05, as its cosines add little to BM25 on any of the nine).
RULE = WeightRule(alpha=0.45, fit=0.5, vocab=0.5)
MODEL_RULES = {"static": WeightRule(alpha=0.05)}
#: A query whose best ``CODE_SAMPLE`` dense candidates are at least ``CODE_GATE`` code-like
#: is fused by ``CODE_RULE``, without dense feedback (chosen on CoSQA's dev qrels; it never
#: fires on the eight prose collections; docs/ranking.md).
CODE_SAMPLE = 10
CODE_GATE = 0.5
CODE_RULE = WeightRule(alpha=0.75)


class Reading(NamedTuple):
    """How far the dense model is from reading one query, each in [0, 1] (0: it reads it),
    and the model's weight rule."""

    foreign: float  # the query is in a language the model was not trained on
    split: float  # the model's vocabulary breaks the query into pieces of 1-2 characters
    rule: WeightRule = RULE
    feedback: bool = True  # the dense side's pseudo-relevance feedback applies


#: A query the model reads.
READS = Reading(0.0, 0.0)
#: Models trained on English only: all-MiniLM-L6-v2 and the static model distilled from it.
ENGLISH_ONLY = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "static"})


def foreign_share(text: str) -> float:
    """1.0 when ``text`` reads as a language other than English (two of its function words
    say so), else the share of its letters outside the Latin script (0 for English)."""
    from ..store.tokenize import DEFAULT_LANGUAGE, query_languages

    langs = query_languages(text)
    if len(langs) == 1 and langs[0] != DEFAULT_LANGUAGE:
        return 1.0
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    other = sum(1 for c in letters if ord(c) >= 0x0250 and not 0x1E00 <= ord(c) <= 0x1EFF)
    return other / len(letters)


def split_share(chars_per_token: float) -> float:
    """0 at ``WHOLE_TOKEN`` characters per token or more, rising to 1 at one per token."""
    return float(np.clip((WHOLE_TOKEN - chars_per_token) / (WHOLE_TOKEN - 1.0), 0.0, 1.0))


def readings(embedder: Embedder, texts: Sequence[str]) -> list[Reading]:
    """How far ``embedder`` is from reading each query (0s for a model not known to be
    English-only: nothing is assumed about what it reads), with the model's rule."""
    rule = MODEL_RULES.get(embedder.name, RULE)
    if embedder.name not in ENGLISH_ONLY:
        return [Reading(0.0, 0.0, rule) for _ in texts]
    out = []
    for text, tokens in zip(texts, embedder.token_counts(list(texts)), strict=True):
        chars = sum(not c.isspace() for c in text)
        per_token = chars / tokens if tokens else WHOLE_TOKEN
        out.append(Reading(foreign_share(text), split_share(per_token), rule))
    return out


def on_code(reading: Reading, texts: Sequence[str]) -> Reading:
    """``reading`` for a query whose best dense candidates are ``texts``: :data:`CODE_RULE`
    and no dense feedback when at least :data:`CODE_GATE` of them look like code. Only
    the default rule is replaced (another model's own rule stays)."""
    from .codelike import looks_like_code

    if reading.rule != RULE or not texts:
        return reading
    share = sum(map(looks_like_code, texts)) / len(texts)
    return reading._replace(rule=CODE_RULE, feedback=False) if share >= CODE_GATE else reading


class QuerySignals(NamedTuple):
    """What one query's two lists and text say about how far to trust the dense list."""

    conf_share: float  # the dense list's share of the two lists' confidence
    strength_share: float  # the dense list's share of the two lists' best parts
    foreign: float  # Reading.foreign
    split: float  # Reading.split


def _share(a: float, b: float) -> float:
    return 0.5 if a + b <= 0 else a / (a + b)


def query_signals(dense: np.ndarray, keyword: np.ndarray, reading: Reading = READS) -> QuerySignals:
    """The signals of one query from its candidates' two parts (aligned arrays)."""
    d = np.asarray(dense, np.float64)
    k = np.asarray(keyword, np.float64)
    return QuerySignals(
        _share(confidence(d), confidence(k)),
        _share(float(d.max(initial=0.0)), float(k.max(initial=0.0))),
        reading.foreign,
        reading.split,
    )


def dense_weight(dense: np.ndarray, keyword: np.ndarray, reading: Reading = READS) -> float:
    """One query's dense weight under its model's rule (:data:`RULE` unless
    :data:`MODEL_RULES` names the model), from its candidates' two parts and how far the
    model is from reading it."""
    return float(reading.rule.weight(query_signals(dense, keyword, reading)))
