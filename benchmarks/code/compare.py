"""Paired per-query differences between runs of ``benchmarks.code.score`` (its ``--json``).

    python -m benchmarks.code.compare RUN.json [MORE.json]   # each variant against its mode
    python -m benchmarks.code.compare RUN.json --against OTHER.json  # same labels, two runs

For each pair: queries, the mean difference of nDCG@10 (over every query of every tree),
queries better / worse / equal, a 95% paired bootstrap interval of the mean difference
(10,000 resamples, fixed seed) and the two-sided sign test's p. A difference whose interval
holds 0 is not told from noise.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

RESAMPLES = 10_000


class Paired(NamedTuple):
    queries: int
    mean: float
    better: int
    worse: int
    low: float
    high: float
    sign_p: float


def per_query(rows: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    """label -> {tree/query id: nDCG@10}."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        scores = r["per_query"]
        assert isinstance(scores, dict)
        mine = out.setdefault(str(r["mode"]), {})
        mine.update({f"{r['tree']}/{q}": float(v) for q, v in scores.items()})
    return out


def paired(a: dict[str, float], b: dict[str, float]) -> Paired:
    """``b`` minus ``a`` on the queries both have."""
    keys = sorted(a.keys() & b.keys())
    d = np.array([b[k] - a[k] for k in keys])
    rng = np.random.default_rng(0)
    means = d[rng.integers(0, len(d), (RESAMPLES, len(d)))].mean(axis=1)
    better, worse = int((d > 1e-12).sum()), int((d < -1e-12).sum())
    return Paired(len(d), float(d.mean()), better, worse, float(np.percentile(means, 2.5)),
                  float(np.percentile(means, 97.5)), sign_test(better, worse))  # fmt: skip


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact binomial p of ``better`` vs ``worse`` (ties left out)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def show(name: str, p: Paired) -> None:
    print(
        f"{name:34} n={p.queries:3}  diff {p.mean:+.4f}  [{p.low:+.4f}, {p.high:+.4f}]  "
        f"better {p.better:2} worse {p.worse:2}  sign p {p.sign_p:.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="+", help="one run's --json (several: merged)")
    ap.add_argument("--against", type=Path, nargs="+", default=None, help="a second run")
    args = ap.parse_args(argv)
    runs = per_query([r for f in args.run for r in json.loads(f.read_text())])
    if args.against:
        other = per_query([r for f in args.against for r in json.loads(f.read_text())])
        for label in runs.keys() & other.keys():
            show(f"{label}: second - first", paired(runs[label], other[label]))
        return 0
    for label, scores in runs.items():
        mode, _, variant = label.partition("+")
        if variant and mode in runs:
            show(f"{label} - {mode}", paired(runs[mode], scores))
    for mode in ("keyword", "dense", "hybrid"):
        if mode in runs and "bm25" in runs:
            show(f"{mode} - bm25", paired(runs["bm25"], runs[mode]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
