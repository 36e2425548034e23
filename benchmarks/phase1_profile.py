"""Phase 1's worker CPU, stage by stage: the pipeline's task loop run in this one process.

    python benchmarks/phase1_profile.py [ROOT ...] [--runs 3] [--arm base=/work/base --arm this=.]

Runs every task of a tree (``/usr/lib/python3.11`` + ``/usr/share/doc/python3.11/html`` by
default) through the worker's own code (``pipeline._run``, one ``Analyser`` and one static
model for the whole tree, as one worker for its life), each stage's CPU seconds timed by
wrapping the functions doing it, exclusive of the stages they call (no profiler: one
doubles the per-call cost and skews the figures). Then each task's result is pickled and
unpickled, as it crosses to the writer. Each run is a fresh subprocess with ``PYTHONPATH`` set to
its arm's tree (arms alternated; default: this tree alone). Prints each run and the medians per
arm, with the load and the CPU's vector extensions.

    bytes     reading a file's bytes (``_read_bytes``)
    parse     the format reader (HTML parse, the code outline, text decoding)
    hash      the rest of reading (sha256 of the bytes, the ``Document``)
    tokens    token counts and spans for chunk boundaries
    chunk     the rest of chunking (units, packing, line numbers, rows)
    encode    static vectors
    terms     keyword analysis (``tokenize.terms``)
    number    numbering the terms in the worker (``Analyser``, less ``terms``)
    pickle    the task's result pickled (worker side of the transfer)
    unpickle  the same unpickled (the writer's side, in the main process)
    other     the rest of the task loop
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from phase1_bench import _Timers, cpu_flags

STAGES = ("bytes", "parse", "hash", "tokens", "chunk", "encode", "terms", "number")
ROOTS = ["/usr/lib/python3.11", "/usr/share/doc/python3.11/html"]


def _install(t: _Timers) -> None:
    from semsearch.embed.static import StaticEmbedder
    from semsearch.indexing import engine
    from semsearch.ingest import read
    from semsearch.store import inverted

    t.wrap(read, "_read_bytes", "bytes")
    t.wrap(read, "_extract", "parse")
    t.wrap(engine, "read_or_reason", "hash")
    t.wrap(StaticEmbedder, "token_counts", "tokens")
    t.wrap(StaticEmbedder, "token_spans", "tokens")
    t.wrap(engine, "iter_chunk_rows", "chunk", generator=True)
    t.wrap(StaticEmbedder, "encode", "encode")
    t.wrap(inverted, "analyze", "terms")
    t.wrap(inverted.Analyser, "__call__", "number")


def one_run(roots: list[str]) -> dict[str, float]:
    import logging

    from semsearch.embed import load_embedder
    from semsearch.indexing import pipeline
    from semsearch.indexing.settings import ChunkParams
    from semsearch.ingest.discover import discover_files
    from semsearch.ingest.read import expand_items

    logging.disable(logging.WARNING)
    static = load_embedder("static", "fp32")
    items = expand_items(sorted(discover_files(roots).files))
    tasks = pipeline._tasks(items)
    t = _Timers()
    stages = (*STAGES, "pickle", "unpickle", "other")
    t.wall, t.cpu = dict.fromkeys(stages, 0.0), dict.fromkeys(stages, 0.0)
    pipeline._start(lambda: static)
    _install(t)
    params = ChunkParams(200, 0)
    chunks = 0
    c0 = time.process_time()
    for task in tasks:
        t._enter()
        done = pipeline._run(task.items, params)
        t._leave("other")
        chunks += sum(len(p.rows) for p in done.pieces if p is not None)
        t._enter()
        data = pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL)
        t._leave("pickle")
        t._enter()
        pickle.loads(data)
        t._leave("unpickle")
    total = time.process_time() - c0
    out = dict(t.cpu)
    out["total"] = total
    out["chunks"] = chunks
    out["files"] = len(items)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", default=ROOTS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arm", action="append", help="NAME=SOURCE_TREE (default: this=.)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.roots)))
        return 0
    arms = dict(a.split("=", 1) for a in (args.arm or ["this=."]))
    keys = (*STAGES, "pickle", "unpickle", "other")
    print(f"cpu flags: {' '.join(cpu_flags())}; cores {os.cpu_count()}", flush=True)
    runs: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    for n in range(args.runs):
        for arm in list(arms) if n % 2 == 0 else list(reversed(arms)):
            load = os.getloadavg()[0]
            env = {**os.environ, "PYTHONPATH": str(Path(arms[arm]).resolve())}
            done = subprocess.run(
                [sys.executable, __file__, "--child", *args.roots],
                capture_output=True, text=True, check=True, env=env,
            )  # fmt: skip
            r = json.loads(done.stdout.strip().splitlines()[-1])
            runs[arm].append(r)
            cols = "  ".join(f"{k} {r[k]:.2f}" for k in keys)
            print(f"run {n + 1} {arm:6} total {r['total']:.2f} s  [{cols}]  {int(r['files'])} "
                  f"files {int(r['chunks'])} chunks  load {load:.1f}->{os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
    for arm, rs in runs.items():
        med = "  ".join(f"{k} {statistics.median(r[k] for r in rs):.2f}" for k in (*keys, "total"))
        print(f"median CPU s, {arm}: {med}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
