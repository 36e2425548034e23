"""Where keyword mode and bm25s part ways: analysis, k1/b and idf, one at a time.

Whole-document BM25 over a BEIR collection in NumPy (a sparse term-frequency matrix), with
either bm25s's own analysis (Lucene English stopwords, Snowball English, ``\\w\\w+`` tokens)
or semsearch's (:func:`semsearch.store.tokenize.terms`), each with Lucene's idf
(``log(1 + (N - df + 0.5) / (df + 0.5))``, what bm25s uses) or FTS5's
(``log((N - df + 0.5) / (df + 0.5))``, floored at 1e-6, what semsearch uses), and a grid of
k1 and b. A repeated query word counts again, as in semsearch. nDCG@10 by
:mod:`semsearch.evaluation.metrics`.

    python benchmarks/ranking_bm25.py /work/shared/eval/cacm [/work/shared/eval/med ...]
    python benchmarks/ranking_bm25.py --path fts5 lucene doc chunk -- /work/shared/eval/cacm

``--path`` scores semsearch's own keyword mode instead (chunk and document evidence, the
cached ``semsearch eval`` index) with the idf patched in for the run: FTS5's (today's),
Lucene's, or Lucene's at the document or the chunk level only. A what-if: nothing is written.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from semsearch.evaluation.beir import load_beir
from semsearch.evaluation.metrics import evaluate
from semsearch.evaluation.run import self_hit_queries
from semsearch.store.tokenize import STOPWORDS, terms

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def bm25s_terms() -> Callable[[str], list[str]]:
    """bm25s's default English analysis: lower case, ``\\w\\w+``, stopwords, Snowball."""
    import Stemmer  # PyStemmer, bm25s's stemmer

    stem = Stemmer.Stemmer("english").stemWord
    return lambda t: [stem(w) for w in _TOKEN.findall(t.lower()) if w not in STOPWORDS]


def run(
    docs: Sequence[list[str]], queries: Sequence[list[str]], k1: float, b: float, lucene: bool
) -> list[np.ndarray]:
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, d in enumerate(docs):
        for t, c in Counter(d).items():
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
            vals.append(c)
    from scipy.sparse import csc_matrix

    n = len(docs)
    tf = csc_matrix((np.asarray(vals, np.float64), (rows, cols)), shape=(n, len(vocab)))
    lengths = np.asarray([len(d) for d in docs], np.float64)
    avgdl = lengths.mean()
    df = np.diff(tf.indptr)
    if lucene:
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    else:
        idf = np.maximum(np.log((n - df + 0.5) / (df + 0.5)), 1e-6)
    norm = k1 * (1 - b + b * lengths / avgdl)
    out = []
    for q in queries:
        s = np.zeros(n)
        for t, c in Counter(q).items():
            j = vocab.get(t)
            if j is None:
                continue
            lo, hi = tf.indptr[j], tf.indptr[j + 1]
            ids, f = tf.indices[lo:hi], tf.data[lo:hi]
            s[ids] += c * idf[j] * f * (k1 + 1) / (f + norm[ids])
        out.append(s)
    return out


def fts5_idf(n: int, df: int) -> float:
    return max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6)


def lucene_idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def keyword_path(variant: str, dataset: Path) -> float:
    """semsearch's keyword-mode nDCG@10 with the idf of ``variant`` patched in."""
    import semsearch.store.segmented_keyword as seg
    from benchmarks.ranking_dump import open_cached
    from semsearch.evaluation.run import CHUNK_DEPTH
    from semsearch.search.keyword import keyword_hits
    from semsearch.search.retrieve import _keyword_ranked
    from semsearch.store.postings import CHUNK, DOC

    lucene_at = {"fts5": (), "lucene": (CHUNK, DOC), "doc": (DOC,), "chunk": (CHUNK,)}[variant]
    original, original_idf = seg.SegmentedKeyword.score, seg.idf  # type: ignore[attr-defined]

    def score(self: seg.SegmentedKeyword, terms: object, level: int) -> object:
        seg.idf = lucene_idf if level in lucene_at else fts5_idf  # type: ignore[attr-defined]
        return original(self, terms, level)  # type: ignore[arg-type]

    seg.SegmentedKeyword.score = score  # type: ignore[method-assign,assignment]
    try:
        c = open_cached(dataset)
        assert c.index._view is not None
        kw = c.index._view.store.keyword_index()
        runs = {}
        for q in c.col.queries:
            h = keyword_hits(kw, q.text, CHUNK_DEPTH)
            r = _keyword_ranked(h, kw.doc_of(h.rows))
            docs = kw.doc_of(r.rows)
            names = kw.doc_ids(np.unique(docs).tolist())
            best: dict[str, float] = {}
            for d, s in zip(docs.tolist(), r.scores.tolist(), strict=True):
                best.setdefault(names[int(d)], s)
            if q.id in c.own:
                best.pop(q.id, None)
            runs[q.id] = list(best.items())[:100]
        return evaluate(c.col.qrels, runs, ks=(10,)).at(10).ndcg
    finally:
        seg.SegmentedKeyword.score = original  # type: ignore[method-assign]
        seg.idf = original_idf  # type: ignore[attr-defined]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--path", nargs="*", choices=("fts5", "lucene", "doc", "chunk"))
    a = ap.parse_args()
    if a.path:
        for path in a.datasets:
            for variant in a.path:
                nd = keyword_path(variant, path)
                print(f"{path.name:10} keyword path, {variant:6} idf: {nd:.4f}", flush=True)
        return 0
    analysers = {"bm25s": bm25s_terms(), "semsearch": terms}
    settings = [(1.2, 0.75), (1.5, 0.75)]
    for path in a.datasets:
        col = load_beir(path, "test")
        docs = list(col.corpus())
        queries = [q for q in col.queries if q.id in col.qrels]
        own = self_hit_queries(queries, docs, "auto")
        ids = [d.id for d in docs]
        for aname, analyse in analysers.items():
            dterms = [analyse(d.full_text) for d in docs]
            qterms = [analyse(q.text) for q in queries]
            for lucene in (True, False):
                line = []
                for k1, b in settings:
                    runs = {}
                    for q, s in zip(queries, run(dterms, qterms, k1, b, lucene), strict=True):
                        top = np.argsort(-s, kind="stable")[:110]
                        hits = [(ids[i], float(s[i])) for i in top if s[i] > 0]
                        runs[q.id] = [h for h in hits if not (q.id in own and h[0] == q.id)]
                    nd = evaluate(col.qrels, runs, ks=(10,)).at(10).ndcg
                    line.append(f"k1 {k1} b {b}: {nd:.4f}")
                idf = "lucene idf" if lucene else "fts5 idf"
                print(f"{path.name:10} {aname:9} {idf:10} " + " | ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
