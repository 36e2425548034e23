"""Cold CLI latency: a fresh ``semsearch query`` process on the seeds index, as a user runs it.

The wall time is what a user waits; the split (import, model load, index load, first encode,
search) comes from the same steps timed inside a fresh interpreter, so it shows where a
cold start goes (``benchmarks.cold_timeline`` times the CLI process itself, mark by mark).
One untimed run first warms the OS page cache: "cold" here means a new process, not a cold
disk, which a benchmark cannot reproduce without root.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import REPO, child_env, log, median, prepare_semsearch_model, scratch_dir

QUERY = "trade decline"
#: The split's steps. The ONNX session is made in a thread started by the model load, so
#: ``model_load`` ends before it is ready and ``first_encode`` includes waiting for it.
PHASES = ("import", "model_load", "load_index", "first_encode", "search")

_SPLIT = r"""
import json, sys, time
t0 = time.perf_counter()
import semsearch
t1 = time.perf_counter()
emb = semsearch.load_embedder()  # the default model, as the seeds index was built with
getattr(emb, "_model", None)  # a lazily loaded (torch) model loads here too
t2 = time.perf_counter()
index = semsearch.SemanticIndex.load(sys.argv[1], embedder=emb)
t3 = time.perf_counter()
emb.encode([sys.argv[2]], kind="query")
t4 = time.perf_counter()
hits = index.search(sys.argv[2], k=5)
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "model_load": t2 - t1, "load_index": t3 - t2,
                  "first_encode": t4 - t3, "search": t5 - t4, "hits": len(hits),
                  "embedder": type(emb).__name__}))
"""

_BUILD = r"""
import sys
from semsearch import SemanticIndex
index = SemanticIndex()
index.add_paths([sys.argv[2]])
index.save(sys.argv[1])
print(len(index))
"""


def seeds_dir() -> Path:
    """The repository's seed documents, else the copy bundled in the installed package."""
    if (REPO / "seeds").is_dir():
        return REPO / "seeds"
    from semsearch.config import bundled_seeds

    return Path(bundled_seeds())


def cli_command() -> list[str]:
    """The installed console script when there is one, else the module it points at."""
    script = Path(sys.executable).with_name("semsearch")
    if script.is_file():
        return [str(script)]
    if (REPO / "semsearch" / "__main__.py").is_file():
        return [sys.executable, "-m", "semsearch"]
    return [sys.executable, "-m", "semsearch.cli"]


def run(
    runs: int = 10, *, warmup: bool = True, baseline: str | None = None, split: bool = True
) -> dict[str, Any]:
    """Median wall time of ``runs`` fresh CLI processes, and the median split of ``runs``
    instrumented ones. Without ``warmup`` the seed build is the only run before them (it
    reads the same libraries and model, so the page cache is mostly warm already).

    ``baseline``: a PYTHONPATH (another checkout, say ``../main``, after any directory of
    packages it should see first) whose ``--help`` and query run in the same rounds, one
    after the other, so that the machine's noise hits both alike; ``baseline`` in the result
    holds its medians, ``vs_baseline`` this tree's over its."""
    tmp = scratch_dir("cold")
    env = child_env(tmp)
    # A user's installed package has its bytecode compiled; a run without it would time
    # the compiler, not the start-up.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    index = tmp / "index"
    env["SEMSEARCH_INDEX"] = str(index)
    try:
        prepared = prepare_semsearch_model(None, tmp)  # one-time export, not a query cost
        log(f"cold CLI: building the seeds index ({seeds_dir()})")
        t = time.perf_counter()
        built = _check(
            [sys.executable, "-c", _BUILD, str(index), str(seeds_dir())], env, "seed index build"
        )
        out: dict[str, Any] = {
            "query": QUERY,
            "runs": runs,
            "seed_chunks": int(built.strip().splitlines()[-1]),
            "seed_build_s": time.perf_counter() - t,
            "model_prepare": prepared,
        }
        cmd = [*cli_command(), "query", QUERY, "--index", str(index)]
        shown = [Path(cmd[0]).name, *cmd[1:-4], "query", f'"{QUERY}"', "--index", "SEEDS"]
        out["command"] = " ".join(shown)
        log(f"cold CLI: {runs} timed runs of {out['command']!r}" + (" (+1 warm-up)" * warmup))
        if warmup:
            _check(cmd, env, "cli warm-up")
        # Side by side, interleaved so machine noise hits all alike: the query, --help and
        # the import a sentence-transformers script pays before its first line of work.
        helps, walls, refreshes, st_imports = [], [], [], []
        base_env = {**env, "PYTHONPATH": baseline} if baseline else None
        base_helps: list[float] = []
        base_walls: list[float] = []
        cpus: list[float] = []
        base_cpus: list[float] = []
        help_cmd = [*cli_command(), "--help"]
        # The same query checking the (unchanged) seed folder first: a stat per file, and
        # no build machinery loaded.
        refresh_cmd = [*cmd, "--refresh"]
        st_cmd = [sys.executable, "-c", "import sentence_transformers"]
        has_st = importlib.util.find_spec("sentence_transformers") is not None
        loads = []
        for _ in range(runs):
            loads.append(os.getloadavg()[0])
            helps.append(_timed(help_cmd, env, "cli --help"))
            walls.append(_timed(cmd, env, "cli query", cpus))
            refreshes.append(_timed(refresh_cmd, env, "cli query --refresh"))
            if base_env is not None:
                base_helps.append(_timed(help_cmd, base_env, "baseline --help"))
                base_walls.append(_timed(cmd, base_env, "baseline query", base_cpus))
            if has_st:
                st_imports.append(_timed(st_cmd, env, "import sentence_transformers"))
        out["help_s"] = {"median": median(helps), "min": min(helps), "max": max(helps)}
        out["refresh_wall_s"] = {"median": median(refreshes), "min": min(refreshes)}
        if st_imports:
            out["import_sentence_transformers_s"] = {"median": median(st_imports)}
            out["query_over_st_import"] = median(walls) / median(st_imports)
        if base_env is not None:
            out["baseline"] = {
                "pythonpath": baseline,
                "help_s": {"median": median(base_helps), "min": min(base_helps)},
                "wall_s": {"median": median(base_walls), "min": min(base_walls)},
                "cpu_s": {"median": median(base_cpus), "min": min(base_cpus)},
            }
            out["vs_baseline"] = {
                "query": median(walls) / median(base_walls),
                "help": median(helps) / median(base_helps),
                "query_cpu": median(cpus) / median(base_cpus),
            }
            if st_imports:
                out["baseline"]["query_over_st_import"] = median(base_walls) / median(st_imports)
        out["cpu_s"] = {"median": median(cpus), "min": min(cpus)}
        out["cpu_flags"] = cpu_flags()
        out["load_average"] = os.getloadavg()
        out["load_1min_median"] = median(loads)
        out["wall_s"] = {
            "median": median(walls),
            "min": min(walls),
            "max": max(walls),
            "all": walls,
        }
        if not split:
            return out
        log(f"cold CLI: {runs} instrumented runs for the split")
        splits = [
            json.loads(_check([sys.executable, "-c", _SPLIT, str(index), QUERY], env, "split"))
            for _ in range(runs)
        ]
        phases = {p: median(s[p] for s in splits) for p in PHASES}
        # What the split does not see: interpreter start/exit, CLI parsing and printing.
        phases["other"] = max(out["wall_s"]["median"] - sum(phases.values()), 0.0)
        out["split_s"] = phases
        out["embedder"] = splits[0]["embedder"]
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _timed(cmd: list[str], env: dict[str, str], what: str, cpu: list[float] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system, every thread) are appended
    to ``cpu``: on a loaded machine they move far less than the wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    _check(cmd, env, what)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def cpu_flags() -> list[str]:
    """The vector extensions that decide ONNX Runtime's speed, as /proc/cpuinfo lists them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    return sorted(
        f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    )


def _check(cmd: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {tail[-400:]}")
    return proc.stdout


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--baseline", help="PYTHONPATH of a tree to run side by side")
    parser.add_argument("--no-split", action="store_true", help="skip the instrumented runs")
    args = parser.parse_args()
    print(json.dumps(run(args.runs, baseline=args.baseline, split=not args.no_split), indent=2))
