"""Cold index time of one source tree per model: a fresh index and an empty embedding cache
each run, models alternated, in one process.

    PYTHONPATH=. python -m benchmarks.code.index_time PATH [--model static --model all-MiniLM-L6-v2]
        [--runs 2]

Prints files, chunks, wall and CPU seconds per run and the median per model, with the CPU's vector
extensions and the load average beside each run. The first run of a model also loads it
(the static table, the ONNX session): that time is reported apart, as "load".
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
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
