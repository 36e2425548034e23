"""Where a keyword query's time goes: ``python -m benchmarks.keyword_profile [--chunks N]``.

Opens an index that :mod:`benchmarks.scale_bench` built (``--work``, read-only) and asks its
queries in keyword mode through ``SemanticIndex.search``, as the scale benchmark does (the
cached postings dropped before each pass, so every term is read afresh once), while timing
the calling thread's CPU in each step of the keyword path: query analysis, document
frequencies, BM25, the best chunks and documents, the reads of tied documents' ids, and
the API's ranking, shaping and hit building around them. Steps are timed inclusive (a step
called inside another counts in both) and only where the checkout has them, so two trees
run side by side print comparable lines. Prints ms per query (mean over ``--passes``) and,
with ``--json``, one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .scale_bench import QUERIES, WORK
from .serve_bench import sentences, vocabulary

#: (module, object, attribute, label): what is timed, where this checkout has it.
STEPS = [
    ("semsearch.api.searching", None, "ranked_hits", "API: hits built"),
    ("semsearch.search.retrieve", None, "keyword_hits", "keyword_hits (all below)"),
    ("semsearch.search.keyword", None, "_analysed", "  query analysis (+ its frequencies)"),
    ("semsearch.store.segmented_keyword", "SegmentedKeyword", "document_frequencies",
     "  document frequencies"),
    ("semsearch.store.segmented_keyword", "SegmentedKeyword", "score", "  BM25 (both levels)"),
    ("semsearch.search.keyword", None, "_best", "  best chunks"),
    ("semsearch.search.keyword", None, "_top_documents", "  best documents"),
    ("semsearch.store.segmented_keyword", "SegmentedKeyword", "doc_ids", "  tied documents' ids"),
    ("semsearch.store.segmented_keyword", "SegmentedKeyword", "doc_of", "  documents of rows"),
    ("semsearch.store.segmented_keyword", "SegmentedKeyword", "full_match", "  full-match idf"),
    ("semsearch.search.retrieve", None, "_keyword_ranked", "keyword evidence and order"),
    ("semsearch.search.retrieve", None, "_shape", "shaping (file signals, cut to k)"),
]  # fmt: skip


def _wrap(spent: dict[str, float], module: str, owner: str | None, name: str, label: str) -> bool:
    import importlib

    mod = importlib.import_module(module)
    target: Any = getattr(mod, owner) if owner else mod
    fn = getattr(target, name, None)
    if fn is None:
        return False

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - t0

    setattr(target, name, timed)
    return True


def profile(n: int, work: Path, passes: int) -> dict[str, Any]:
    from semsearch import SemanticIndex
    from semsearch.embed import load_embedder

    path = work / f"index-{n}"
    if not (path / "CURRENT").is_file():
        raise SystemExit(f"no index at {path}: build it with benchmarks.scale_bench first")
    index = SemanticIndex.load(path, embedder=load_embedder())
    queries = sentences(QUERIES, vocabulary(), seed=7, lo=2, hi=5, skip=100)
    for q in queries[:5]:  # warm: memory maps, the keyword index
        index.search(q, k=10, mode="keyword")
    spent: dict[str, float] = defaultdict(float)
    timed = [label for m, o, a, label in STEPS if _wrap(spent, m, o, a, label)]
    total = 0.0
    kw = index.live.require().store.keyword_index()
    for _ in range(passes):
        kw.clear_cache()
        for q in queries:
            t0 = time.thread_time()
            index.search(q, k=10, mode="keyword")
            total += time.thread_time() - t0
    asked = passes * len(queries)
    steps = {label: round(1000 * spent[label] / asked, 3) for label in timed}
    return {
        "chunks": n,
        "search_cpu_ms": round(1000 * total / asked, 3),
        "steps_cpu_ms": steps,
        "loadavg_1min": os.getloadavg()[0],
    }


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.keyword_profile", description=__doc__)
    p.add_argument("--chunks", type=int, nargs="+", default=[100_000])
    p.add_argument("--work", type=Path, default=WORK, help=f"index directory [default: {WORK}]")
    p.add_argument("--passes", type=int, default=5, help="passes over the queries [default: 5]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.passes < 1:
        p.error("--passes must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    found = [profile(n, args.work, args.passes) for n in args.chunks]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for r in found:
        print(f"{r['chunks']:,} chunks: keyword search {r['search_cpu_ms']} ms CPU a query "
              f"(load {r['loadavg_1min']:.1f})")  # fmt: skip
        for label, ms in r["steps_cpu_ms"].items():
            print(f"  {label:40s} {ms:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
