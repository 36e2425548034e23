"""``python -m benchmarks [--quick] [--eval-dir DIR] [--out DIR]``: run every section, write
``results.json`` after each (a crash keeps what was measured), then ``results.md`` and plots.

Results go to a scratch folder (``benchmarks/_work/results``) unless ``--out`` names another;
the committed quiet-run figures change only with an explicit ``--out benchmarks/results``.
The run exits 1 when a requested section failed or is unknown, after writing the others.

Sizes are chosen so the full run fits in 20 minutes on 2 cores and ``--quick`` in 2; every
size has a flag, so a bigger machine can run the whole corpus (``--peer-docs 0``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    REPO,
    load_subset,
    log,
    prechunk,
    read_corpus,
    resolve_eval_dir,
    spread,
)

#: Where runs write unless told otherwise: ignored by git, so an ad-hoc or quick run never
#: overwrites the committed quiet-run results.
SCRATCH = REPO / "benchmarks" / "_work" / "results"
#: Run by default; ``--sections`` may also name "incremental", "ray" and "scale" (DELEGATED).
SECTIONS = ("throughput", "index", "cold_cli", "peers")
#: (full, quick) defaults.
SIZES = {
    "sample": (512, 48),  # chunks embedded per embedder for throughput
    "throughput_docs": (0, 300),  # corpus documents the throughput sample is drawn from
    "gemm_repeat": (7, 5),
    "cold_runs": (10, 3),
    "peer_docs": (1000, 20),
    "peer_queries": (100, 5),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: CI smoke run, < 2 minutes")
    p.add_argument(
        "--eval-dir", help="BEIR dir with corpus.jsonl [default: ../shared/eval/scifact]"
    )
    p.add_argument(
        "--out",
        default=str(SCRATCH),
        help="output directory [default: benchmarks/_work/results; the committed figures are "
        "in benchmarks/results and change only when named here]",
    )
    p.add_argument("--model", help="model directory [default: the bundled all-MiniLM-L6-v2]")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma list of sections")
    p.add_argument(
        "--embedders",
        default="st-fp32,onnx-fp32,onnx-int8",
        help="throughput embedders (unavailable ones are reported as skipped)",
    )
    p.add_argument(
        "--peers",
        default="semsearch,semsearch-fp32,st-faiss,txtai,chromadb",
        help="systems to compare (semsearch-<precision> forces a precision)",
    )
    for name, (full, quick) in SIZES.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=None,
            help=f"default {full} ({quick} with --quick)",
        )
    args = p.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in (
        "semsearch",
        "numpy",
        "torch",
        "sentence-transformers",
        "faiss-cpu",
        "onnxruntime",
        "txtai",
        "chromadb",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    if "semsearch" not in versions:
        with contextlib.suppress(ImportError):
            versions["semsearch"] = importlib.import_module("semsearch").__version__
    commit = ""
    with contextlib.suppress(OSError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit or None,
        "versions": versions,
    }


#: Sections measured by other modules, each exposing ``run(quick, out, **optional)``.
DELEGATED = {
    "index": "benchmarks.index_bench",
    "incremental": "benchmarks.incremental_bench",
    "ray": "benchmarks.ray_bench",
    "scale": "benchmarks.scale_bench",
}


def run_delegated(
    module: str, quick: bool, eval_dir: Path | None, out_dir: Path, model_dir: str
) -> dict[str, Any]:
    """Call ``module.run(quick, out)``, passing any of ``eval_dir``, ``out_dir`` and
    ``model_dir`` its signature accepts; a missing module is a skip, not a failure."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return {"skipped": f"{module} not importable: {exc}"}
    section: dict[str, Any] = {}
    offered = {"eval_dir": eval_dir, "out_dir": out_dir, "model_dir": model_dir}
    params = inspect.signature(mod.run).parameters
    mod.run(quick, section, **{k: v for k, v in offered.items() if k in params})
    return section


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out_dir = Path(args.out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_dir = resolve_eval_dir(args.eval_dir)
    if args.model:
        model_dir = str(Path(args.model).expanduser().resolve())
    else:
        from . import default_model_dir

        model_dir = default_model_dir()
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": args.quick,
            "eval_dir": str(eval_dir) if eval_dir else None,
            "model_dir": model_dir,
            "sizes": {name: getattr(args, name) for name in SIZES},
            "machine": machine_info(),
            "section_s": {},
            # 1-minute load average after each section: above the core count, other processes
            # competed for the CPU and absolute numbers are low (ratios within a section hold).
            "loadavg": {"start": _loadavg()},
        }
    }
    no_eval = {
        "skipped": f"eval dir not found ({args.eval_dir or 'default'}): "
        "pass --eval-dir DIR holding corpus.jsonl"
    }

    def throughput() -> dict[str, Any]:
        if eval_dir is None:
            return no_eval
        from . import roofline

        docs = spread(read_corpus(eval_dir), args.throughput_docs)
        chunks = prechunk(docs, model_dir)
        # Whole documents (SciFact abstracts: most fill the model's 256 tokens) and the
        # 200-token chunks an index is built from: the two workloads the speed goal names.
        samples = {"chunks": [c.text for c in chunks], "documents": [d.full_text for d in docs]}
        return roofline.run(
            samples,
            model_dir,
            [e.strip() for e in args.embedders.split(",") if e.strip()],
            sample=args.sample,
            gemm_repeat=args.gemm_repeat,
            rounds=1 if args.quick else 3,
            profile=0 if args.quick else 32,
        )

    def peers() -> dict[str, Any]:
        if eval_dir is None:
            return no_eval
        from . import peers as peers_mod

        docs, queries, qrels = load_subset(eval_dir, args.peer_docs, args.peer_queries)
        chunks = prechunk(docs, model_dir)
        return peers_mod.run(
            chunks,
            queries,
            qrels,
            model_dir,
            [p.strip() for p in args.peers.split(",") if p.strip()],
            repeat_baseline=not args.quick,
        )

    def cold() -> dict[str, Any]:
        from . import cold_cli

        return cold_cli.run(args.cold_runs, warmup=not args.quick)

    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": throughput,
        "cold_cli": cold,
        "peers": peers,
    }
    for name, module in DELEGATED.items():
        runners[name] = functools.partial(
            run_delegated, module, args.quick, eval_dir, out_dir, model_dir
        )
    failed: list[str] = []
    for name in wanted:
        if name not in runners:
            log(f"unknown section {name!r} (known: {', '.join(runners)})")
            failed.append(name)
            continue
        log(f"== {name}")
        t = time.perf_counter()
        try:
            results[name] = runners[name]()
        except Exception as exc:  # one broken section must not lose the others
            results[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc().splitlines()[-6:],
            }
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            failed.append(name)
        results["meta"]["section_s"][name] = time.perf_counter() - t
        results["meta"]["loadavg"][name] = _loadavg()
        results["meta"]["elapsed_s"] = time.perf_counter() - t_start
        _write(results, out_dir)
    results["meta"]["elapsed_s"] = time.perf_counter() - t_start
    _write(results, out_dir)
    from . import report

    md = report.render(results, out_dir)
    log(f"wrote {out_dir / 'results.json'} and {md} in {results['meta']['elapsed_s']:.0f} s")
    print(md.read_text(encoding="utf-8"))
    if failed:
        log(f"failed sections: {', '.join(failed)}")
        return 1
    return 0


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _write(results: dict[str, Any], out_dir: Path) -> None:
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(out_dir / "results.json")


if __name__ == "__main__":
    raise SystemExit(main())
