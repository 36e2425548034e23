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

``--diff N`` walks from bm25s to semsearch's keyword mode one change at a time (the
analysis piece by piece: folding, word splitting, identifier parts, language detection;
then k1, the idf, and the real chunk + document path: document evidence alone without the
typo fallback, the typo fallback, the chunk's own share), with each step's paired
difference, and prints the N queries that lose most with their terms' document frequencies
and both idfs: the per-query cause of a gap. ``--idf lucene`` walks to keyword mode with
Lucene's idf instead (what-if, as ``--path lucene``).

    python benchmarks/ranking_bm25.py --diff 8 /work/shared/eval/cacm
    python benchmarks/ranking_bm25.py --diff 8 --idf lucene /work/shared/eval/scifact

``--path`` scores semsearch's own keyword mode instead (chunk and document evidence, the
cached ``semsearch eval`` index) with the idf patched in for the run: FTS5's (today's),
Lucene's, or Lucene's at the document or the chunk level only. A what-if: nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from semsearch.evaluation.beir import load_beir
from semsearch.evaluation.metrics import evaluate
from semsearch.evaluation.run import self_hit_queries
from semsearch.store import tokenize as tk
from semsearch.store.tokenize import STOPWORDS, terms

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def bm25s_terms() -> Callable[[str], list[str]]:
    """bm25s's default English analysis: lower case, ``\\w\\w+``, stopwords, Snowball."""
    import Stemmer  # PyStemmer, bm25s's stemmer

    stem = Stemmer.Stemmer("english").stemWord
    return lambda t: [stem(w) for w in _TOKEN.findall(t.lower()) if w not in STOPWORDS]


def folded_terms() -> Callable[[str], list[str]]:
    """bm25s's analysis on semsearch's folded text (NFKC, casefold, accents dropped)."""
    import Stemmer

    stem = Stemmer.Stemmer("english").stemWord
    return lambda t: [stem(w) for w in _TOKEN.findall(tk._fold(t)) if w not in STOPWORDS]


def word_terms(t: str) -> list[str]:
    """semsearch's words (split at every non-letter, ``_`` too) stemmed as English, without
    identifier parts or language detection."""
    return [x for w in tk._WORD.findall(tk._fold(t)) for x in tk._word(w, True, "english")]


def english_terms(t: str) -> list[str]:
    """semsearch's terms with identifier parts, stemmed as English (no language detection)."""
    return terms(t, language="english")


#: ``--diff``'s analysis steps, from bm25s's to semsearch's (:func:`terms`), one change each.
ANALYSIS_STEPS: tuple[tuple[str, Callable[[], Callable[[str], list[str]]]], ...] = (
    ("bm25s (its analysis, k1 1.5, Lucene idf)", bm25s_terms),
    ("+ NFKC, casefold, accents dropped", folded_terms),
    ("+ words split at every non-letter", lambda: word_terms),
    ("+ identifier parts (camelCase, snake, dotted)", lambda: english_terms),
    ("+ language detection (semsearch's terms)", lambda: terms),
)


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


#: bm25s's nDCG@10 on each collection (k1 1.5, b 0.75, Lucene idf; the collection READMEs,
#: CoSQA on ``test``, ArguAna with self-hits dropped): keyword mode's goal is this - 0.005.
BM25S = {
    "scifact": 0.686, "med": 0.6957, "cacm": 0.4937, "npl": 0.4279, "arguana": 0.4929,
    "trec-dl19-pool": 0.4157, "cosqa": 0.3322, "xquad-de": 0.9384, "xquad-zh": 0.9645,
}  # fmt: skip
#: ``--path`` variants: (idf at the chunk level, idf at the document level, k1, b, the
#: chunk's own share of its evidence).
VARIANTS = {
    "fts5": (fts5_idf, fts5_idf, 1.2, 0.75, 0.25),
    "lucene": (lucene_idf, lucene_idf, 1.2, 0.75, 0.25),
    "lucene15": (lucene_idf, lucene_idf, 1.5, 0.75, 0.25),
    "doc": (fts5_idf, lucene_idf, 1.2, 0.75, 0.25),
    "chunk": (lucene_idf, fts5_idf, 1.2, 0.75, 0.25),
    "lucene-b0.6": (lucene_idf, lucene_idf, 1.2, 0.6, 0.25),
    "lucene-b0.9": (lucene_idf, lucene_idf, 1.2, 0.9, 0.25),
    "lucene-k0.9": (lucene_idf, lucene_idf, 0.9, 0.75, 0.25),
    "lucene-cw0": (lucene_idf, lucene_idf, 1.2, 0.75, 0.0),
    "lucene-cw0.5": (lucene_idf, lucene_idf, 1.2, 0.75, 0.5),
    "fts5-cw0": (fts5_idf, fts5_idf, 1.2, 0.75, 0.0),
}


@contextlib.contextmanager
def patched(variant: str, *, fuzzy: bool = True) -> Iterator[None]:
    """semsearch's keyword scoring with the idf, k1, b and chunk share of ``variant`` for
    the duration, and without the typo fallback unless ``fuzzy`` (a what-if: nothing is
    written)."""
    import semsearch.search.keyword as kwm
    import semsearch.store.bm25 as bm
    import semsearch.store.segmented_keyword as seg
    from semsearch.search import fuse
    from semsearch.store.postings import CHUNK

    chunk_idf, doc_idf, k1, b, chunk_weight = VARIANTS[variant]
    score, full = seg.SegmentedKeyword.score, seg.SegmentedKeyword.full_match
    saved = seg.idf, bm.K1, fuse.K1_PLUS_1, bm.B, kwm.CHUNK_WEIGHT
    query_terms = kwm.query_terms

    def unfixed(kw: object, text: str, *, fuzzy: bool = True) -> list[str]:
        return query_terms(kw, text, fuzzy=False)  # type: ignore[arg-type]

    def score_at(self: seg.SegmentedKeyword, terms: object, level: int) -> object:
        seg.idf = chunk_idf if level == CHUNK else doc_idf  # type: ignore[attr-defined]
        return score(self, terms, level)  # type: ignore[arg-type]

    def full_at(self: seg.SegmentedKeyword, terms: object, *, chunks: bool = False) -> float:
        seg.idf = chunk_idf if chunks else doc_idf  # type: ignore[attr-defined]
        return full(self, terms, chunks=chunks)  # type: ignore[arg-type]

    seg.SegmentedKeyword.score = score_at  # type: ignore[method-assign,assignment]
    seg.SegmentedKeyword.full_match = full_at  # type: ignore[method-assign,assignment]
    bm.K1, fuse.K1_PLUS_1, bm.B, kwm.CHUNK_WEIGHT = k1, k1 + 1.0, b, chunk_weight
    if not fuzzy:
        kwm.query_terms = unfixed  # type: ignore[assignment]
    try:
        yield
    finally:
        kwm.query_terms = query_terms
        seg.SegmentedKeyword.score, seg.SegmentedKeyword.full_match = score, full  # type: ignore[method-assign]
        seg.idf, bm.K1, fuse.K1_PLUS_1, bm.B, kwm.CHUNK_WEIGHT = saved  # type: ignore[attr-defined]


def keyword_path(
    variant: str, dataset: Path, split: str = "test", *, fuzzy: bool = True
) -> dict[str, float]:
    """Per-query nDCG@10 of semsearch's keyword mode (``semsearch eval``'s own run, on its
    cached index) under ``variant`` (and without the typo fallback unless ``fuzzy``)."""
    from semsearch.evaluation.run import run_eval

    with patched(variant, fuzzy=fuzzy):
        report = run_eval(dataset, modes=("keyword",), split=split)
    return dict(report.results[0].per_query)


def path_table(datasets: Sequence[Path], variants: Sequence[str]) -> None:
    """Keyword mode under each variant beside bm25s, and each variant minus the first."""
    from semsearch.evaluation.compare import paired

    print(f"{'collection':15} {'bm25s':>6} " + " ".join(f"{v:>22}" for v in variants))
    for path in datasets:
        runs = {v: keyword_path(v, path) for v in variants}
        ref = BM25S.get(path.name, float("nan"))
        cells = []
        for v in variants:
            nd = float(np.mean(list(runs[v].values())))
            mark = "ok" if nd >= ref - 0.005 else "NO"
            if v == variants[0]:
                cells.append(f"{nd:.4f} {mark:>2}{'':>13}")
            else:
                d = paired(runs[v], runs[variants[0]])
                cells.append(f"{nd:.4f} {mark:>2} {d.mean:+.3f}[{d.low:+.3f},{d.high:+.3f}]")
        print(f"{path.name:15} {ref:6.4f} " + " ".join(f"{c:>22}" for c in cells), flush=True)


def doc_runs(
    path: Path, analyse: Callable[[str], list[str]], k1: float, b: float, lucene: bool
) -> dict[str, list[tuple[str, float]]]:
    """Whole-document BM25's run (best 110 documents per judged query, self-hits dropped)."""
    col = load_beir(path, "test")
    docs = list(col.corpus())
    queries = [q for q in col.queries if q.id in col.qrels]
    own = self_hit_queries(queries, docs, "auto")
    ids = [d.id for d in docs]
    dterms = [analyse(d.full_text) for d in docs]
    qterms = [analyse(q.text) for q in queries]
    runs = {}
    for q, s in zip(queries, run(dterms, qterms, k1, b, lucene), strict=True):
        top = np.argsort(-s, kind="stable")[:110]
        hits = [(ids[i], float(s[i])) for i in top if s[i] > 0]
        runs[q.id] = [h for h in hits if not (q.id in own and h[0] == q.id)]
    return runs


def diff_table(path: Path, worst: int, idf: str = "fts5") -> None:
    """From bm25s to keyword mode one change at a time (with FTS5's idf, today's, or
    Lucene's: ``idf``), then the queries that lose most."""
    from semsearch.evaluation.compare import paired
    from semsearch.evaluation.metrics import per_query

    col = load_beir(path, "test")
    steps = {name: doc_runs(path, make(), 1.5, 0.75, True) for name, make in ANALYSIS_STEPS}
    steps["+ k1 1.2"] = doc_runs(path, terms, 1.2, 0.75, True)
    if idf == "fts5":
        steps["+ FTS5's idf (whole documents)"] = doc_runs(path, terms, 1.2, 0.75, False)
    nd = {k: {q: e.at(10).ndcg for q, e in per_query(col.qrels, r, ks=(10,)).items()}
          for k, r in steps.items()}  # fmt: skip
    nd["+ chunk & doc path: doc evidence, no typo fix"] = keyword_path(
        f"{idf}-cw0", path, fuzzy=False
    )
    nd["+ typo fallback (unknown words replaced)"] = keyword_path(f"{idf}-cw0", path)
    nd["+ chunk's own share 0.25 (keyword mode)"] = keyword_path(idf, path)
    names = list(nd)
    print(f"{path.name}: nDCG@10, step - previous step [95%], wins/losses")
    for i, k in enumerate(names):
        mean = float(np.mean(list(nd[k].values())))
        if i == 0:
            print(f"  {k:46} {mean:.4f}")
            continue
        d = paired(nd[k], nd[names[i - 1]])
        interval = f"[{d.low:+.4f}, {d.high:+.4f}] {d.wins}/{d.losses}"
        print(f"  {k:46} {mean:.4f} {d.mean:+.4f} {interval}")
    docs = [terms(d.full_text) for d in col.corpus()]
    n = len(docs)
    df = Counter(t for d in docs for t in set(d))
    text = {q.id: q.text for q in col.queries}
    first, last = nd[names[0]], nd[names[-1]]
    for qid in sorted(last, key=lambda q: last[q] - first.get(q, 0.0))[:worst]:
        cells = " / ".join(f"{nd[k].get(qid, 0.0):.3f}" for k in names)
        print(f"\n  q{qid} {cells}: {text[qid][:100]}")
        common = sorted({t for t in terms(text[qid]) if df[t] > n / 10}, key=lambda t: -df[t])
        shown = [f"{t} ({df[t] / n:.0%}: {fts5_idf(n, df[t]):.2f} / {lucene_idf(n, df[t]):.2f})"
                 for t in common]  # fmt: skip
        print("    terms in >10% of documents (share: FTS5 / Lucene idf):", ", ".join(shown))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--path", nargs="*", choices=tuple(VARIANTS))
    ap.add_argument("--diff", type=int, default=0, help="show the N queries that lose most")
    ap.add_argument("--idf", choices=("fts5", "lucene"), default="fts5", help="--diff's idf")
    a = ap.parse_args()
    if a.path:
        path_table(a.datasets, a.path)
        return 0
    if a.diff:
        for path in a.datasets:
            diff_table(path, a.diff, a.idf)
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
