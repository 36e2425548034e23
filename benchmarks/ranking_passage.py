"""Passage to document evidence: a document's best chunk (MaxP) or its best chunk plus
``beta`` times its second best (towards SumP), on the hybrid blend at the default rule.

Replays the dumps of ``ranking_dump.py`` (``--keyword VARIANT``: the keyword evidence
dumped with ``--also``); leave one collection out picks ``beta`` on the others and scores
it on the one left out, paired against MaxP (95% bootstrap interval). CoSQA is left out:
its documents are single functions.

    python benchmarks/ranking_passage.py [--keyword lucene]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import ranking_fusion
from benchmarks.ranking_adaptive import query_texts
from benchmarks.ranking_fusion import NAMES, Query, load, ndcg10
from semsearch.embed import load_embedder
from semsearch.evaluation.beir import read_qrels
from semsearch.evaluation.compare import paired
from semsearch.search import fuse

BETAS = (0.0, 0.05, 0.1, 0.2, 0.3)


def best_two(q: Query, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate document's best and second-best chunk score (0 for a single chunk)."""
    s = np.asarray(chunk, np.float64)[q.perm]
    ends = [*q.starts[1:].tolist(), len(s)]
    best, second = np.empty(len(q.starts)), np.zeros(len(q.starts))
    for g, (lo, hi) in enumerate(zip(q.starts.tolist(), ends, strict=True)):
        part = np.sort(s[lo:hi])[::-1]
        best[g] = part[0]
        second[g] = part[1] if len(part) > 1 else 0.0
    return best, second


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keyword", default="", help="a keyword variant dumped with --also")
    a = ap.parse_args()
    ranking_fusion.KEYWORD = a.keyword
    emb = load_embedder(None)
    res = {}
    for name in (n for n in NAMES if n != "cosqa"):
        qs = load(name, read_qrels(ranking_fusion.EVAL / name / "qrels" / "test.tsv"))
        texts = query_texts(name)
        reads = fuse.readings(emb, [texts[q.qid] for q in qs])
        out = np.zeros((len(qs), len(BETAS)))
        for i, (q, r) in enumerate(zip(qs, reads, strict=True)):
            d = fuse.dense_part(q.cos2, q.floor2)
            k = fuse.keyword_part(q.kw.astype(np.float64), q.full)
            best, second = best_two(q, fuse.blend(d, k, fuse.dense_weight(d, k, r)))
            out[i] = [ndcg10(q, best + b * second) for b in BETAS]
        res[name] = out
        print(name, " ".join(f"{b}:{m:.4f}" for b, m in zip(BETAS, out.mean(0), strict=True)))
    for held, out in res.items():
        others = np.mean([res[o].mean(0) for o in res if o != held], axis=0)
        pick = int(np.argmax(others))
        p = paired(dict(enumerate(out[:, pick])), dict(enumerate(out[:, 0])))
        print(f"{held:15} beta {BETAS[pick]}: {out[:, pick].mean():.4f} vs MaxP "
              f"{out[:, 0].mean():.4f}  {p.mean:+.4f} [{p.low:+.4f},{p.high:+.4f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
