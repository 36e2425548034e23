"""A tiny learned fusion model, fitted leave-one-collection-out on ``ranking_adaptive``'s tables.

The dense weight of a query is the shipped rule's (:data:`semsearch.search.fuse.RULE`) plus a
linear function of its standardised features: the dense list's confidence and best-part
shares, how foreign the query is to the model and how finely its vocabulary splits it (what
:func:`semsearch.search.fuse.query_signals` sees), and five more read from the dumps: the
number of query terms, the idf mass of the query (BM25's full match), the best cosine, the
gap between the best and tenth-best of each list's parts, and the overlap of the two lists'
top ten documents. The coefficients start at 0 (the shipped rule) and move by coordinate
descent on the training collections' mean nDCG@10 (each collection weighing the same;
CoSQA's dev qrels stand for it), looked up in the per-query table of nDCG at each weight.
A query the code gate takes keeps the gate's weight (:func:`ranking_adaptive.score_rule`).

    python benchmarks/ranking_adaptive.py            # builds the tables first
    python benchmarks/ranking_learned.py [--keyword VARIANT]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks import ranking_fusion
from benchmarks.ranking_adaptive import NORMS, W, parts_of, prepare
from benchmarks.ranking_fusion import EVAL, NAMES, doc_max, load
from semsearch.evaluation.beir import read_qrels
from semsearch.evaluation.compare import paired
from semsearch.search import fuse

FEATURES = ("conf_share", "strength_share", "foreign", "split", "log_terms", "idf_mass",
            "top_cos", "dense_gap", "keyword_gap", "overlap")  # fmt: skip
STEPS = (0.2, 0.1, 0.05, 0.025)
#: Least gain in the training mean for a coefficient to move (guards against fitting noise).
MIN_GAIN = 2e-4


def extra_features(name: str) -> np.ndarray:
    """Per query: the six features read from the dump (see the module's doc)."""
    split = "dev" if name.endswith("-dev") else "test"
    qrels = read_qrels(EVAL / name.split("-dev")[0] / "qrels" / f"{split}.tsv")
    rows = []
    for q in load(name, qrels):
        d, k = parts_of(q, "bg")
        dd, kd = doc_max(q, d), doc_max(q, k)
        top_d = set(np.argsort(-dd, kind="stable")[:10].tolist())
        top_k = set(np.argsort(-kd, kind="stable")[:10].tolist())
        sd, sk = np.sort(dd)[::-1], np.sort(kd)[::-1]
        gap = lambda s: float(s[0] - s[min(9, len(s) - 1)]) if len(s) else 0.0  # noqa: E731
        rows.append((np.log1p(q.nterms), q.full, float(q.cos.max(initial=0.0)), gap(sd),
                     gap(sk), len(top_d & top_k) / 10.0))  # fmt: skip
    return np.asarray(rows, np.float64)


def scores(
    data: dict[str, np.ndarray], theta: np.ndarray, mu: np.ndarray, sd: np.ndarray
) -> np.ndarray:
    """Per-query nDCG@10 with the weight ``RULE's + theta . standardised features``."""
    base = fuse.RULE.weight(fuse.QuerySignals(*data["feats"].T))
    w = np.clip(base + ((data["x"] - mu) / sd) @ theta, 0.0, 1.0)
    j = np.clip(np.round(w / (W[1] - W[0])).astype(int), 0, len(W) - 1)
    out = data["grid"][NORMS.index("bg"), np.arange(len(w)), j]
    at = int(np.argmin(np.abs(W - fuse.CODE_RULE.alpha)))
    gated = data["code"] >= fuse.CODE_GATE
    return np.where(gated, data["grid"][NORMS.index("bg0"), :, at], out)


def per_query(values: np.ndarray) -> dict[str, float]:
    """Scores keyed by query position, as :func:`paired` takes them."""
    return {str(i): float(v) for i, v in enumerate(values)}


def fit(train: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients by coordinate descent on the mean over ``train``, from 0."""
    x = np.concatenate([t["x"] for t in train])
    mu, sd = x.mean(0), np.maximum(x.std(0), 1e-9)
    theta = np.zeros(x.shape[1])

    def objective(th: np.ndarray) -> float:
        return float(np.mean([scores(t, th, mu, sd).mean() for t in train]))

    best = objective(theta)
    for step in STEPS:
        moved = True
        while moved:
            moved = False
            for i in range(len(theta)):
                for sign in (1.0, -1.0):
                    trial = theta.copy()
                    trial[i] += sign * step
                    got = objective(trial)
                    if got > best + MIN_GAIN:
                        theta, best, moved = trial, got, True
    return theta, mu, sd


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keyword", default="", help="a keyword variant dumped with --also")
    ap.add_argument("--work", default=None, help="where the dumps are")
    a = ap.parse_args()
    if a.work:
        from pathlib import Path

        ranking_fusion.WORK = Path(a.work)
    ranking_fusion.KEYWORD = a.keyword
    names = [n for n in NAMES if (ranking_fusion.WORK / f"dump_{n}.npz").exists()]
    every = names + (["cosqa-dev"] if "cosqa" in names else [])
    data = {}
    for n in every:
        d = prepare(n, None, ["bg"])
        d["x"] = np.column_stack([d["feats"], extra_features(n)])
        data[n] = d
        print(f"{n}: {len(d['x'])} queries", file=sys.stderr)
    train_of = {n: ("cosqa-dev" if n == "cosqa" else n) for n in names}
    zero = np.zeros(len(FEATURES))
    head = f"{'collection':15} {'best plain':>10} {'default':>7} {'learned':>7}"
    print(head + "  learned - best plain        learned - default         coefficients")
    for held in names:
        theta, mu, sd = fit([data[train_of[o]] for o in names if o != held])
        dd = data[held]
        got, now = scores(dd, theta, mu, sd), scores(dd, zero, mu, sd)
        plain = dd["plain"][:, int(np.argmax(dd["plain"].mean(0)))]
        d1 = paired(per_query(got), per_query(plain))
        d2 = paired(per_query(got), per_query(now))
        coef = " ".join(f"{f}={t:+.3f}" for f, t in zip(FEATURES, theta, strict=True) if t)
        print(f"{held:15} {plain.mean():10.3f} {now.mean():7.3f} {got.mean():7.3f}  "
              f"{d1.mean:+.3f} [{d1.low:+.3f},{d1.high:+.3f}]  "
              f"{d2.mean:+.3f} [{d2.low:+.3f},{d2.high:+.3f}]  {coef or '(none: the default)'}",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
