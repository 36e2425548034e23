"""The best-sentence line: how often the narrowed choice agrees with embedding every sentence.

``python -m benchmarks.best_sentence_bench INDEX QUERIES.jsonl [N]``: for the first N queries
(BEIR ``queries.jsonl``), search INDEX (built with the default model) for the top 5 hits and
pick each hit's best sentence twice, interleaved: with ``api.reading.best_sentences`` (the
sentences sharing the most query terms compete) and with the oracle that embeds every
sentence of the hit. Prints the agreement, how far below the oracle's cosine the chosen
sentence lies, how many sentences each embeds, and the time each took.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

K = 5


def main(argv: list[str]) -> None:
    from semsearch import api
    from semsearch.api.reading import best_sentences
    from semsearch.ingest.chunk import sentence_spans

    index = api.SemanticIndex.load(Path(argv[0]))
    emb = index.embedder
    with open(argv[1], encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f if line.strip()]
    queries = queries[: int(argv[2])] if len(argv) > 2 else queries
    counted = _Counting(emb)
    hits_n = multi = agree = oracle_embeds = 0
    gaps: list[float] = []
    t_new = t_oracle = 0.0
    for q in queries:
        hits = index.search(q, k=K)
        t = time.perf_counter()
        chosen = best_sentences(counted, q, hits)
        t_new += time.perf_counter() - t
        t = time.perf_counter()
        qvec = emb.encode([q], kind="query")[0]
        for h, span in zip(hits, chosen, strict=True):
            spans = sentence_spans(h.text) or [(0, len(h.text))]
            hits_n += 1
            if len(spans) == 1:
                agree += span == spans[0]
                gaps.append(0.0)
                continue
            multi += 1
            scores = emb.encode([h.text[a:b] for a, b in spans]) @ qvec
            oracle_embeds += len(spans)
            best = int(np.argmax(scores))
            agree += span == spans[best]
            gaps.append(float(scores[best] - scores[spans.index(span)]))
        t_oracle += time.perf_counter() - t
    gap = np.asarray(gaps)
    print(
        json.dumps(
            {
                "queries": len(queries),
                "hits": hits_n,
                "multi_sentence_hits": multi,
                "agreement": agree / max(hits_n, 1),
                "mean_cosine_gap": float(gap.mean()) if gaps else 0.0,
                "within_0.05": float(np.mean(gap < 0.05)) if gaps else 1.0,
                "sentences_embedded": counted.texts,
                "oracle_sentences_embedded": oracle_embeds,
                "seconds": t_new,
                "oracle_seconds": t_oracle,
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


class _Counting:
    """The embedder, counting the document texts it is asked to embed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.texts = 0
        self.dim: int = inner.dim  # type: ignore[attr-defined]  (query_vectors reads it)

    def encode(self, texts: list[str], *, kind: str = "document") -> np.ndarray:
        if kind == "document":
            self.texts += len(texts)
        return self.inner.encode(texts, kind=kind)  # type: ignore[attr-defined, no-any-return]


if __name__ == "__main__":
    main(sys.argv[1:])
