"""Reference dense figure: sentence-transformers (torch, fp32) on whole documents.

The bundled all-MiniLM-L6-v2 encodes title + text of every document (truncated at the
model's 256 tokens, as BEIR does) and every judged query; documents are ranked by cosine.
Prints nDCG@10 and writes per-query figures to ``benchmarks/_work/st_<name>.json``.

    python benchmarks/ranking_st_dense.py /work/shared/eval/xquad-de [...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from semsearch.embed.models import resolve_model
from semsearch.evaluation.beir import load_beir
from semsearch.evaluation.metrics import per_query
from semsearch.evaluation.run import self_hit_queries

WORK = Path(__file__).resolve().parent / "_work"


def main(paths: list[str]) -> int:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(None)[1], device="cpu")
    for p in paths:
        t0 = time.time()
        col = load_beir(p)
        docs = list(col.corpus())
        queries = list(col.queries)
        own = self_hit_queries(queries, docs, "auto")
        dv = model.encode([d.full_text for d in docs], batch_size=64, normalize_embeddings=True)
        qv = model.encode([q.text for q in queries], batch_size=64, normalize_embeddings=True)
        sims = qv @ dv.T
        run = {}
        for n, q in enumerate(queries):
            top = np.argsort(-sims[n])[:101]
            hits = [
                (docs[i].id, float(sims[n, i]))
                for i in top
                if not (q.id in own and docs[i].id == q.id)
            ]
            run[q.id] = hits[:100]
        each = {q: e.at(10).ndcg for q, e in per_query(col.qrels, run, ks=(10,)).items()}
        name = Path(p).name
        (WORK / f"st_{name}.json").write_text(json.dumps(each))
        print(f"{name}: ST fp32 dense nDCG@10 {np.mean(list(each.values())):.4f} "
              f"({len(queries)} queries, {time.time() - t0:.0f}s)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
