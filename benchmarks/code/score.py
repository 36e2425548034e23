"""Score semsearch on our own code-search benchmark (``queries.json``) at file level.

Each tree is indexed from scratch into a temporary index (with an empty embedding cache,
so the index time is a cold build), every query runs in each asked mode, and the hits are
reduced to files (deduplicated, ranked by first appearance). nDCG@10 uses the judged grades
as gains (2 = defining file, 1 = relevant use), as trec_eval does. The ``bm25`` mode is the
plain baseline: bm25s (Lucene BM25, k1=1.5, b=0.75, English stopwords + Snowball stemmer)
over whole files, built and queried the same way.

    python -m benchmarks.code.score [--mode hybrid --mode bm25] [--group file] [--tree NAME=PATH]

Prints one row per tree and mode (nDCG@10 overall, for natural-language and for symbol
queries, index seconds, query p50 in ms) and the means over trees; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from semsearch.evaluation.metrics import ndcg_at_k

HERE = Path(__file__).resolve().parent
#: Chunk hits asked for per query, so that ten distinct files are nearly always among them.
DEPTH = 100
K = 10
#: What counts as source in a tree (the judgments name only these files).
SOURCE_GLOBS = ("*.py", "*.c", "*.h")


@dataclass(frozen=True)
class Row:
    tree: str
    mode: str
    ndcg: float
    ndcg_nl: float
    ndcg_symbol: float
    index_s: float
    query_p50_ms: float
    files: int
    #: nDCG@10 of each query by id (paired comparisons: ``benchmarks.code.compare``).
    per_query: dict[str, float]
    language: str = ""


#: A named set of values for constants of :mod:`semsearch.search.group` ("" is the code as is).
Variant = tuple[str, dict[str, Any]]
BASE: Variant = ("", {})


def label(mode: str, variant: str) -> str:
    return f"{mode}+{variant}" if variant else mode


def parse_variant(text: str) -> Variant:
    """``NAME:CONST=VALUE[,CONST=VALUE...]`` (``nodef:DEFINITION_BONUS=0``)."""
    from semsearch.search import group

    name, _, body = text.partition(":")
    values: dict[str, Any] = {}
    for setting in filter(None, body.split(",")):
        const, value = setting.split("=", 1)
        if not hasattr(group, const):
            raise SystemExit(f"semsearch.search.group has no {const}")
        values[const] = type(getattr(group, const))(value)
    return name, values


@contextmanager
def applied(values: dict[str, Any]) -> Iterator[None]:
    """The constants of :mod:`semsearch.search.group` set to ``values`` meanwhile."""
    from semsearch.search import group

    old = {k: getattr(group, k) for k in values}
    for k, v in values.items():
        setattr(group, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(group, k, v)


def source_files(root: Path, globs: Sequence[str] = SOURCE_GLOBS) -> list[Path]:
    """The tree's files matching ``globs`` (its ``globs`` in ``queries.json``)."""
    found = {p for g in globs for p in root.rglob(g) if p.is_file() and not p.is_symlink()}
    return sorted(p for p in found if "__pycache__" not in p.parts)


def files_of(sources: Sequence[str], root: Path) -> list[str]:
    """Relative file names in order of first appearance."""
    seen: dict[str, None] = {}
    for s in sources:
        seen.setdefault(Path(s).resolve().relative_to(root).as_posix(), None)
    return list(seen)


def semsearch_index(
    root: Path, cache: Path | None, model: str | None = None,
    globs: Sequence[str] = SOURCE_GLOBS,
) -> tuple[float, Any]:  # fmt: skip
    """A fresh index of the tree's source files and the seconds it took to build."""
    from semsearch import SemanticIndex
    from semsearch.store.embedding_cache import EmbeddingCache

    tmp = Path(tempfile.mkdtemp(prefix="code-bench-"))
    index = SemanticIndex(model, path=tmp / "index", cache=EmbeddingCache(cache or tmp / "cache"))
    t0 = time.perf_counter()
    index.add_paths([root], glob=list(globs))
    return time.perf_counter() - t0, index


def semsearch_searcher(
    index: Any, root: Path, mode: str, group: str | None
) -> Callable[[str], list[str]]:
    extra = {"group": group} if group else {}

    def search(q: str) -> list[str]:
        hits = index.search(q, DEPTH, mode=mode, **extra)
        return files_of([h.source for h in hits], root)

    return search


def bm25_searcher(
    root: Path, globs: Sequence[str] = SOURCE_GLOBS
) -> tuple[float, Callable[[str], list[str]]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    files = source_files(root, globs)
    names = [p.relative_to(root).as_posix() for p in files]
    texts = [p.read_text(errors="replace") for p in files]
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)  # fmt: skip
    took = time.perf_counter() - t0

    def search(q: str) -> list[str]:
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = retriever.retrieve(tokens, k=min(K, len(names)), show_progress=False)
        return [names[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    return took, search


def score_tree(
    tree: dict[str, Any], root: Path, modes: Sequence[str], group: str | None, cache: Path | None,
    model: str | None = None, variants: Sequence[Variant] = (("", {}),),
) -> list[Row]:  # fmt: skip
    """Every mode on one tree; semsearch's index is built once and shared by its modes."""
    index_s, index = (0.0, None)
    globs = tree.get("globs", SOURCE_GLOBS)
    if any(m != "bm25" for m in modes):
        index_s, index = semsearch_index(root, cache, model, globs)
    rows = []
    for mode in modes:
        for variant, values in variants if mode != "bm25" else [BASE]:
            if mode == "bm25":
                took, search = bm25_searcher(root, globs)
            else:
                took, search = index_s, semsearch_searcher(index, root, mode, group)
            with applied(values):
                search(tree["queries"][0]["query"])  # warm up (model load, first page reads)
                per_query, times = {}, []
                for q in tree["queries"]:
                    t0 = time.perf_counter()
                    ranking = search(q["query"])
                    times.append(time.perf_counter() - t0)
                    per_query[q["id"]] = ndcg_at_k(q["relevant"], ranking, K)
            kind = {q["id"]: q["type"] for q in tree["queries"]}
            nl = [v for i, v in per_query.items() if kind[i] == "nl"]
            symbol = [v for i, v in per_query.items() if kind[i] == "symbol"]
            rows.append(Row(
                tree["name"], label(mode, variant), statistics.fmean(per_query.values()),
                statistics.fmean(nl) if nl else math.nan,
                statistics.fmean(symbol) if symbol else math.nan, took,
                1000 * statistics.median(times), len(source_files(root, globs)), per_query,
                tree.get("language", ""),
            ))  # fmt: skip
    return rows


def score_beir(
    root: Path, split: str, modes: Sequence[str], group: str | None, cache: Path | None,
    model: str | None = None, variants: Sequence[Variant] = (("", {}),),
) -> list[Row]:  # fmt: skip
    """A BEIR collection of code (cosqa): each document is a file, scored like a tree."""
    from semsearch import SemanticIndex
    from semsearch.evaluation.beir import load_beir
    from semsearch.store.embedding_cache import EmbeddingCache

    collection = load_beir(root, split)
    tmp = Path(tempfile.mkdtemp(prefix="code-bench-"))
    index = SemanticIndex(model, path=tmp / "index", cache=EmbeddingCache(cache or tmp / "cache"))
    docs = list(collection.corpus())
    t0 = time.perf_counter()
    index.add_texts([d.full_text for d in docs], ids=[d.id for d in docs])
    index_s = time.perf_counter() - t0
    extra = {"group": group} if group else {}
    rows = []
    for mode in modes:
        for variant, values in variants:
            per_query, times = {}, []
            with applied(values):
                for q in collection.queries:
                    t0 = time.perf_counter()
                    hits = index.search(q.text, DEPTH, mode=mode, **extra)
                    times.append(time.perf_counter() - t0)
                    ranking = list(dict.fromkeys(h.doc_id for h in hits))
                    per_query[q.id] = ndcg_at_k(collection.qrels[q.id], ranking, K)
            mean = statistics.fmean(per_query.values())
            name, p50 = f"{root.name}/{split}", 1000 * statistics.median(times)
            rows.append(Row(name, label(mode, variant), mean, mean, math.nan, index_s, p50,
                            len(docs), per_query))  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, default=HERE / "queries.json")
    ap.add_argument("--mode", action="append", choices=("dense", "keyword", "hybrid", "bm25"))
    ap.add_argument("--group", choices=("file",), default=None, help="pass group= to search")
    ap.add_argument("--tree", action="append", default=[], help="NAME=PATH: where a tree is")
    ap.add_argument("--only", action="append", default=[], help="score only these trees")
    ap.add_argument(
        "--language", action="append", default=[], help="score only trees in these languages"
    )
    ap.add_argument(
        "--cache", type=Path, default=None,
        help="embedding cache to reuse between runs (index times are then not cold)",
    )  # fmt: skip
    ap.add_argument(
        "--variant", action="append", default=[], metavar="NAME:CONST=VALUE[,...]",
        help="also score with constants of semsearch.search.group changed "
        "(nodef:DEFINITION_BONUS=0)",
    )  # fmt: skip
    ap.add_argument("--model", default=None, help="the model to index with (static, ...)")
    ap.add_argument("--beir", type=Path, default=None, help="score a BEIR collection instead")
    ap.add_argument("--split", default="test", help="its qrels file (dev to tune, test)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    spec = json.loads(args.queries.read_text())
    variants = [BASE] + [parse_variant(v) for v in args.variant]
    where = dict(t.split("=", 1) for t in args.tree)
    modes = args.mode or ["bm25", "keyword", "dense", "hybrid"]
    rows: list[Row] = []
    if args.beir:
        rows = score_beir(args.beir, args.split, [m for m in modes if m != "bm25"],
                          args.group, args.cache, args.model, variants)  # fmt: skip
        for row in rows:
            print(f"{row.tree} {row.mode:8} nDCG@10 {row.ndcg:.4f}  index {row.index_s:.1f}s "
                  f"p50 {row.query_p50_ms:.1f} ms", flush=True)  # fmt: skip
        spec["trees"] = []
    for tree in spec["trees"]:
        if args.only and tree["name"] not in args.only:
            continue
        if args.language and tree.get("language") not in args.language:
            continue
        root = Path(where.get(tree["name"], tree["path"])).resolve()
        if not root.is_dir():
            print(f"tree {tree['name']}: {root} is not a directory", file=sys.stderr)
            return 1
        for row in score_tree(tree, root, modes, args.group, args.cache, args.model, variants):
            rows.append(row)
            print(
                f"{row.tree:14} {row.mode:8} nDCG@10 {row.ndcg:.3f} (nl {row.ndcg_nl:.3f}, "
                f"symbol {row.ndcg_symbol:.3f})  index {row.index_s:6.2f}s "
                f"({row.files} files)  p50 {row.query_p50_ms:6.1f} ms",
                flush=True,
            )
    for mode in dict.fromkeys(r.mode for r in rows):
        mine = [r for r in rows if r.mode == mode]
        if mine:
            print(
                f"{'MEAN':14} {mode:8} nDCG@10 {statistics.fmean(r.ndcg for r in mine):.3f} "
                f"(nl {statistics.fmean(r.ndcg_nl for r in mine):.3f}, symbol "
                f"{statistics.fmean(r.ndcg_symbol for r in mine):.3f})  index median "
                f"{statistics.median(r.index_s for r in mine):.2f}s  p50 median "
                f"{statistics.median(r.query_p50_ms for r in mine):.1f} ms",
                flush=True,
            )
    languages = list(dict.fromkeys(r.language for r in rows if r.language))
    if len(languages) > 1:
        print("language means (nDCG@10):", " ".join(dict.fromkeys(r.mode for r in rows)))
        for language in languages:
            cells = [
                statistics.fmean(r.ndcg for r in rows if r.language == language and r.mode == m)
                for m in dict.fromkeys(r.mode for r in rows)
            ]
            print(f"  {language:8}", " ".join(f"{c:.3f}" for c in cells), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
