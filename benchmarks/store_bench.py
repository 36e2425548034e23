"""Writing a segment's chunk database: ``python -m benchmarks.store_bench [--chunks N ...]
[--before DIR] [--rounds R]``, or ``--keyword INDEX ...``.

For each size N (15,000 and 45,000 chunks by default: pip's 491 files made 14,896) the store
API a build calls (``ChunkStore.create``, ``add_document`` per document, ``commit``) writes N
chunks of generated Zipf text (documents of 1 to 60 chunks, 40-120 words each: rows, terms,
postings), then a merge copies that segment into a new one (``copy_documents_from``, a tenth
of the documents dropped, ``commit``). Printed: seconds of each, and the file's bytes; the
analyser's own time over the same texts is printed beside (``analyse_s``), and the write
without it (``store_s``: rows, postings, indexes, SQLite). On a loaded machine that
difference is noisy; ``--split`` replaces the analyser by ``str.split`` on both sides, so
``write_s`` is the store's own work.

``--before DIR`` (a checkout of an older semsearch, e.g. ``git worktree``/``git archive`` of
main) runs the same steps with that code, each round alternating before and after in fresh
processes, and prints both side by side with medians and the ratio. The text analyser
(``store/tokenize.py``) runs inside ``add_document`` in both, so its time is included.

``--keyword INDEX ...`` instead times keyword queries on existing indexes, interleaved in one
process (see :func:`keyword_queries`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def _texts(n: int, seed: int, words: tuple[int, int] = (40, 120)) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = [f"w{i:x}" for i in range(30_000)] + "the of and parse config value".split()
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    weights /= weights.sum()
    lengths = rng.integers(words[0], words[1] + 1, n)
    drawn = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    out, at = [], 0
    for k in lengths.tolist():
        out.append(" ".join(vocab[w] for w in drawn[at : at + k]))
        at += k
    return out


def _split_analyser() -> None:
    """Replace the analyser, wherever this code's store imported it, by ``str.split``: what
    is left of a write is the store's own work (rows, postings, indexes, SQLite)."""
    import importlib

    for module, name in (("semsearch.store.fts", "terms"), ("semsearch.store.inverted", "analyze")):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(mod, name):
            setattr(mod, name, str.split)


def measure(
    n: int, work: Path, split: bool = False, words: tuple[int, int] = (40, 120)
) -> dict[str, Any]:
    """Write ``n`` chunks through the store API, then merge them into a second segment."""
    import numpy as np

    from semsearch.store.chunkstore import ChunkStore
    from semsearch.store.records import ChunkRow, StoredDocument
    from semsearch.store.tokenize import terms

    texts = _texts(n, seed=n, words=words)
    t0 = time.perf_counter()
    for text in texts if not split else ():  # the analyser alone, as the write runs it
        terms(text)
    analyse_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(min(int(rng.integers(1, 61)), n - sum(sizes)))
    first = ChunkStore.create(work / "a.sqlite")
    t0 = time.perf_counter()
    row = 0
    for d, size in enumerate(sizes):
        rows = []
        for o in range(size):
            text = texts[row]
            rows.append(ChunkRow(row, row, o, 0, len(text), o + 1, o + 2, None, "", text))
            row += 1
        digest = f"{d:064x}"
        doc = StoredDocument(f"src/pkg/file{d:05d}.py", f"src/pkg/file{d:05d}.py", digest,
                             size, "", "code", 100 + d, 1_700_000_000 + d, d)  # fmt: skip
        first.add_document(doc, rows, None)
    first.commit()
    first.close()
    write_s = time.perf_counter() - t0
    old = ChunkStore.open_readonly(work / "a.sqlite")
    drop = {f"src/pkg/file{d:05d}.py" for d in range(0, len(sizes), 10)}
    second = ChunkStore.create(work / "b.sqlite")
    t0 = time.perf_counter()
    second.copy_documents_from(old, drop, 0)
    second.commit()
    second.close()
    merge_s = time.perf_counter() - t0
    old.close()
    return {
        "chunks": n,
        "documents": len(sizes),
        "write_s": round(write_s, 3),
        "analyse_s": round(analyse_s, 3),
        "store_s": round(write_s - analyse_s, 3),
        "merge_s": round(merge_s, 3),
        "bytes": (work / "a.sqlite").stat().st_size,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _run(n: int, tree: Path | None, split: bool, words: list[int]) -> dict[str, Any]:
    """:func:`measure` in a fresh process, with the code of ``tree`` (None: this one)."""
    env = dict(os.environ)
    root = tree or HERE.parent.parent
    env["PYTHONPATH"] = str(root)
    out = subprocess.run(
        [sys.executable, str(HERE), "--one", str(n), "--words", *map(str, words),
         *(["--split"] if split else [])],
        env=env, cwd=str(root), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


#: write: the whole new segment; analyse: the analyser's share of it (the same code before
#: and after); store: write minus analyse; merge: copying it into a new segment; peak RSS of
#: the process (texts, write and merge).
_SHOWN = ("write_s", "analyse_s", "store_s", "merge_s", "bytes", "peak_rss_mib")


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def keyword_queries(paths: list[Path], rounds: int) -> dict[str, float]:
    """Keyword p50 (ms) of ``scale_bench``'s 60 queries on each index, in one process and
    interleaved round by round: e.g. the same corpus written in segment format 3 (by the
    code before) and 4, both read by this code (which reads format 3 as that code did)."""
    from semsearch import SemanticIndex
    from semsearch.embed import load_embedder

    from .serve_bench import sentences, vocabulary

    real = load_embedder()
    queries = sentences(60, vocabulary(), seed=7, lo=2, hi=5, skip=100)
    indexes = [SemanticIndex.load(p, embedder=real) for p in paths]
    for ix in indexes:
        for q in queries[:5]:
            ix.search(q, k=10, mode="keyword")
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for ix, out in zip(indexes, times, strict=True):
            for q in queries:
                t0 = time.perf_counter()
                ix.search(q, k=10, mode="keyword")
                out.append(time.perf_counter() - t0)
    return {
        str(p): round(1000 * statistics.median(t), 3) for p, t in zip(paths, times, strict=True)
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.store_bench", description=__doc__)
    p.add_argument("--chunks", type=int, nargs="+", default=[15_000, 45_000])
    p.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--words", type=int, nargs=2, default=[40, 120], help="words per chunk")
    p.add_argument(
        "--split", action="store_true", help="analyse by str.split: time the store's own work"
    )
    p.add_argument("--keyword", type=Path, nargs="+", help="instead: keyword p50 on these indexes")
    args = p.parse_args(argv)
    if args.keyword:
        print(f"keyword p50, {args.rounds} interleaved rounds of 60 queries; load {_load()}")
        for path, ms in keyword_queries(args.keyword, args.rounds).items():
            print(f"  {ms:8.3f} ms  {path}")
        print(f"load {_load()}")
        return 0
    if args.one:
        if args.split:
            _split_analyser()
        work = Path(tempfile.mkdtemp(prefix="store-bench-"))
        try:
            print(json.dumps(measure(args.one, work, args.split, tuple(args.words))))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    trees: dict[str, Path | None] = {"after": None}
    if args.before:
        trees = {"before": args.before.resolve(), "after": None}
    how = "analyser str.split" if args.split else "the real analyser"
    print(f"store write ({how}), {args.rounds} rounds, {' / '.join(trees)}; load {_load()}")
    results: dict[str, Any] = {}
    for n in args.chunks:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_run(n, tree, args.split, args.words))
        med = {
            name: {k: statistics.median(r[k] for r in rs) for k in _SHOWN}
            for name, rs in runs.items()
        }
        results[str(n)] = {"runs": runs, "median": med}
        for what in _SHOWN:
            cells = "  ".join(f"{name} {med[name][what]:>12,.3f}" for name in trees)
            ratio = ""
            if "before" in med and med["after"][what]:
                ratio = f"  before/after {med['before'][what] / med['after'][what]:.2f}x"
            print(f"  {n:>7,} chunks  {what:8} {cells}{ratio}")
    print(f"load {_load()}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
