"""Keyword engines side by side: ``python -m benchmarks.keyword_engines [--chunks N]``.

The corpus is :mod:`benchmarks.scale_bench`'s (generated Zipf sentences, one chunk per
document, ``doc-NNNNNNN``), 100,000 chunks by default. Every engine gets the same terms, made
by our analyser (:mod:`semsearch.store.tokenize`: case and accent folding, stemming, CJK),
so what differs is the engine, not the analyser:

- **ours**: the postings of :mod:`semsearch.store.inverted` (build time and bytes measured by
  writing them alone into a scratch SQLite file, analysis included), queried on a semsearch
  index of the same texts (scale_bench's, reused read-only when its texts are the generator's,
  else built here with the stand-in embedder) two ways: the engine alone
  (``SegmentedKeyword.score`` over chunks, then the top 10) and the API's keyword mode
  (``SemanticIndex.search``, which adds the document level, the typo fallback and the hits);
- **tantivy** (tantivy-py), fed the terms whitespace-joined under its ``whitespace``
  tokenizer, one ``Should`` term query per query term, its own BM25;
- **bm25s** (``method="robertson"``, k1 1.2, b 0.75: our formula's family), the same terms,
  asked one query at a time (``get_scores`` and a partial sort).

Printed per engine: build time (the shared analysis is printed once, apart, for tantivy and
bm25s), bytes on disk, query p50/p90 over the same queries (top 10; engines alternate by
block of queries) and the top-10 overlap with ours (engine alone). Also the CPU flags and
the load average. A missing optional engine is skipped with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .scale_bench import WORK as SCALE_WORK
from .scale_bench import _cpu_flags
from .serve_bench import sentences, stand_in, vocabulary

WORK = Path(__file__).resolve().parent / "_work" / "kwengine"
STEP = 100_000
BLOCK = 20
K = 10

LACKS = {
    "ours": "nothing for our design (global N/df/avgdl over live segments minus tombstones, "
    "deletes as tombstones, merges that renumber postings, where-filters on our SQLite)",
    "tantivy": "a deleted document still counts in N and df until a merge (checked: a term "
    "scores 0.875 after deleting one of its two documents, 1.204 in the same documents "
    "indexed afresh), so a multi-segment index would not rank as one segment; our "
    "where-filters (SQL over chunk metadata) would need the fields copied into its schema; "
    "its commits would have to follow our generations (two stores kept atomic together); "
    "the document level (first 400 chunks summed) would be a second index",
    "bm25s": "no segments, deletes or merges: a static sparse matrix rebuilt whole on any "
    "change, its idf fixed at build (no global statistics across segments), no filters",
}


def texts(n: int) -> list[str]:
    """The chunks scale_bench indexes at size ``n`` (made in blocks, as it makes them)."""
    out: list[str] = []
    for start in range(0, n, STEP):
        out += sentences(min(STEP, n - start), vocabulary(), seed=n + start, lo=8, hi=24)
    return out


def ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return round(1000 * values[0], 3) if values else 0.0
    return round(1000 * statistics.quantiles(values, n=100)[q - 1], 3)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- ours ------------------------------------------------------------------------------------


def ours_build(corpus: list[str], scratch: Path) -> dict[str, Any]:
    """Our postings alone, written as a segment writes them, into a scratch SQLite file."""
    from semsearch.store.inverted import Inverted

    path = scratch / "postings.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE documents (doc_id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE chunks (row INTEGER PRIMARY KEY, doc_id TEXT, ordinal INTEGER)")
    conn.executemany("INSERT INTO documents VALUES (?)", ((f"d{i}",) for i in range(len(corpus))))
    conn.executemany(
        "INSERT INTO chunks VALUES (?, ?, 0)", ((i, f"d{i}") for i in range(len(corpus)))
    )
    conn.commit()
    t0 = time.perf_counter()
    inv = Inverted()
    for start in range(0, len(corpus), 10_000):
        block = corpus[start : start + 10_000]
        inv.add_texts(range(start, start + len(block)), block)
    inv.write(conn)
    conn.commit()
    took = time.perf_counter() - t0
    conn.execute("DROP TABLE chunks")
    conn.execute("DROP TABLE documents")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return {"build_s": round(took, 2), "disk_bytes": path.stat().st_size}


def ours_index(n: int, corpus: list[str], work: Path, reuse: Path) -> Path:
    """A semsearch index of ``corpus``: scale_bench's when its texts are these, else ours."""
    from semsearch import SemanticIndex
    from semsearch.store import IndexDir

    shared = reuse / f"index-{n}"
    for path in (shared, work / f"index-{n}"):
        if IndexDir(path).exists():
            opened = SemanticIndex.load(path)  # (kept: it owns the connections)
            store = opened.live.require().store
            probe = sorted({0, n // 2, n - 1})
            if all(store.document_text(f"doc-{i:07d}") == corpus[i] for i in probe):
                print(f"ours: reusing {path} (texts checked at rows {probe})", file=sys.stderr)
                return path
            print(f"ours: {path} holds other texts, not used", file=sys.stderr)
    from semsearch.embed import load_embedder

    real = load_embedder()
    path = work / f"index-{n}"
    shutil.rmtree(path, ignore_errors=True)
    index = SemanticIndex(path=path, embedder=stand_in(real.name, real.precision, real.dim))
    t0 = time.perf_counter()
    for start in range(0, n, STEP):
        block = corpus[start : start + STEP]
        index.add_texts(block, ids=[f"doc-{start + i:07d}" for i in range(len(block))])
    index.optimize()
    print(f"ours: built {path} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return path


class Ours:
    def __init__(self, path: Path) -> None:
        from semsearch import SemanticIndex

        self.index = SemanticIndex.load(path)
        self.kw = self.index.live.require().store.keyword_index()

    def engine(self, terms: list[str]) -> list[str]:
        import numpy as np

        from semsearch.store.postings import CHUNK

        scored = self.kw.score(terms, CHUNK)
        if not len(scored.ids):
            return []
        top = min(K, len(scored.ids))
        best = np.argpartition(-scored.scores, top - 1)[:top]
        best = best[np.lexsort((scored.ids[best], -scored.scores[best]))]
        keys = self.kw.doc_of(scored.ids[best])
        names = self.kw.doc_ids(keys.tolist())
        return [names[int(k)] for k in keys]

    def api(self, query: str) -> list[str]:
        return [h.doc_id for h in self.index.search(query, k=K, mode="keyword")]


# --- tantivy ---------------------------------------------------------------------------------


class Tantivy:
    def __init__(self, terms: list[list[str]], path: Path) -> None:
        import tantivy

        self.t = tantivy
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("row", stored=True, indexed=False)
        sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        self.schema = sb.build()
        t0 = time.perf_counter()
        index = tantivy.Index(self.schema, path=str(path))
        writer = index.writer(heap_size=200_000_000, num_threads=1)
        for i, words in enumerate(terms):
            writer.add_document(tantivy.Document(row=i, body=" ".join(words)))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self.build_s = round(time.perf_counter() - t0, 2)
        self.searcher = index.searcher()

    def search(self, terms: list[str]) -> list[int]:
        t = self.t
        clauses = [(t.Occur.Should, t.Query.term_query(self.schema, "body", w)) for w in terms]
        hits = self.searcher.search(t.Query.boolean_query(clauses), limit=K, count=False).hits
        return [self.searcher.doc(a)["row"][0] for _, a in hits]


# --- bm25s -----------------------------------------------------------------------------------


class Bm25s:
    def __init__(self, terms: list[list[str]], path: Path) -> None:
        import bm25s

        t0 = time.perf_counter()
        self.r = bm25s.BM25(k1=1.2, b=0.75, method="robertson")
        self.r.index(terms, show_progress=False)
        self.build_s = round(time.perf_counter() - t0, 2)
        self.r.save(str(path))
        self.vocab = self.r.vocab_dict

    def search(self, terms: list[str]) -> list[int]:
        """Scores then a partial sort (``retrieve`` of one query costs ~14 ms more at 100k
        chunks in its own overhead: it is made for batches)."""
        import numpy as np

        known = [w for w in terms if w in self.vocab]
        if not known:
            return []
        scores = self.r.get_scores(known)
        top = min(K, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.lexsort((best, -scores[best]))]
        return [int(d) for d in best if scores[d] > 0]


# --- the run ---------------------------------------------------------------------------------


def _asker(
    search: Callable[[list[str]], list[int]], qterms: list[list[str]]
) -> Callable[[int], list[int]]:
    return lambda i: search(qterms[i])


def run(n: int, n_queries: int, work: Path, reuse: Path = SCALE_WORK) -> dict[str, Any]:
    from semsearch.store.tokenize import terms as analyze

    work.mkdir(parents=True, exist_ok=True)
    corpus = texts(n)
    queries = sentences(n_queries, vocabulary(), seed=7, lo=2, hi=5, skip=100)
    out: dict[str, Any] = {"chunks": n, "queries": n_queries, "cpu_flags": _cpu_flags()}
    out["load_before"] = [round(x, 2) for x in os.getloadavg()]
    scratch = Path(tempfile.mkdtemp(prefix="kwengine-", dir=work))
    try:
        engines: dict[str, dict[str, Any]] = {"ours": ours_build(corpus, scratch)}
        ours = Ours(ours_index(n, corpus, work, reuse))
        t0 = time.perf_counter()
        analysed = [analyze(t) for t in corpus]
        out["shared_analysis_s"] = round(time.perf_counter() - t0, 2)
        qterms = [analyze(q) for q in queries]
        doc_row = {f"doc-{i:07d}": i for i in range(n)}
        ask: dict[str, Callable[[int], list[int]]] = {
            "ours": lambda i: [doc_row[d] for d in ours.engine(qterms[i])],
            "ours_api": lambda i: [doc_row[d] for d in ours.api(queries[i])],
        }
        for name, cls in (("tantivy", Tantivy), ("bm25s", Bm25s)):
            try:
                __import__(name)
            except ImportError:
                print(f"{name}: not installed, skipped (pip install {name})", file=sys.stderr)
                continue
            where = scratch / name
            where.mkdir()
            eng = cls(analysed, where)
            engines[name] = {"build_s": eng.build_s, "disk_bytes": dir_bytes(where)}
            ask[name] = _asker(eng.search, qterms)
        engines["ours_api"] = {}
        del analysed
        for f in ask.values():  # warm: imports, memory maps, first reads
            for i in range(3):
                f(i)
        ours.kw.clear_cache()
        times: dict[str, list[float]] = {name: [] for name in ask}
        tops: dict[str, list[list[int]]] = {name: [[]] * n_queries for name in ask}
        names = list(ask)
        for b, start in enumerate(range(0, n_queries, BLOCK)):
            for name in names[b % len(names) :] + names[: b % len(names)]:
                for i in range(start, min(start + BLOCK, n_queries)):
                    t0 = time.perf_counter()
                    tops[name][i] = ask[name](i)
                    times[name].append(time.perf_counter() - t0)
        for name in ask:
            e = engines[name]
            e["p50_ms"], e["p90_ms"] = ms(times[name], 50), ms(times[name], 90)
            if name != "ours":
                same = [
                    len(set(a) & set(b)) / max(len(b), 1)
                    for a, b in zip(tops[name], tops["ours"], strict=True)
                    if b
                ]
                e["top10_overlap_with_ours"] = round(statistics.mean(same), 3) if same else None
            if name in LACKS:
                e["lacks"] = LACKS[name]
        out["engines"] = engines
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.keyword_engines", description=__doc__)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--work", type=Path, default=WORK, help=f"scratch folder [default: {WORK}]")
    p.add_argument(
        "--reuse",
        type=Path,
        default=SCALE_WORK,
        help=f"a folder of scale_bench indexes (index-N), opened read-only [default: {SCALE_WORK}]",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = p.parse_args(argv)
    if args.chunks < 1 or args.queries < 1:
        p.error("--chunks and --queries must be positive")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    found = run(args.chunks, args.queries, args.work, args.reuse)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(
        f"{found['chunks']:,} chunks, {found['queries']} queries, top {K}; "
        f"cpu {found['cpu_flags']}; load {found['load_before']} -> {found['load_after']}; "
        f"shared analysis (tantivy, bm25s) {found['shared_analysis_s']} s"
    )
    for name, e in found["engines"].items():
        parts = [f"{k} {v}" for k, v in e.items() if k != "lacks"]
        print(f"  {name:8} " + ", ".join(parts))
    for name, e in found["engines"].items():
        if "lacks" in e:
            print(f"  {name} lacks: {e['lacks']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
