"""Phase 1 (static model + keyword) build time, step by step, for two source trees of semsearch
side by side (before = main, after = this tree), in alternating runs of one session.

    python benchmarks/phase1_bench.py [--arm main=/work/main --arm this=.]
        [--tree python=/usr/lib/python3.11,/usr/share/doc/python3.11/html --tree pip=...]
        [--runs 3] [--transformer-every 20]

Each build runs in a fresh subprocess with ``PYTHONPATH`` set to its arm, an empty embedding
cache and a fresh index, the static model loaded (and warmed) before the clock starts: what is
timed is ``semsearch index TREE --model static`` (phase 1 of ``--progressive``). Steps are timed
by wrapping the functions that do them, each step's time exclusive of the steps it calls:

    read      reading and decoding files (``read_or_reason``)
    tokens    the tokenizer's counts and spans for chunk boundaries
    chunk     the rest of chunking (sentences, blocks, packing, line numbers)
    terms     keyword term analysis of each chunk (in a pipelined build: numbering the
              terms the workers found)
    encode    static vectors
    rows      SQLite inserts of documents, chunks and terms
    postings  building and writing the keyword postings
    vectors   the vector index; publish: the atomic generation switch
    other     everything else (discovery, planning, the builder's own work)

Wall and CPU seconds are printed per step (CPU: the process's, tokenizer threads included),
and the CPU of the worker processes that read, chunk and embed in a pipelined build (their
steps are not split), with the load average and the CPU's vector extensions beside each
run, then medians per arm and the ratio.
The machine is shared, so CPU seconds are the steadier figure; wall is what a user waits.

``--transformer-every N`` also builds every Nth file of the tree (a fixed subset) with the
default transformer, in the last arm's first subprocess after its static build, and
extrapolates its time to the whole tree by chunk count: the ">= 20x faster than the
transformer build" ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STEPS = ("read", "tokens", "chunk", "terms", "encode", "rows", "postings", "vectors", "publish")
DEFAULT_TREES = {
    "python": "/usr/lib/python3.11,/usr/share/doc/python3.11/html",
    "pip": str(Path(sys.prefix) / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}"
               / "site-packages/pip"),
}  # fmt: skip


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])  # fmt: skip
    return [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in flags]


# --- inside the measured subprocess ------------------------------------------------------------


class _Timers:
    """Exclusive wall and main-thread CPU seconds per step, by wrapping functions."""

    def __init__(self) -> None:
        self.wall = dict.fromkeys(STEPS, 0.0)
        self.cpu = dict.fromkeys(STEPS, 0.0)
        self.stack: list[list[float]] = []  # [wall start, cpu start, child wall, child cpu]
        self.missing: list[str] = []

    def _enter(self) -> None:
        self.stack.append([time.perf_counter(), time.process_time(), 0.0, 0.0])

    def _leave(self, step: str) -> None:
        w0, c0, cw, cc = self.stack.pop()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        self.wall[step] += w - cw
        self.cpu[step] += c - cc
        if self.stack:
            self.stack[-1][2] += w
            self.stack[-1][3] += c

    def wrap(self, owner: Any, name: str, step: str, generator: bool = False) -> None:
        fn = getattr(owner, name, None)
        if fn is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        timers = self

        if generator:

            def gen_wrapper(*a: Any, **k: Any) -> Any:
                it = fn(*a, **k)
                while True:
                    timers._enter()
                    try:
                        item = next(it)
                    except StopIteration:
                        timers._leave(step)
                        return
                    timers._leave(step)
                    yield item

            setattr(owner, name, gen_wrapper)
            return

        def wrapper(*a: Any, **k: Any) -> Any:
            timers._enter()
            try:
                return fn(*a, **k)
            finally:
                timers._leave(step)

        setattr(owner, name, wrapper)


_ENGINES: list[Any] = []


def _watch_workers() -> None:
    """Collect the pipeline engines made, for their workers' CPU (absent on older trees)."""
    try:
        from semsearch.indexing import pipeline
    except ImportError:
        return
    made = pipeline.PipelineEngine.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        made(self, *a, **k)
        _ENGINES.append(self)

    pipeline.PipelineEngine.__init__ = init  # type: ignore[method-assign]


def _install(t: _Timers) -> None:
    from semsearch.embed.static import StaticEmbedder
    from semsearch.indexing import builder, engine
    from semsearch.store import chunkstore, inverted, layout

    t.wrap(engine, "read_or_reason", "read")
    t.wrap(StaticEmbedder, "token_counts", "tokens")
    t.wrap(StaticEmbedder, "token_spans", "tokens")
    t.wrap(engine, "iter_chunk_rows", "chunk", generator=True)
    t.wrap(inverted, "_number_terms", "terms")  # in process; workers analyse their own
    t.wrap(inverted.Inverted, "add_analysed", "terms")  # what workers analysed, numbered
    t.wrap(StaticEmbedder, "encode", "encode")
    t.wrap(chunkstore.ChunkStore, "add_document", "rows")
    t.wrap(chunkstore.ChunkStore, "add_chunks", "rows")
    t.wrap(inverted.Inverted, "write", "postings")
    t.wrap(builder._Generation, "_write_vector_index", "vectors")
    t.wrap(layout.IndexDir, "publish", "publish")


def inner(roots: list[str], every: int) -> dict[str, Any]:
    import logging

    logging.disable(logging.WARNING)  # binary files skipped: not what is measured
    from semsearch.api.operations import index_paths
    from semsearch.embed import load_embedder

    static = load_embedder("static", "fp32")
    static.encode(["warm up"])
    t = _Timers()
    _install(t)
    _watch_workers()
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="phase1-") as tmp:
        t._enter()
        stats = index_paths(roots, Path(tmp) / "index", progressive=True, embedder=static)
        w0, tc0, cw, cc = t.stack.pop()
        out["wall"], out["cpu"] = time.perf_counter() - w0, time.process_time() - tc0
        out["module"] = str(Path(sys.modules["semsearch"].__file__ or "").parent)
        out["steps_wall"] = {**t.wall, "other": out["wall"] - cw}
        out["steps_cpu"] = {**t.cpu, "other": out["cpu"] - cc}
        out["worker_cpu"] = sum(e.worker_cpu for e in _ENGINES)
        out["files"], out["chunks"] = stats.documents, stats.chunks
        out["load_after"] = os.getloadavg()[0]
        out["missing"] = t.missing
    if every:
        out["transformer"] = _transformer_subset(roots, every, stats.chunks)
    return out


def _transformer_subset(roots: list[str], every: int, total_chunks: int) -> dict[str, Any]:
    """The default model's build of every ``every``-th file found, extrapolated by chunks."""
    from semsearch.api.operations import index_paths
    from semsearch.embed import load_embedder
    from semsearch.ingest.discover import discover_files

    sources = sorted(str(p) for p in discover_files(roots, ()).files)[::every]
    model = load_embedder(None, "int8")
    model.encode(["warm up"])
    with tempfile.TemporaryDirectory(prefix="phase1-tf-") as tmp:
        w0 = time.perf_counter()
        stats = index_paths(sources, Path(tmp) / "index", embedder=model)
        took = time.perf_counter() - w0
    return {
        "files": len(sources), "chunks": stats.chunks, "wall": took,
        "extrapolated": took * total_chunks / max(stats.chunks, 1),
    }  # fmt: skip


# --- the driver --------------------------------------------------------------------------------


def _run(arm: str, roots: list[str], every: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="phase1-cache-") as cache:
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(arm).resolve()),
            "SEMSEARCH_CACHE": cache,
            "SEMSEARCH_MODEL_CACHE": os.environ.get(
                "SEMSEARCH_MODEL_CACHE", str(Path.home() / ".cache/semsearch/onnx")
            ),
        }
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import phase1_bench as b; "
            "print(json.dumps(b.inner(json.loads(sys.argv[2]), int(sys.argv[3]))))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(roots), str(every)],
            env=env, capture_output=True, text=True, check=False, cwd=cache,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{arm}: build failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _row(label: str, r: dict[str, Any]) -> str:
    steps = "  ".join(
        f"{s} {r['steps_wall'][s]:.2f}/{r['steps_cpu'][s]:.2f}" for s in (*STEPS, "other")
    )
    return (f"  {label:10} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s"
            f" + workers {r.get('worker_cpu', 0.0):5.2f} s  "
            f"load {r['load_before']:.1f}->{r['load_after']:.1f}  [wall/cpu] {steps}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", action="append", help="NAME=SOURCE_TREE (default main and this)")
    ap.add_argument("--tree", action="append", help="NAME=ROOT[,ROOT...]")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transformer-every", type=int, default=0)
    args = ap.parse_args(argv)
    arms = dict(a.split("=", 1) for a in (args.arm or ["main=/work/main", "this=."]))
    trees = dict(t.split("=", 1) for t in args.tree) if args.tree else DEFAULT_TREES
    print(f"cpu flags: {' '.join(cpu_flags())}; cores {os.cpu_count()}", flush=True)
    for tree, spec in trees.items():
        roots = spec.split(",")
        results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
        print(f"\n{tree}: {' + '.join(roots)}", flush=True)
        for run in range(args.runs):
            order = list(arms) if run % 2 == 0 else list(reversed(arms))
            for arm in order:
                every = args.transformer_every if run == 0 and arm == list(arms)[-1] else 0
                r = _run(arms[arm], roots, every)
                results[arm].append(r)
                print(f"run {run + 1} {_row(arm, r)}  ({r['files']} files, {r['chunks']} chunks, "
                      f"{r['module']})", flush=True)  # fmt: skip
                if "transformer" in r:
                    tf = r["transformer"]
                    times = tf["extrapolated"] / r["wall"]
                    print(f"    transformer on every {args.transformer_every}th file: "
                          f"{tf['files']} files, {tf['chunks']} chunks, {tf['wall']:.1f} s -> "
                          f"{tf['extrapolated']:.0f} s for the tree, {times:.1f}x this static "
                          "build", flush=True)  # fmt: skip
                if r["missing"]:
                    print(f"    (not timed, absent in {arm}: {', '.join(r['missing'])})")
        _summary(results)
    return 0


def _summary(results: dict[str, list[dict[str, Any]]]) -> None:
    med: Callable[[list[float]], float] = statistics.median
    print("  medians:")
    for arm, rs in results.items():
        steps = "  ".join(
            f"{s} {med([r['steps_cpu'][s] for r in rs]):.2f}" for s in (*STEPS, "other")
        )
        workers = med([r.get("worker_cpu", 0.0) for r in rs])
        print(f"    {arm:10} wall {med([r['wall'] for r in rs]):7.2f} s  "
              f"cpu {med([r['cpu'] for r in rs]):7.2f} s + workers {workers:5.2f} s  "
              f"[cpu] {steps}")  # fmt: skip
    names = list(results)
    if len(names) == 2:
        a, b = (results[n] for n in names)
        for key in ("wall", "cpu"):
            ratio = med([r[key] for r in a]) / max(med([r[key] for r in b]), 1e-9)
            print(f"    {names[0]} / {names[1]} {key}: {ratio:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
