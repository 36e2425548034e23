"""Is a difference real? Paired per-query differences with a bootstrap interval.

On 30-300 queries a mean difference under ~0.01 nDCG is usually noise; the interval says
how sure a claimed gain is. Queries are resampled with a fixed seed, so the same inputs
always give the same interval.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError

#: Bootstrap resamples; 10,000 keeps the 95% bounds stable to about 0.001.
RESAMPLES = 10_000


@dataclass(frozen=True)
class Paired:
    """``a - b`` over the queries both were scored on."""

    queries: int
    mean: float
    low: float  # 95% bootstrap interval of the mean difference
    high: float
    wins: int  # queries where a scored higher
    losses: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired(a: Mapping[str, float], b: Mapping[str, float], *, seed: int = 0) -> Paired:
    """Per-query differences ``a[q] - b[q]`` and a 95% percentile-bootstrap interval."""
    common = sorted(set(a) & set(b))
    if not common:
        raise UsageError("no query was scored by both runs")
    d = np.array([a[q] - b[q] for q in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 1000):  # blocks keep memory flat for many queries
        idx = rng.integers(0, len(d), size=(min(1000, RESAMPLES - start), len(d)))
        means[start : start + len(idx)] = d[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Paired(
        len(common),
        float(d.mean()),
        float(low),
        float(high),
        int((d > 0).sum()),
        int((d < 0).sum()),
    )


@dataclass(frozen=True)
class Baseline:
    """A collection's reference BM25 run (``bm25_baseline.json`` beside the corpus)."""

    ndcg_at_10: float
    per_query: Mapping[str, float]


def read_baseline(root: Path) -> Baseline | None:
    """The collection's ``bm25_baseline.json`` when it has one with per-query nDCG@10."""
    path = root / "bm25_baseline.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        per = {str(q): float(v["ndcg@10"]) for q, v in raw["per_query"].items()}
        return Baseline(float(raw["ndcg@10"]), per)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"{path}: not a baseline file (ndcg@10 and per_query)") from None
