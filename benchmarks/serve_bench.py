"""Warm query latency of ``semsearch serve``: ``python -m benchmarks.serve_bench``.

For each index size (10k and 100k chunks by default) a real index is built, a real
``semsearch serve`` process is started on loopback, and a bounded load generator (a fixed
number of requests per cell and a time limit; keep-alive HTTP/1.1 over asyncio, loopback
only) measures p50/p99 latency and throughput for dense, keyword and hybrid search at
concurrency 1, 8 and 32. A soak run then sends 10,000 hybrid requests and samples the
server's memory, and the server's CPU time is read from /proc to show how many cores it used.

How the index is made (said in the output too): the chunk texts are short generated
sentences over the words of the bundled sample articles. Their vectors come from a fast
stand-in embedder (hashed bag of words, the model's name and 384 dimensions), because
embedding 100k texts with the real model takes over an hour on 2 busy cores. The server
embeds *queries* with the real model, so every measured request pays the real query
embedding, faiss search over 384-d vectors and FTS5 BM25 over the 100k texts. Ranking
quality on this index is meaningless; latency is what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / "_work" / "serve"
MODES = ("dense", "keyword", "hybrid")


# --- the index -----------------------------------------------------------------------------


#: Bump when the generated corpus changes, so a cached index is rebuilt.
CORPUS_VERSION = 2
#: Vocabulary size: natural text has a long tail of rare words, which is what makes BM25
#: selective; a few thousand words would make every term match most of the corpus.
VOCABULARY = 30_000


@functools.lru_cache(maxsize=1)
def vocabulary() -> list[str]:
    """The sample articles' words, most frequent first, then made-up words (syllable strings)
    up to ``VOCABULARY``: ranks follow a Zipf law in :func:`sentences`."""
    from semsearch.config import bundled_seeds

    counts: dict[str, int] = {}
    for f in sorted(bundled_seeds().iterdir()):
        for w in re.findall(r"[a-z]{3,}", f.read_text(encoding="utf-8").lower()):
            counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    seen = set(words)
    rng = random.Random(0)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    while len(words) < VOCABULARY:
        w = "".join(rng.choices(syllables, k=rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def sentences(
    n: int, vocab: Sequence[str], seed: int, lo: int, hi: int, skip: int = 0
) -> list[str]:
    """``n`` texts of ``lo``..``hi`` words drawn by a Zipf law over ``vocab`` (ranks below
    ``skip`` left out: queries use content words, not the most common ones)."""
    rng = random.Random(seed)
    pool = vocab[skip:]
    cum = list(itertools.accumulate(1.0 / (rank + skip + 2) for rank in range(len(pool))))
    out = []
    for _ in range(n):
        words = rng.choices(pool, cum_weights=cum, k=rng.randint(lo, hi))
        out.append(" ".join(words).capitalize() + ".")
    return out


def stand_in(name: str, precision: str, dim: int) -> Any:
    """A hashed bag-of-words embedder carrying the real model's name, precision and width."""
    from semsearch.embed import Embedder, normalize

    class StandIn(Embedder):
        def encode(self, texts: Sequence[str], *, kind: str = "document") -> np.ndarray:
            out = np.zeros((len(texts), dim), dtype=np.float32)
            for row, text in enumerate(texts):
                for w in text.lower().split():
                    h = int.from_bytes(
                        hashlib.blake2b(w.encode(), digest_size=4).digest(), "little"
                    )
                    out[row, h % dim] += 1.0 if h & 1 << 31 else -1.0
            return normalize(out)

    e = StandIn()
    e.name, e.precision, e.dim = name, precision, dim
    return e


def build_index(n: int, real: Any) -> Path:
    from semsearch import SemanticIndex

    path = WORK / f"index-{n}"
    marker = path / "bench.json"
    want = {"chunks": n, "corpus": CORPUS_VERSION}
    if marker.is_file() and {k: json.loads(marker.read_text()).get(k) for k in want} == want:
        print(f"  reusing {path}", flush=True)
        return path
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    texts = sentences(n, vocabulary(), seed=n, lo=8, hi=24)
    t0 = time.perf_counter()
    index = SemanticIndex(path=path, embedder=stand_in(real.name, real.precision, real.dim))
    index.add_texts(texts, ids=[f"doc-{i:06d}" for i in range(n)])
    info = index.info()
    if info.chunks != n:
        raise SystemExit(f"expected {n} chunks, the index holds {info.chunks}")
    print(f"  built {n} chunks in {time.perf_counter() - t0:.1f}s ({info.index_type})", flush=True)
    marker.write_text(json.dumps({**want, "index_type": info.index_type}))
    return path


# --- the server ----------------------------------------------------------------------------


class ServerProcess:
    def __init__(
        self, index: Path, workers: int | None, processes: int = 1, extra: Sequence[str] = ()
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [
            sys.executable,
            "-m",
            "semsearch",
            "serve",
            "-i",
            str(index),
            "--port",
            str(self.port),
        ]
        if workers:
            args += ["--workers", str(workers)]
        if processes > 1:
            args += ["--processes", str(processes)]
        args += list(extra)  # e.g. --engine ray --shards 2 (benchmarks/ray_serve_bench.py)
        env = {**os.environ, "SEMSEARCH_CACHE": str(WORK / "cache"), "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"server exited: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    c.sendall(
                        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    if c.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("server did not start within 300 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """CPU time of the server and of the processes it forked (``--processes``)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat.parent.name == str(self.proc.pid) or fields[1] == str(self.proc.pid):
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the load generator --------------------------------------------------------------------


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def load(
    port: int, paths: Sequence[str], concurrency: int, time_limit: float, on_done: Any = None
) -> dict[str, Any]:
    """Send every path once, ``concurrency`` at a time on keep-alive connections; stop early
    at ``time_limit`` seconds. Returns latencies (ms), errors and wall time."""
    todo = list(reversed(paths))
    latencies: list[float] = []
    errors: list[str] = []
    t_end = time.perf_counter() + time_limit

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo and time.perf_counter() < t_end:
                path = todo.pop()
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(_one(reader, writer, path), 30)
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                    errors.append(type(exc).__name__)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    errors.append(str(status))
                if on_done is not None:
                    on_done(len(latencies))
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {
        "latencies": latencies,
        "errors": errors,
        "wall": time.perf_counter() - t0,
        "unsent": len(todo),
    }


def query_paths(n: int, mode: str, seed: int, k: int = 10) -> list[str]:
    qs = sentences(n, vocabulary(), seed=seed, lo=2, hi=5, skip=50)
    return [
        "/search?" + urllib.parse.urlencode({"q": q.rstrip(".").lower(), "k": k, "mode": mode})
        for q in qs
    ]


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) if values else float("nan")


def run_size(n: int, args: argparse.Namespace, real: Any, processes: int = 1) -> dict[str, Any]:
    print(f"\n== {n:,} chunks, {processes} server process(es)", flush=True)
    path = build_index(n, real)
    server = ServerProcess(path, args.workers, processes)
    cells: list[dict[str, Any]] = []
    out: dict[str, Any] = {"chunks": n, "processes": processes, "cells": cells}
    try:
        for mode in MODES:  # warm-up: first queries of a mode touch cold pages
            asyncio.run(load(server.port, query_paths(args.warmup, mode, seed=1), 2, 60))
        print(
            f"  {'mode':8} {'conc':>4} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}"
            f" {'cores':>5} err",
            flush=True,
        )
        for mode in MODES:
            for conc in args.concurrency:
                paths = query_paths(args.requests, mode, seed=100 + conc)
                cpu0 = server.cpu_seconds()
                r = asyncio.run(load(server.port, paths, conc, args.time_limit))
                cores = (server.cpu_seconds() - cpu0) / r["wall"]
                cell = {
                    "mode": mode,
                    "concurrency": conc,
                    "requests": len(r["latencies"]),
                    "p50_ms": pct(r["latencies"], 50),
                    "p99_ms": pct(r["latencies"], 99),
                    "req_per_s": len(r["latencies"]) / r["wall"],
                    "server_cores": cores,
                    "errors": len(r["errors"]),
                    "unsent": r["unsent"],
                }
                cells.append(cell)
                print(
                    f"  {mode:8} {conc:>4} {cell['requests']:>6} {cell['p50_ms']:>8.2f} "
                    f"{cell['p99_ms']:>8.2f} {cell['req_per_s']:>7.1f} {cores:>5.2f} "
                    f"{cell['errors']}"
                    + (f" (time limit: {r['unsent']} unsent)" if r["unsent"] else ""),
                    flush=True,
                )
        if n == max(args.sizes) and args.soak:
            out["soak"] = soak(server, args)
        out["threads"] = server.threads()
    finally:
        server.stop()
    return out


def soak(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    """``args.soak`` hybrid requests at concurrency 8; memory sampled every 500 requests."""
    samples: list[tuple[int, float]] = [(0, server.rss_mb())]

    def on_done(count: int) -> None:
        if count % 500 == 0:
            samples.append((count, server.rss_mb()))

    paths = query_paths(args.soak, "hybrid", seed=7)
    cpu0 = server.cpu_seconds()
    r = asyncio.run(load(server.port, paths, 8, args.soak_time_limit, on_done))
    samples.append((len(r["latencies"]), server.rss_mb()))
    after_warm = [mb for count, mb in samples if count >= 1000]
    result = {
        "requests": len(r["latencies"]),
        "errors": len(r["errors"]),
        "error_kinds": sorted(set(r["errors"])),
        "p50_ms": pct(r["latencies"], 50),
        "p99_ms": pct(r["latencies"], 99),
        "req_per_s": len(r["latencies"]) / r["wall"],
        "server_cores": (server.cpu_seconds() - cpu0) / r["wall"],
        "rss_mb": samples,
        "rss_growth_after_1000_mb": (after_warm[-1] - after_warm[0]) if after_warm else None,
    }
    print(
        f"  soak: {result['requests']} hybrid requests at concurrency 8,"
        f" {result['errors']} errors, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"{result['req_per_s']:.1f} req/s, server {result['server_cores']:.2f} cores",
        flush=True,
    )
    growth = result["rss_growth_after_1000_mb"]
    print(
        "  RSS MB: "
        + ", ".join(f"{c}:{mb:.0f}" for c, mb in samples)
        + ("" if growth is None else f" (growth after request 1000: {growth:+.1f} MB)"),
        flush=True,
    )
    return result


def embed_cost(real: Any, reps: int = 200) -> dict[str, float]:
    """In-process cost of embedding one short query with the real model (context for the
    HTTP numbers)."""
    qs = [q.rstrip(".").lower() for q in sentences(reps, vocabulary(), seed=3, lo=2, hi=5, skip=50)]
    real.encode(qs[:10], kind="query")
    times = []
    for q in qs:
        t0 = time.perf_counter()
        real.encode([q], kind="query")
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.serve_bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--sizes", default="10000,100000", help="index sizes in chunks")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument(
        "--requests", type=int, default=400, help="requests per (mode, concurrency) cell"
    )
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per cell at most")
    p.add_argument("--warmup", type=int, default=30, help="warm-up requests per mode")
    p.add_argument("--soak", type=int, default=10_000, help="soak requests (0: skip)")
    p.add_argument("--soak-time-limit", type=float, default=900.0)
    p.add_argument("--workers", type=int, default=None, help="server worker threads")
    p.add_argument(
        "--processes", default="1",
        help="server processes, one run each in this order (1,2,1,2 brackets load drift)",
    )  # fmt: skip
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve.json"))
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.processes = [int(c) for c in args.processes.split(",")]
    os.environ["SEMSEARCH_CACHE"] = str(WORK / "cache")
    WORK.mkdir(parents=True, exist_ok=True)
    from semsearch.embed import load_embedder

    print(__doc__.split("\n\n")[2].replace("\n", " "), flush=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    real = load_embedder()
    results: dict[str, Any] = {"load_avg_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    results["query_embedding_in_process"] = embed_cost(real)
    embed_p50 = results["query_embedding_in_process"]["p50_ms"]
    print(f"real query embedding in process: p50 {embed_p50:.2f} ms", flush=True)
    results["sizes"] = [run_size(n, args, real, p) for n in args.sizes for p in args.processes]
    results["load_avg_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(
        f"\nload average at end: {results['load_avg_end']:.1f}; results -> {args.out}", flush=True
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
