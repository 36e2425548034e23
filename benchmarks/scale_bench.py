"""In-process latency at scale: ``python -m benchmarks.scale_bench [--chunks N ...]``.

For each size (100k chunks by default; ``--chunks 100000 1000000`` adds a million) an index
is built from generated Zipf sentences (see :mod:`benchmarks.serve_bench`) with the fast
stand-in embedder for the corpus vectors, then opened with the real model, which embeds
every query. It prints p50/p90 for hybrid, keyword and dense search through
``SemanticIndex.search`` (query embedding included; its own p50 is printed beside; every
query is embedded and each mode starts with no cached postings, so the caches of
:mod:`semsearch.search.query_vectors` and the keyword index help only as far as distinct
queries share terms; ``hybrid_repeated`` asks the hybrid queries again), and the
median latency of adding, replacing and deleting one document through the API (each a new
generation: one small segment and tombstones). Also printed: segments, bytes on disk, and
the 1-minute load average, since absolute numbers on a busy machine are only comparable
side by side. Also printed: the build's peak resident memory (``ru_maxrss`` after the build,
in MiB and decimal GB; ``--rss-phases`` samples it and prints the peak of each phase).
``--queries-only`` opens an index already built (``--work``) read-only and measures only the
queries (no edits, sizes or build memory), with the calling thread's CPU p50 beside each
wall p50: what two checkouts compare side by side on one shared index. Measuring starts once
the threads the first searches start (mapping the vectors' pages, making the query's
one-thread session) are done, and each mode prints its minor page faults per query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from .serve_bench import MODES, sentences, stand_in, vocabulary

WORK = Path(__file__).resolve().parent / "_work" / "scale"
QUERIES = 60
EDITS = 7


def build(n: int, real: Any, phases: bool = False, work: Path = WORK) -> Path:
    """An index of ``n`` one-chunk documents (reused when already built for this ``n``).
    With ``phases`` the build's resident memory is sampled and its peaks printed by phase."""
    from semsearch import SemanticIndex
    from semsearch.store import IndexDir

    from .rss_phases import RssPhases

    path = work / f"index-{n}"
    if IndexDir(path).exists():
        print(f"  reusing {path}", flush=True)
        return path
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    emb = stand_in(real.name, real.precision, real.dim)
    index = SemanticIndex(path=path, embedder=emb)
    t0 = time.perf_counter()
    step = 100_000
    with RssPhases(every=0.1 if phases else 3600) as sampled:
        for start in range(0, n, step):  # bounded memory; the policy merges as it goes
            texts = sentences(min(step, n - start), vocabulary(), seed=n + start, lo=8, hi=24)
            index.add_texts(texts, ids=[f"doc-{start + i:07d}" for i in range(len(texts))])
            del texts
        if hasattr(index, "optimize"):  # (absent before segments: then one generation anyway)
            index.optimize()
    print(f"  built {n:,} chunks in {time.perf_counter() - t0:.0f}s", flush=True)
    for line in sampled.report() if phases else []:
        print(f"    {line}", flush=True)
    return path


def _ms(values: list[float], q: float) -> float:
    return round(1000 * statistics.quantiles(values, n=100)[int(q) - 1], 2)


def measure(
    n: int, real: Any, phases: bool = False, work: Path = WORK, queries_only: bool = False
) -> dict[str, Any]:
    from semsearch import SemanticIndex

    if queries_only:
        path = work / f"index-{n}"
        if not (path / "CURRENT").is_file():
            raise SystemExit(f"no index at {path}: build it first (without --queries-only)")
    else:
        path = build(n, real, phases, work)
    import resource

    built_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux: KiB)
    index = SemanticIndex.load(path, embedder=real)
    queries = sentences(QUERIES, vocabulary(), seed=7, lo=2, hi=5, skip=100)
    out: dict[str, Any] = {"chunks": n}
    for q in queries[:5]:  # warm: model, memory maps, caches
        index.search(q, k=10)
    _settled()
    embed = []
    for q in queries:
        t0 = time.perf_counter()
        real.encode([q], kind="query")
        embed.append(time.perf_counter() - t0)
    out["query_embedding_p50_ms"] = _ms(embed, 50)
    for mode in MODES:
        _forget(index, postings=True)  # each mode starts without the others' cached terms
        times, cpu = [], []
        faults = _minor_faults()
        for q in queries:
            _forget(index, postings=False)  # every query is embedded, as a new one is
            c0, t0 = time.thread_time(), time.perf_counter()
            index.search(q, k=10, mode=mode)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        out[f"{mode}_p50_ms"], out[f"{mode}_p90_ms"] = _ms(times, 50), _ms(times, 90)
        out[f"{mode}_thread_cpu_p50_ms"] = _ms(cpu, 50)
        out[f"{mode}_minor_faults_per_query"] = round((_minor_faults() - faults) / len(queries))
    times = []
    for q in queries:  # asked again: the query's vector and terms are cached
        t0 = time.perf_counter()
        index.search(q, k=10, mode="hybrid")
        times.append(time.perf_counter() - t0)
    out["hybrid_repeated_p50_ms"] = _ms(times, 50)
    if queries_only:
        out["loadavg_1min"] = os.getloadavg()[0]
        return out
    writer = SemanticIndex.load(path, embedder=stand_in(real.name, real.precision, real.dim))
    extra = sentences(EDITS, vocabulary(), seed=99, lo=8, hi=24)
    for name, op in (
        ("add", lambda i: writer.add_texts([extra[i]], ids=[f"bench-{i}"])),
        ("replace", lambda i: writer.upsert([extra[i] + " changed"], ids=[f"bench-{i}"])),
        ("delete", lambda i: writer.delete([f"bench-{i}"])),
    ):
        times = []
        for i in range(EDITS):
            t0 = time.perf_counter()
            op(i)
            times.append(time.perf_counter() - t0)
        out[f"{name}_one_median_s"] = round(statistics.median(times), 3)
    info = writer.info()
    store = writer.live.require().store
    out["segments_after_edits"] = len(getattr(store, "segments", [store]))
    out["size_bytes"] = info.size_bytes
    out.update(_files(store))
    out["texts_bytes"] = _text_bytes(n)
    out["peak_rss_after_build_mib"] = round(built_rss / 2**20)  # the build (a reused index: open)
    out["peak_rss_after_build_gb"] = round(built_rss / 1e9, 3)
    out["loadavg_1min"] = os.getloadavg()[0]
    return out


def _settled() -> None:
    """Wait for the threads an index and its embedder start at their second search (the
    float rows' pages mapped, the query's one-thread session made): a long-lived process's
    state, which the measured queries should neither pay for nor run beside (mapping 1M
    rows beside the query embedding's measurement made it ~0.5 ms slower)."""
    import threading

    for thread in threading.enumerate():
        if thread.name in ("semsearch-warm", "semsearch-onnx-session"):
            thread.join()


def _minor_faults() -> int:
    """The process's minor page faults so far (a query's fresh pages: docs/segments.md)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _forget(index: Any, *, postings: bool) -> None:
    """Drop the cached query vectors (and the cached postings), where this tree has them."""
    try:
        from semsearch.search import query_vectors
    except ImportError:
        return
    query_vectors.clear()
    if postings:
        index.live.require().store.keyword_index().clear_cache()


def _files(store: Any) -> dict[str, int]:
    """Bytes per file kind over the live segments."""
    out: dict[str, int] = {}
    for seg in getattr(store, "segments", []):
        for f in seg.path.iterdir():
            if f.suffix in (".npy", ".faiss", ".sqlite"):
                key = f"{f.name.replace('.', '_')}_bytes"
                out[key] = out.get(key, 0) + f.stat().st_size
    return out


def _text_bytes(n: int) -> int:
    """UTF-8 bytes of the texts :func:`build` indexed (generated again, as it made them)."""
    step, total = 100_000, 0
    for start in range(0, n, step):
        texts = sentences(min(step, n - start), vocabulary(), seed=n + start, lo=8, hi=24)
        total += sum(len(t.encode()) for t in texts)
    return total


def run(quick: bool, section: dict[str, Any], model_dir: str | None = None) -> None:
    """Entry point for ``python -m benchmarks --sections scale``."""
    section.update(main_sizes([5_000] if quick else [100_000], model_dir))


def main_sizes(
    sizes: list[int],
    model_dir: str | None,
    phases: bool = False,
    work: Path = WORK,
    queries_only: bool = False,
) -> dict[str, Any]:
    from semsearch.embed import load_embedder

    real = load_embedder(model_dir) if model_dir else load_embedder()
    flags = _cpu_flags()
    results: dict[str, Any] = {"cpu_flags": flags, "sizes": []}
    for n in sizes:
        print(f"scale: {n:,} chunks", flush=True)
        r = measure(n, real, phases, work, queries_only)
        results["sizes"].append(r)
        print("  " + ", ".join(f"{k} {v}" for k, v in r.items()), flush=True)
    return results


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni") if f in flags)


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_bench", description=__doc__)
    p.add_argument("--chunks", type=int, nargs="+", default=[100_000])
    p.add_argument("--model", help="model directory [default: the bundled one]")
    p.add_argument(
        "--rss-phases",
        action="store_true",
        help="sample the build's resident memory and print its peaks by phase",
    )
    p.add_argument("--work", type=Path, default=WORK, help=f"index directory [default: {WORK}]")
    p.add_argument(
        "--queries-only",
        action="store_true",
        help="measure only the queries, on an index already built, opened read-only",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    found = main_sizes(args.chunks, args.model, args.rss_phases, args.work, args.queries_only)
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
