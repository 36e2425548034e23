"""Keyword-side pseudo-relevance feedback (RM3, Bo1), chosen by leave-one-collection-out.

For each collection, every setting of :mod:`semsearch.search.feedback` (and none) is run in
keyword mode on the cached ``semsearch eval`` index: a document scores as its best chunk's
keyword evidence, as in ``semsearch eval``. Leave one out: the setting (feedback off
included) with the best mean nDCG@10 over the other collections is scored on the one left
out, beside feedback off, with the paired per-query difference and its 95% bootstrap
interval. Per-query scores are cached in ``benchmarks/_work/prf_<name>.json``.

    python benchmarks/ranking_prf.py /work/shared/eval [--names scifact med ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ranking_dump import OUT, open_cached

from semsearch.evaluation.compare import paired
from semsearch.evaluation.metrics import ndcg_at_k
from semsearch.search.feedback import Feedback
from semsearch.search.keyword import keyword_hits
from semsearch.search.retrieve import CANDIDATES

NAMES = ["scifact", "med", "cacm", "npl", "arguana", "trec-dl19-pool", "cosqa", "xquad-de",
         "xquad-zh"]  # fmt: skip
OFF = "off"


def settings() -> dict[str, Feedback | None]:
    out: dict[str, Feedback | None] = {OFF: None}
    for docs, terms, orig in itertools.product((5, 10), (10, 20), (0.5, 0.7)):
        out[f"rm3 d={docs} t={terms} o={orig}"] = Feedback("rm3", docs, terms, orig)
    for docs, terms, orig in itertools.product((3, 10), (10,), (0.5, 0.7)):
        out[f"bo1 d={docs} t={terms} o={orig}"] = Feedback("bo1", docs, terms, orig)
    return out


def run(dataset: Path, split: str, grid: dict[str, Feedback | None]) -> dict[str, dict[str, float]]:
    """Per-query keyword-mode nDCG@10 of each setting (cached per collection)."""
    name = dataset.name + ("" if split == "test" else f"-{split}")
    cache = OUT / f"prf_{name}.json"
    res: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [s for s in grid if s not in res]
    if not todo:
        return res
    c = open_cached(dataset, split)
    v = c.index.live.view
    assert v is not None
    kw = v.store.keyword_index()
    qrels = c.col.qrels
    for s in todo:
        t0 = time.time()
        scores = {}
        for q in c.col.queries:
            h = keyword_hits(kw, q.text, CANDIDATES, feedback=grid[s])
            docs = kw.doc_of(h.rows)
            ev = h.evidence(h.rows, docs, every_doc=False)
            best: dict[int, float] = {}
            for d, e in zip(docs.tolist(), ev.tolist(), strict=True):
                best[d] = max(best.get(d, -1.0), e)
            names = kw.doc_ids(best)
            ranking = [(names[d], e) for d, e in best.items() if e > 0]
            if q.id in c.own:
                ranking = [(n, e) for n, e in ranking if n != q.id]
            scores[q.id] = ndcg_at_k(qrels.get(q.id, {}), ranking, 10) if ranking else 0.0
        res[s] = scores
        print(f"{name:16} {s:24} {np.mean(list(scores.values())):.4f} "
              f"({time.time() - t0:.0f}s)", file=sys.stderr)  # fmt: skip
        OUT.mkdir(exist_ok=True)
        cache.write_text(json.dumps(res))
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--names", nargs="*", default=NAMES)
    ap.add_argument("--out", type=Path, default=OUT / "prf.json")
    a = ap.parse_args()
    grid = settings()
    res = {n: run(a.eval_dir / n, "test", grid) for n in a.names}
    train = {n: n for n in a.names}
    if "cosqa" in a.names:
        res["cosqa-dev"] = run(a.eval_dir / "cosqa", "dev", grid)
        train["cosqa"] = "cosqa-dev"
    mean = {n: {s: float(np.mean(list(r[s].values()))) for s in grid} for n, r in res.items()}
    report: dict[str, object] = {"mean": mean, "loo": {}}
    for held in a.names:
        others = [train[o] for o in a.names if o != held]
        pick = max(grid, key=lambda s: np.mean([mean[o][s] for o in others]))
        d = paired(res[held][pick], res[held][OFF])
        report["loo"][held] = [pick, mean[held][pick], mean[held][OFF], d.mean, d.low, d.high]  # type: ignore[index]
        print(f"{held:15} off {mean[held][OFF]:.3f} | LOO {mean[held][pick]:.3f} ({pick}) "
              f"{d.mean:+.3f} [{d.low:+.3f},{d.high:+.3f}] {d.wins}/{d.losses}")  # fmt: skip
    for s in grid:
        if s == OFF:
            continue
        diffs = [paired(res[n][s], res[n][OFF]) for n in a.names]
        print(f"{s:24} " + " ".join(f"{n[:6]} {p.mean:+.3f}[{p.low:+.3f},{p.high:+.3f}]"
                                    for n, p in zip(a.names, diffs, strict=True)))  # fmt: skip
    a.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
