"""Cold index time of one source tree per model: a fresh index and an empty embedding cache
each run, models alternated, in one process.

    PYTHONPATH=. python -m benchmarks.code.index_time PATH [--model static --model all-MiniLM-L6-v2]
        [--runs 2]
    PYTHONPATH=. python -m benchmarks.code.index_time PATH --cli --arm main=/work/main --arm this=.
        [--runs 3]

``--cli`` times the whole command instead, start-up included: ``python -m semsearch index PATH
--model static`` (every file, not only source files) in a fresh subprocess per run with each
arm's tree on ``PYTHONPATH``, a fresh index and an empty embedding cache, arms alternated;
wall seconds, and CPU seconds of the command and every process it waited for.

Prints files, chunks, wall and CPU seconds per run and the median per model, with the CPU's vector
extensions and the load average beside each run. The first run of a model also loads it
(the static table, the ONNX session): that time is reported apart, as "load".
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
from collections.abc import Sequence
from pathlib import Path

from benchmarks.code.score import SOURCE_GLOBS, source_files
from benchmarks.cold_cli import cpu_flags


def build(root: Path, model: str) -> tuple[float, float, int]:
    """Wall and CPU seconds (this process, every thread) to index ``root`` from nothing with
    ``model`` (loaded first), and its chunks."""
    from semsearch import SemanticIndex
    from semsearch.store.embedding_cache import EmbeddingCache

    with tempfile.TemporaryDirectory(prefix="code-index-") as tmp:
        index = SemanticIndex(
            model, path=Path(tmp) / "index", cache=EmbeddingCache(Path(tmp) / "c")
        )
        index.embedder.encode(["warm"], kind="query")  # the model's load is not the build
        t0, c0 = time.perf_counter(), time.process_time()
        index.add_paths([root], glob=list(SOURCE_GLOBS))
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        chunks = len(index)
    return took, cpu, chunks


def cli_run(root: Path, arm: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of one ``semsearch index ROOT --model static`` (children's CPU
    included: the command is run by a fresh ``python`` whose ``RUSAGE_CHILDREN`` holds it)."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run([sys.executable, '-m', 'semsearch', 'index', sys.argv[1], '--model',"
        " 'static', '--index', sys.argv[2], '--json'], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "if p.returncode: sys.exit(p.stderr[-2000:])\n"
        "print(json.dumps([wall, ru.ru_utime + ru.ru_stime, p.stdout]))\n"
    )
    with tempfile.TemporaryDirectory(prefix="code-cli-") as tmp:
        models = os.environ.get("SEMSEARCH_MODEL_CACHE", str(Path.home() / ".cache/semsearch/onnx"))
        env = {**os.environ, "PYTHONPATH": str(Path(arm).resolve()), "SEMSEARCH_CACHE": tmp,
               "SEMSEARCH_MODEL_CACHE": models}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", code, str(root), str(Path(tmp) / "index")],
            env=env, capture_output=True, text=True, check=True, cwd=tmp,
        )  # fmt: skip
    wall, cpu, out = json.loads(done.stdout.strip().splitlines()[-1])
    chunks = json.loads(out).get("chunks", -1) if out.strip().startswith("{") else -1
    return wall, cpu, chunks


def cli_main(root: Path, arms: dict[str, str], runs: int) -> int:
    print(f"{root}: semsearch index --model static; cpu flags {' '.join(cpu_flags())}")
    took: dict[str, list[float]] = {a: [] for a in arms}
    for run in range(runs):
        for arm in list(arms) if run % 2 == 0 else list(reversed(arms)):
            load = os.getloadavg()[0]
            wall, cpu, chunks = cli_run(root, arms[arm])
            took[arm].append(wall)
            print(f"run {run + 1} {arm:10} {wall:6.2f} s (cpu {cpu:.2f} s)  {chunks} chunks  "
                  f"load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for arm in arms:
        print(f"median {arm:10} {statistics.median(took[arm]):6.2f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cli", action="store_true", help="time the whole command, per arm")
    ap.add_argument("--arm", action="append", help="NAME=SOURCE_TREE (with --cli)")
    args = ap.parse_args(argv)
    if args.cli:
        arms = dict(a.split("=", 1) for a in (args.arm or ["main=/work/main", "this=."]))
        return cli_main(args.root, arms, args.runs)
    models = args.model or ["static", "all-MiniLM-L6-v2"]
    files = len(source_files(args.root))
    print(f"{args.root}: {files} files; cpu flags {' '.join(cpu_flags())}", flush=True)
    took: dict[str, list[float]] = {m: [] for m in models}
    for run in range(args.runs):
        for model in models:
            load = os.getloadavg()[0]
            seconds, cpu, chunks = build(args.root, model)
            took[model].append(seconds)
            print(f"run {run + 1} {model:18} {seconds:7.2f} s (cpu {cpu:.2f} s)  {chunks} chunks  "
                  f"load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for model in models:
        print(f"median {model:18} {statistics.median(took[model]):7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
