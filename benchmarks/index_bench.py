"""Vector index benchmark: build time, size, single-query latency, batch QPS and recall@10 of
every index type (faiss flat/HNSW/IVF/IVFPQ and the NumPy fallback) as the corpus grows.

Data are seeded synthetic 384-d vectors from a Gaussian mixture (2,000 clusters in a 64-d
latent space with a decaying spectrum, projected into 384-d with a little isotropic noise,
L2-normalised). Real sentence embeddings are clustered and low-dimensional in this way;
uniform noise on the sphere has no neighbourhood structure at all, so it would make every
approximate index look far worse than it is on real data. Queries are held-out draws from the
same mixture, never rows of the index. Smaller corpora are prefixes of the 1M one.

Single-query latency runs with one OpenMP thread (how a server answers concurrent queries;
on a busy 2-core box two threads mostly wait on each other at OpenMP barriers); batch QPS uses
all threads. ``python -m benchmarks.index_bench [--quick] [--out DIR]`` runs it alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.index import FaissIndex, VectorIndex, ann, build_vector_index

DIM = 384
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 10_000)
TYPES = ("flat", "hnsw", "ivf", "ivfpq", "numpy")
N_QUERIES = 200  # held-out queries for recall
BATCH = 100
K = 10
#: HNSW takes ~10 min to build 1M rows on 2 cores: skipped there unless asked for.
HNSW_MAX_ROWS = 100_000
WORK = Path(__file__).resolve().parent / "_work"  # git-ignored cache of generated data


def clustered_vectors(
    n: int, dim: int = DIM, seed: int = 0, stream: int = 0, clusters: int = 2000, latent: int = 64
) -> np.ndarray:
    """``n`` unit vectors from the Gaussian mixture fixed by ``seed`` (see the module docstring).
    ``stream`` picks independent draws from the same mixture (queries use 1); the first ``m``
    rows do not depend on ``n``, so smaller corpora are prefixes of bigger ones."""
    rng = np.random.default_rng(seed)
    std = (np.arange(1, latent + 1) ** -0.5).astype(np.float32)
    centres = rng.standard_normal((clusters, latent), dtype=np.float32) * std
    proj = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T.astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    block = 65_536
    for i, start in enumerate(range(0, n, block)):
        r = np.random.default_rng([seed, stream, i])
        m = min(block, n - start)  # draw whole blocks so that prefixes agree
        z = centres[r.integers(0, clusters, block)]
        z += 0.7 * std * r.standard_normal((block, latent), dtype=np.float32)
        noise = r.standard_normal((block, dim), dtype=np.float32)[:m]
        x = z[:m] @ proj + (0.1 / np.sqrt(dim)) * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


def corpus(n: int, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(corpus of ``n`` rows, held-out queries). The corpus is a prefix of the largest one
    cached under ``_work`` (memory-mapped, as the store serves ``vectors.npy``), else made."""
    queries = clustered_vectors(N_QUERIES, stream=1)
    for path in sorted(
        WORK.glob(f"clustered-{DIM}-*.npy"), key=lambda p: int(p.stem.split("-")[-1])
    ):
        if int(path.stem.split("-")[-1]) >= n:
            return np.load(path, mmap_mode="r")[:n], queries
    data = clustered_vectors(n)
    if not cache:
        return data, queries
    WORK.mkdir(exist_ok=True)
    path = WORK / f"clustered-{DIM}-{n}.npy"
    with open(path.with_suffix(".tmp"), "wb") as f:
        np.save(f, data, allow_pickle=False)
    path.with_suffix(".tmp").replace(path)
    del data
    return np.load(path, mmap_mode="r"), queries


def run(
    quick: bool,
    out: dict[str, Any],
    out_dir: Path | None = None,
    plot_path: Path | None = None,
    hnsw_1m: bool = False,
) -> None:
    """Measure every type at each size; rows go to ``out["rows"]``, a log-log plot of build
    time and latency against N to ``plot_path`` (default ``out_dir/index_scaling.png``)."""
    import faiss

    sizes = QUICK_SIZES if quick else SIZES
    threads = faiss.omp_get_max_threads()
    rows: list[dict[str, Any]] = []
    out.update(
        data="clustered Gaussian mixture, 2000 clusters, 64-d latent, 384-d, unit norm",
        k=K,
        sizes=list(sizes),
        threads=threads,
        flat_max_rows=ann.FLAT_MAX_ROWS,
        auto_approx=ann.AUTO_APPROX,
        target_recall=ann.TARGET_RECALL,
        rows=rows,
    )
    auto: dict[str, Any] = {}
    out["auto"] = auto
    print(_header(), flush=True)
    corpus(max(sizes), cache=not quick)  # smaller sizes are prefixes of the cached one
    for n in sizes:
        data, queries = corpus(n, cache=not quick)
        truth = None  # exact answers, from the flat row (always measured first)
        auto_kind = ann.choose_type("auto", n)
        for kind in TYPES:
            if kind == "hnsw" and n > HNSW_MAX_ROWS and not hnsw_1m:
                rows.append({"n": n, "type": kind, "skipped": "build too slow on 2 cores"})
                continue
            row = _measure(kind, data, queries, truth, threads)
            found = row.pop("_ids")
            if kind == "flat":
                truth, row["recall"] = found, 1.0  # flat is exact: it is the ground truth
            row["auto"] = kind == auto_kind
            rows.append(row)
            print(_line(row), flush=True)
            if row["auto"]:
                auto[str(n)] = {k: row[k] for k in ("type", "params", "tuned_recall", "recall")}
            gc.collect()
    flat = {r["n"]: r for r in rows if r["type"] == "flat"}
    for n in sizes:
        best = next(r for r in rows if r["n"] == n and r.get("auto"))
        speedup = flat[n]["p50_ms"] / best["p50_ms"] if best["p50_ms"] else None
        auto[str(n)]["speedup_p50_vs_flat"] = round(speedup, 1) if speedup else None
    if plot_path is None and out_dir is not None:
        plot_path = Path(out_dir) / "index_scaling.png"
    if plot_path is not None:
        made = _plot(rows, Path(plot_path))
        out["plots"] = [str(made)] if made else []
        if made is None:
            out["plots_note"] = "plots need: pip install 'semsearch[bench]'"


def _measure(
    kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray | None, threads: int
) -> dict[str, Any]:
    import faiss

    n = len(data)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if kind == "numpy":
        index: VectorIndex = build_vector_index("numpy", DIM, data)
    else:
        index = build_vector_index("faiss", DIM, data, kind)
    build_s = time.perf_counter() - t0
    rss = _rss_mb() - rss0
    size_mb, load_ms = _size_and_load(index, data)

    big = n >= 500_000 and index.index_type == "flat"  # exact at 1M: ~0.1-0.3 s per query
    faiss.omp_set_num_threads(1)
    lat = []
    for q in queries[: 20 if big else N_QUERIES]:
        t = time.perf_counter()
        index.search(q[None], K)
        lat.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(threads)
    batches = 1 if big else 2
    t = time.perf_counter()
    for b in range(batches):
        found = index.search(queries[b * BATCH : (b + 1) * BATCH], K).ids
    qps = batches * BATCH / (time.perf_counter() - t)
    found = index.search(queries, K).ids
    recall = None if truth is None else _recall(found, truth)
    row = {
        "n": n,
        "type": kind,
        "built": index.index_type,
        "build_s": round(build_s, 2),
        "index_mb": round(size_mb, 1),
        "anon_rss_delta_mb": round(rss, 1),
        "load_ms": round(load_ms, 2),
        "p50_ms": round(1e3 * float(np.median(lat)), 3),
        "p99_ms": round(1e3 * float(np.percentile(lat, 99)), 3),
        "qps_batch100": round(qps, 1),
        "recall": None if recall is None else round(recall, 4),
        "tuned_recall": None if index.recall is None else round(index.recall, 4),
        "params": index.params,
        "_ids": found,
    }
    return row


def _size_and_load(index: VectorIndex, data: np.ndarray) -> tuple[float, float]:
    """Bytes on disk and time to open (memory-mapped) a saved copy."""
    if index.backend == "numpy":
        return data.nbytes / 2**20, 0.0
    with tempfile.TemporaryDirectory(prefix="semsearch-index-bench-") as tmp:
        path = Path(tmp) / index.file_name
        index.save(path)
        size = path.stat().st_size / 2**20
        t = time.perf_counter()
        loaded = FaissIndex.load(path, DIM, vectors=data)
        load_ms = 1e3 * (time.perf_counter() - t)
        del loaded
    return size, load_ms


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def _rss_mb() -> float:
    """Anonymous resident memory: the index's own, not the page cache of the mapped corpus."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


_COLS = ("n", "type", "build_s", "index_mb", "load_ms", "p50_ms", "p99_ms", "qps_batch100")


def _header() -> str:
    return " ".join(f"{c:>12}" for c in (*_COLS, "recall", "params"))


def _line(row: dict[str, Any]) -> str:
    params = {k: v for k, v in row["params"].items() if k != "index_type"}
    cells = [row[c] for c in _COLS] + [row["recall"]]
    text = " ".join(f"{'-' if c is None else c!s:>12}" for c in cells)
    return f"{text} {row['built']}{'*' if row['auto'] else ''} {params or ''}"


def _plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """The log-log plot, or None (numbers are still written) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print(
            "[index] matplotlib is not installed: numbers written, no plot "
            "(plots need: pip install 'semsearch[bench]')",
            file=sys.stderr,
        )
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in TYPES:
        pts = [r for r in rows if r["type"] == kind and "p50_ms" in r]
        if not pts:
            continue
        ns = [r["n"] for r in pts]
        axes[0].plot(ns, [r["build_s"] for r in pts], "o-", label=kind)
        axes[1].plot(ns, [r["p50_ms"] for r in pts], "o-", label=kind)
    auto = [r for r in rows if r.get("auto") and "p50_ms" in r]
    axes[1].plot([r["n"] for r in auto], [r["p50_ms"] for r in auto], "k--", lw=2, label="auto")
    for ax, title in zip(
        axes, ("build time (s)", "single-query latency p50 (ms, k=10)"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vectors (N, 384-d)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    note = "numpy: nothing to build, it searches vectors.npy"
    axes[0].text(0.02, 0.97, note, transform=axes[0].transAxes, va="top", fontsize=8)
    axes[1].axvline(ann.FLAT_MAX_ROWS, color="grey", ls=":", lw=1)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2k and 10k rows only")
    p.add_argument("--out", default="benchmarks/_work/results", help="directory for JSON and plot")
    p.add_argument("--hnsw-1m", action="store_true", help="also build HNSW at 1M (~10 min)")
    args = p.parse_args(argv)
    out_dir = Path(args.out)
    out: dict[str, Any] = {}
    run(args.quick, out, out_dir=out_dir, hnsw_1m=args.hnsw_1m)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index_bench.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out["auto"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
