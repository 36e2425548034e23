"""Phase 2 in the background: what it costs the searches meanwhile, and what it costs itself.

``python -m benchmarks.phase2_bench PATH... [--sample-every K] [--queries N] [--rounds R]``

On every K-th file ``semsearch index`` takes under the paths (a fixed sample), each in a
fresh index and embedding cache:

1. **foreground**: phase 1, then ``semsearch index --foreground`` (phase 2 here, on every
   core, at normal priority): wall time and the process's peak RSS;
2. **background**: phase 1, then ``semsearch index --background`` (returns at once) until
   phase 2 is published: wall time, and the worker's peak RSS (sampled from /proc);
3. **searches meanwhile**: on a third phase-1 index, hybrid queries from one warm handle in
   this process, alternately while the worker runs and while it is stopped (``index
   --stop``; the next start resumes from the cache), R rounds of N queries each: median
   latency of each condition, and their ratio.

One JSON line, with the CPU flags and load averages.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .static_bench import _bench_env, _emit, _phase_one

QUERIES = (
    "how do I read a file line by line", "parse command line arguments", "open a socket",
    "regular expression match groups", "sort a list of dictionaries by key", "json encoder",
    "thread pool executor", "temporary directory cleanup", "decode bytes to string",
    "walk a directory tree",
)  # fmt: skip


def _cli(args: list[str], work: Path) -> float:
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "semsearch", *args, "--index", str(work / "index")]
    subprocess.run(cmd, env=_bench_env(work), check=True, capture_output=True)
    return time.perf_counter() - started


def _rss_mb(pid: int) -> float:
    """The process's resident set now (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((ln for ln in text.splitlines() if ln.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def _foreground(work: Path) -> dict[str, Any]:
    env = _bench_env(work)
    cmd = [sys.executable, "-m", "semsearch", "index", "--index", str(work / "index"),
           "--foreground"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _rss_mb(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    assert proc.returncode == 0
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak), "loadavg": _load()}


def _background(work: Path) -> dict[str, Any]:
    from semsearch.api.progressive import pending_upgrade
    from semsearch.store.phase2 import holder

    index = work / "index"
    started = time.perf_counter()
    returned = _cli(["index", "--background"], work)
    peak = 0.0
    while pending_upgrade(index) is not None or holder(index) is not None:
        pid = holder(index)
        if pid:
            peak = max(peak, _rss_mb(pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 1), "command_returned_s": round(returned, 2),
            "worker_peak_rss_mb": round(peak), "loadavg": _load()}  # fmt: skip


def _latency(work: Path, queries: int, rounds: int) -> dict[str, Any]:
    from semsearch.api import SemanticIndex
    from semsearch.store.phase2 import read_progress

    index = work / "index"
    handle = SemanticIndex.load(index)
    for q in QUERIES:  # warm: the model, the pages, the caches
        handle.search(q, 10, mode="hybrid")
    times: dict[str, list[float]] = {"worker_running": [], "worker_stopped": []}
    rounds_done = 0
    for _ in range(rounds):
        _cli(["index", "--background"], work)
        while (p := read_progress(index)) is None or p.state != "embedding" or not p.done:
            time.sleep(0.1)  # the worker has loaded its model and is embedding
        for state in ("worker_running", "worker_stopped"):
            if state == "worker_stopped":
                _cli(["index", "--stop"], work)
            p = read_progress(index)
            if state == "worker_running" and (p is None or p.state != "embedding"):
                break  # it finished: no more rounds with it running
            for i in range(queries):
                t = time.perf_counter()
                handle.search(QUERIES[i % len(QUERIES)], 10, mode="hybrid")
                times[state].append((time.perf_counter() - t) * 1000)
        else:
            rounds_done += 1
    _cli(["index", "--stop"], work)
    med = {k: round(statistics.median(v), 2) for k, v in times.items() if v}
    out: dict[str, Any] = {"rounds": rounds_done, "queries_per_round": queries,
                           "median_ms": med, "loadavg": _load()}  # fmt: skip
    if len(med) == 2:
        out["ratio_running_over_stopped"] = round(med["worker_running"] / med["worker_stopped"], 2)
    return out


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def bench(roots: list[str], sample_every: int, queries: int, rounds: int) -> dict[str, Any]:
    from semsearch.ingest.discover import discover_files

    files = sorted(str(p) for p in discover_files(roots, ()).files)[::sample_every]
    out: dict[str, Any] = {"section": "phase2-background", "roots": roots,
                           "sample_files": len(files), "sample_every": sample_every}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="phase2-bench-") as tmp:
        work = Path(tmp)
        for name in ("fg", "bg", "lat"):
            out[f"phase1_{name}"] = _phase_one(files, work / name)
        out["latency"] = _latency(work / "lat", queries, rounds)
        out["foreground"] = _foreground(work / "fg")
        out["background"] = _background(work / "bg")
    out["ratio_background_over_foreground"] = round(
        out["background"]["wall_s"] / out["foreground"]["wall_s"], 2
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--sample-every", type=int, default=40)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    _emit(bench(args.roots, args.sample_every, args.queries, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
