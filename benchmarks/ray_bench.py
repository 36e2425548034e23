"""Ray build vs local build on the same corpus: what distributing costs on one machine.

The corpus (SciFact documents written as text files into a scratch directory, never into
the repository) is built three ways: ``LocalEngine`` in this process, then ``RayEngine`` on a
``ray.cluster_utils`` cluster of one worker node, then of two, with the machine's cores split
between them and none on the head. On one machine Ray cannot be faster than local; the
point is the overhead (actor start, model load per actor, shipping shards), which a real
cluster pays once per node and then amortises. Times include each engine's model loads:
local's is reported apart (``model_load_s``) because the driver loads it once per process.

``python -m benchmarks.ray_bench [--quick]`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import log, read_corpus, resolve_eval_dir, scratch_dir, spread

#: Documents built: (full, quick).
DOCS = (2000, 200)


def run(
    quick: bool, out: dict[str, Any], eval_dir: Path | None = None, docs: int | None = None
) -> None:
    """Measure local vs Ray with 1 and 2 worker nodes; results go into ``out`` and stdout.
    ``docs`` overrides the corpus size (0 = the whole corpus)."""
    eval_dir = resolve_eval_dir(eval_dir)
    if eval_dir is None:
        out["skipped"] = "eval dir with corpus.jsonl not found (pass --eval-dir)"
        return
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        out["skipped"] = "ray is not installed: pip install 'semsearch[ray]'"
        return
    from semsearch.embed import load_embedder
    from semsearch.indexing.engine import LocalEngine
    from semsearch.indexing.ray import RayEngine

    tmp = scratch_dir("ray")
    try:
        size = docs if docs is not None else DOCS[1] if quick else DOCS[0]
        chosen = spread(read_corpus(eval_dir), size)
        corpus = tmp / "corpus"
        corpus.mkdir()
        for d in chosen:
            (corpus / f"{d.id}.txt").write_text(d.full_text, encoding="utf-8")
        cores = os.cpu_count() or 2
        out.update(docs=len(chosen), cores=cores)

        started = time.perf_counter()
        embedder = load_embedder()
        embedder.encode(["warm up"])
        out["model_load_s"] = time.perf_counter() - started
        builds: dict[str, dict[str, Any]] = {}
        out["builds"] = builds
        builds["local"], reference = _build(tmp / "local", corpus, LocalEngine(embedder), embedder)
        log(f"ray: local {builds['local']['wall_s']:.1f} s")

        for nodes in (1, 2):
            if ray.is_initialized():
                ray.shutdown()
            started = time.perf_counter()
            cluster = Cluster(
                initialize_head=True,
                connect=False,
                head_node_args={"num_cpus": 0, "include_dashboard": False},
            )
            try:
                for _ in range(nodes):
                    cluster.add_node(num_cpus=max(1, cores // nodes))
                ray.init(
                    address=cluster.address, log_to_driver=False, logging_level=logging.WARNING
                )
                cluster.wait_for_nodes()
                cluster_s = time.perf_counter() - started
                name = f"ray-{nodes}-node" + ("s" if nodes > 1 else "")
                result, vectors = _build(tmp / name, corpus, RayEngine(None), embedder)
            finally:
                ray.shutdown()
                cluster.shutdown()
            result.update(
                worker_nodes=nodes,
                cpus_per_node=max(1, cores // nodes),
                cluster_start_s=cluster_s,
                overhead_vs_local=result["wall_s"] / builds["local"]["wall_s"],
                same_vectors=bool(
                    vectors.shape == reference.shape
                    and np.allclose(vectors, reference, atol=1e-5, rtol=0)
                ),
            )
            builds[name] = result
            log(f"ray: {name} {result['wall_s']:.1f} s (x{result['overhead_vs_local']:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _print(out)


def _build(
    index: Path, corpus: Path, engine: Any, embedder: Any
) -> tuple[dict[str, Any], np.ndarray]:
    """One full build through the real builder (wall time includes the engine's start-up);
    its figures, and the vectors it wrote."""
    from semsearch.indexing import Changes, Settings, build
    from semsearch.ingest.chunk import DEFAULT_CHUNK_TOKENS
    from semsearch.ingest.discover import discover
    from semsearch.store import IndexDir

    settings = Settings(
        model=embedder.name,
        precision=embedder.precision,
        dim=embedder.dim,
        chunk_tokens=DEFAULT_CHUNK_TOKENS,
        overlap=0,
        backend="auto",
    )
    files = discover([corpus])
    started = time.perf_counter()
    stats = build(IndexDir(index), Changes(items=files, roots=[corpus]), engine, settings)
    wall = time.perf_counter() - started
    vectors = np.load(IndexDir(index).current() / "vectors.npy", allow_pickle=False)
    figures = {
        "wall_s": wall,
        "docs_per_s": stats.documents / wall,
        "chunks": stats.chunks,
        "chunks_per_s": stats.chunks / wall,
    }
    return figures, vectors


def _print(out: dict[str, Any]) -> None:
    builds = out.get("builds", {})
    print(f"\nRay build benchmark: {out.get('docs')} docs, {out.get('cores')} cores")
    print(f"{'engine':<14}{'wall s':>9}{'docs/s':>9}{'chunks/s':>10}{'x local':>9}")
    for name, b in builds.items():
        ratio = b.get("overhead_vs_local", 1.0)
        print(
            f"{name:<14}{b['wall_s']:>9.1f}{b['docs_per_s']:>9.1f}"
            f"{b['chunks_per_s']:>10.1f}{ratio:>9.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help=f"{DOCS[1]} documents, not {DOCS[0]}")
    p.add_argument("--eval-dir", help="BEIR dir with corpus.jsonl [default: shared scifact]")
    p.add_argument("--docs", type=int, help="corpus size, overriding --quick (0 = all)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out: dict[str, Any] = {}
    run(args.quick, out, Path(args.eval_dir) if args.eval_dir else None, args.docs)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    if "skipped" in out:
        print(f"skipped: {out['skipped']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
