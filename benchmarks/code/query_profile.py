"""Where a warm code query's time goes, step by step: each step of one search timed by
wrapping the function that does it, p50 (and mean) over every query x repeat.

    PYTHONPATH=. python -m benchmarks.code.query_profile [--only asyncio --only unittest]
        [--mode hybrid] [--group file] [--repeats 20] [--clock cpu]

Steps (hybrid): ``embed start`` (handing the query to the embedding worker), ``embed
wait`` (the caller waiting for the worker's query vectors),
``keyword``, ``readings``, ``dense`` (the pool search), ``code gate`` (the best dense
candidates' texts read and tested), ``fusion`` (the two blends), ``signals`` (the
file-level re-score or grouping, its record reads included), ``hits`` (records fetched,
hits built, copies folded); ``total`` is the whole ``search`` call and ``other`` what none
of the steps covers. Times include the wrappers' own cost (~1 us a step). Uses the indexes
``query_speed`` builds (``--index-dir``). Runs on an older checkout too (from its directory:
``python /path/to/query_profile.py``), to compare the steps side by side.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.code.query_speed import open_index
from benchmarks.code.score import HERE, SOURCE_GLOBS
from benchmarks.cold_cli import cpu_flags
from semsearch.api import searching
from semsearch.search import query_vectors
from semsearch.search import retrieve as retrieve_module

_spent: dict[str, float] = {}
#: The clock: wall time, or ``--clock cpu`` the calling thread's CPU time (what the search
#: itself computes, without the waits a loaded machine adds; the worker's embedding is not
#: in it).
_clock = time.perf_counter


def _timed(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            _spent[step] = _spent.get(step, 0.0) + _clock() - t0

    return wrapper


def _soon(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``vectors_soon`` whose returned wait is timed as ``embed wait``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _timed("embed wait", _timed("embed start", fn)(*args, **kwargs))

    return wrapper


STEPS = {
    "keyword": ("keyword_hits",),
    "readings": ("readings",),
    "code gate": ("code_texts", "_plain_texts"),  # (the latter: before stop 32)
    "fusion": ("_hybrid",),
    "signals": ("_shape",),
}


def instrument(index: Any) -> None:
    """Wrap the steps (module attributes the search looks up at call time)."""
    for step, names in STEPS.items():
        name = next(n for n in names if hasattr(retrieve_module, n))
        setattr(retrieve_module, name, _timed(step, getattr(retrieve_module, name)))
    retrieve_module.on_code = _timed("code gate", retrieve_module.on_code)
    retrieve_module.vectors_soon = _soon(retrieve_module.vectors_soon)
    retrieve_module.query_vectors = _timed("embed wait", retrieve_module.query_vectors)
    searching.ranked_hits = _timed("hits", searching.ranked_hits)
    vindex = index.live.view.index
    vindex.search_pool = _timed("dense", vindex.search_pool)
    vindex.search = _timed("dense", vindex.search)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, default=HERE / "queries.json")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--index-dir", type=Path, default=Path("/tmp/semsearch-code-speed"))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--group", default=None)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args(argv)
    global _clock
    _clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    spec = json.loads(args.queries.read_text())
    print(f"cpu flags: {' '.join(cpu_flags())}; load average {os.getloadavg()[0]:.2f}")
    instrumented = False
    for tree in spec["trees"]:
        if args.only and tree["name"] not in args.only:
            continue
        index = open_index(
            tree["name"], Path(tree["path"]), args.index_dir, tree.get("globs", SOURCE_GLOBS)
        )
        if not instrumented:
            instrument(index)
            instrumented = True
        else:  # the new index's own vector index
            vindex = index.live.view.index
            vindex.search_pool = _timed("dense", vindex.search_pool)
            vindex.search = _timed("dense", vindex.search)
        queries = [q["query"] for q in tree["queries"]]
        extra = {"group": args.group} if args.group else {}
        index.search(queries[0], args.k, mode=args.mode, **extra)  # warm
        samples: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for q in queries:
                query_vectors.clear()
                _spent.clear()
                t0 = _clock()
                index.search(q, args.k, mode=args.mode, **extra)
                total = _clock() - t0
                _spent["total"] = total
                _spent["other"] = total - sum(v for s, v in _spent.items() if s != "total")
                for step, v in _spent.items():
                    samples.setdefault(step, []).append(v)
        n = len(queries) * args.repeats
        print(f"{tree['name']} {args.mode} group={args.group} {args.clock}: {n} searches; "
              "ms p50 (mean)")  # fmt: skip
        for step, vs in sorted(samples.items(), key=lambda sv: -statistics.mean(sv[1])):
            vs = vs + [0.0] * (n - len(vs))  # a step some searches skip
            p50, mean = 1000 * statistics.median(vs), 1000 * statistics.mean(vs)
            print(f"  {step:11} {p50:7.3f} ({mean:7.3f})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
