"""The sharded server on Ray beside the local one: ``python -m benchmarks.ray_serve_bench``.

The index: ``--chunks`` one-chunk documents of the stand-in corpus of
:mod:`benchmarks.scale_bench` (generated Zipf sentences, stand-in vectors; queries embedded
by the real model), written in ``--segments`` equal batches with merges off, so there are
segments to spread. In one run, one after the other on the same machine:

1. HTTP: ``semsearch serve`` (local) and ``semsearch serve --engine ray --shards N`` for each
   ``--shards``: p50/p99 latency and throughput at 1, 8 and 32 clients per mode, with the
   CPU seconds per request of the server process and of its shard actors (what more nodes
   would take over: the shards' share scales out, the coordinator's does not).
2. In process: the fan-out overhead per query, ``ShardedSemanticIndex`` minus
   ``SemanticIndex`` on the same queries (query embedding in both), medians, with the number
   of fan-out rounds a query makes and one bare round's cost.

Prints the CPU flags and the 1-minute load average beside every table: on a busy machine
only side-by-side ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from .scale_bench import _cpu_flags
from .serve_bench import (
    MODES,
    ServerProcess,
    load,
    pct,
    query_paths,
    sentences,
    stand_in,
    vocabulary,
)

WORK = Path(__file__).resolve().parent / "_work" / "ray"


def build(n: int, segments: int, real: Any) -> Path:
    """``n`` chunks in ``segments`` segments (reused when already built)."""
    import semsearch.indexing.merge as merge
    from semsearch import SemanticIndex
    from semsearch.store import IndexDir

    path = WORK / f"index-{n}-{segments}"
    if IndexDir(path).exists():
        print(f"  reusing {path}", flush=True)
        return path
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    merge.TIER_FACTOR, merge.MIN_NEW_ROWS = 0, 0  # keep every batch its own segment
    index = SemanticIndex(path=path, embedder=stand_in(real.name, real.precision, real.dim))
    t0 = time.perf_counter()
    step = -(-n // segments)
    for start in range(0, n, step):
        texts = sentences(min(step, n - start), vocabulary(), seed=n + start, lo=8, hi=24)
        index.add_texts(texts, ids=[f"doc-{start + i:07d}" for i in range(len(texts))])
    print(f"  built {n:,} chunks, {segments} segments in {time.perf_counter() - t0:.0f}s")
    return path


def _load() -> float:
    return os.getloadavg()[0]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _actors() -> list[int]:
    """The shard actor processes of this run (under our Ray, or a server's own)."""
    found = []
    for p in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"ray::ShardReplica"):
                found.append(p)
        except OSError:
            continue
    return found


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rss_mb(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def http(path: Path, shards: int | None, args: argparse.Namespace, address: str) -> dict[str, Any]:
    """One server (local when ``shards`` is None; else joining the Ray cluster at
    ``address``): every mode at every concurrency."""
    extra = [] if shards is None else ["--engine", "ray", "--shards", str(shards)]
    extra += [] if shards is None else ["--ray-address", address]
    name = "local" if shards is None else f"ray x{shards}"
    server = ServerProcess(path, args.workers, extra=extra)
    cells = []
    try:
        time.sleep(1)  # the overhead runs' actors, killed, are gone
        actors = _actors()
        for mode in args.modes:  # warm-up: first queries of a mode touch cold pages
            asyncio.run(load(server.port, query_paths(args.warmup, mode, seed=1), 2, 60))
        out: dict[str, Any] = {
            "server": name,
            "shard_processes": len(actors),
            "server_rss_mb": round(server.rss_mb(), 1),
            "shards_rss_mb": round(_rss_mb(actors), 1),
            "cells": cells,
        }
        print(
            f"  {name}: {len(actors)} shard processes, RSS server {out['server_rss_mb']} MB,"
            f" shards {out['shards_rss_mb']} MB",
            flush=True,
        )
        for mode in args.modes:
            for conc in args.concurrency:
                paths = query_paths(args.requests, mode, seed=100 + conc)
                c0, a0 = server.cpu_seconds(), _cpu(actors)
                r = asyncio.run(load(server.port, paths, conc, args.time_limit))
                done = max(len(r["latencies"]), 1)
                cell = {
                    "mode": mode,
                    "clients": conc,
                    "requests": len(r["latencies"]),
                    "p50_ms": round(pct(r["latencies"], 50), 2),
                    "p99_ms": round(pct(r["latencies"], 99), 2),
                    "req_per_s": round(len(r["latencies"]) / r["wall"], 2),
                    "server_cpu_ms": round(1000 * (server.cpu_seconds() - c0) / done, 2),
                    "shard_cpu_ms": round(1000 * (_cpu(actors) - a0) / done, 2),
                    "errors": len(r["errors"]),
                    "load": round(_load(), 2),
                }
                cells.append(cell)
                print(
                    f"  {name:8} {mode:8} {conc:>3} n={cell['requests']:>4} p50 "
                    f"{cell['p50_ms']:>8.2f} p99 {cell['p99_ms']:>8.2f} req/s "
                    f"{cell['req_per_s']:>6.1f} cpu/req server {cell['server_cpu_ms']:.1f} ms "
                    f"shards {cell['shard_cpu_ms']:.1f} ms err {cell['errors']} "
                    f"load {cell['load']}",
                    flush=True,
                )
    finally:
        server.stop()
    return out


def overhead(path: Path, shards: int, args: argparse.Namespace, real: Any) -> dict[str, Any]:
    """Per-query time of the sharded searcher minus the local one, same queries, in turn."""
    from semsearch import SemanticIndex
    from semsearch.search.request import SearchOptions
    from semsearch.serve.run import one_thread_per_search
    from semsearch.shard.groups import Call, RayGroups
    from semsearch.shard.placement import Sharding
    from semsearch.shard.remote import ShardedSemanticIndex

    one_thread_per_search()  # as both servers do (and the shard actors)
    groups = RayGroups(str(path), shards)
    rounds = 0
    fan_out = groups.fan_out

    def counted(calls: Any) -> Any:
        nonlocal rounds
        rounds += 1
        return fan_out(calls)

    groups.fan_out = counted  # type: ignore[method-assign]
    try:
        local = SemanticIndex.load(path, embedder=real)
        remote = ShardedSemanticIndex.bound(Sharding(groups)).load(path, embedder=real)
        queries = [
            q.rstrip(".").lower() for q in sentences(args.overhead, vocabulary(), 7, 2, 5, 50)
        ]
        out: dict[str, Any] = {"shards": shards, "modes": {}}
        for mode in args.modes:
            opts = SearchOptions(k=10, mode=mode)
            for q in queries[:5]:  # warm
                local.search_with([q], opts), remote.search_with([q], opts)
            lt, rt = [], []
            rounds = 0
            for q in queries:
                t0 = time.perf_counter()
                local.search_with([q], opts)
                t1 = time.perf_counter()
                remote.search_with([q], opts)
                rt.append(time.perf_counter() - t1)
                lt.append(t1 - t0)
            cell = {
                "local_ms": round(1000 * statistics.median(lt), 2),
                "ray_ms": round(1000 * statistics.median(rt), 2),
                "overhead_ms": round(
                    1000 * statistics.median(r - x for r, x in zip(rt, lt, strict=True)), 2
                ),
                "rounds_per_query": round(rounds / len(queries), 1),
                "load": round(_load(), 2),
            }
            out["modes"][mode] = cell
            print(f"  overhead x{shards} {mode:8} {cell}", flush=True)
        gen = remote.generation
        pings = []
        for _ in range(50):
            t0 = time.perf_counter()
            fan_out({g: Call("df", (gen, ["zzz"])) for g in range(shards)})
            pings.append(time.perf_counter() - t0)
        out["bare_round_ms"] = round(1000 * statistics.median(pings), 2)
        print(f"  one bare fan-out round x{shards}: {out['bare_round_ms']} ms", flush=True)
        return out
    finally:
        groups.close()


def start_ray() -> str:
    """One local Ray for the whole run (its start is slow on a busy machine): the overhead
    runs use it, the sharded servers join it. Returns its address."""
    import logging

    import ray

    for attempt in range(3):
        try:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            return str(ray.get_runtime_context().gcs_address)
        except Exception as exc:
            print(f"  ray did not start ({exc}); attempt {attempt + 2} of 3", flush=True)
            ray.shutdown()
    raise SystemExit("ray did not start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_serve_bench", description=__doc__)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--segments", type=int, default=8)
    p.add_argument("--shards", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=120, help="requests per cell")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per cell")
    p.add_argument("--overhead", type=int, default=40, help="queries for the overhead run")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch.embed import load_embedder

    real = load_embedder()
    result: dict[str, Any] = {"cpu_flags": _cpu_flags(), "cores": os.cpu_count(), **vars(args)}
    result["out"] = str(args.out) if args.out else None
    print(f"cpu flags: {result['cpu_flags']}; cores {os.cpu_count()}; load {_load():.2f}")
    path = build(args.chunks, args.segments, real)
    # faiss.omp_set_num_threads(1), which the servers call at start, holds for the calling
    # thread only; their searches run on worker threads with OpenMP's default (2 here) and
    # spin against each other under load. Both servers and the actors get one thread here.
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray

    address = start_ray()
    try:
        if not args.skip_overhead:
            result["overhead"] = [overhead(path, s, args, real) for s in args.shards]
        if not args.skip_http:
            servers = [None, *args.shards]
            result["http"] = [http(path, s, args, address) for s in servers]
    finally:
        ray.shutdown()
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
