"""Readers on a real mixed corpus nobody here wrote, and whether extraction or embedding
dominates a build.

    python -m benchmarks.formats_bench extract [--html DIR] [--pdf DIR] [--code DIR]
    python -m benchmarks.formats_bench build   [--sample N] ...
    python -m benchmarks.formats_bench bigtext [--mb 200]
    python -m benchmarks.formats_bench context EVAL_DIR   # title with each chunk: helps?

Defaults: Debian's python3-doc HTML (``apt-get install python3-doc``), the PDF manuals
under /usr/share/doc (gzipped ones are unpacked to a scratch folder), and the installed
``rich`` package as a source repository. Each phase runs in a child process so its peak
RSS is its own. Prints one JSON object per phase.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HTML_DIR = Path("/usr/share/doc/python3-doc/html")
DOC_ROOT = Path("/usr/share/doc")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_code_dir() -> Path:
    import rich

    return Path(rich.__file__).parent


def collect_pdfs(scratch: Path) -> Path:
    """PDF manuals under /usr/share/doc, gunzipped into ``scratch`` (Debian gzips most)."""
    out = scratch / "pdf"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(DOC_ROOT.rglob("*.pdf*")):
        if path.name.endswith(".pdf"):
            shutil.copyfile(path, out / f"{path.parent.name}-{path.name}")
        elif path.name.endswith(".pdf.gz"):
            with (
                gzip.open(path) as src,
                open(out / f"{path.parent.name}-{path.name[:-3]}", "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
    return out


def _files(kind: str, root: Path) -> list[Path]:
    from semsearch.ingest.discover import discover

    globs = {"html": ["*.html"], "pdf": ["*.pdf"], "code": ["*.py"]}[kind]
    return discover([root], globs, max_file_size=0)


def phase_extract(args: argparse.Namespace) -> dict[str, Any]:
    """Read every file of one format through its reader: docs/s, MB/s, chunk-free."""
    from semsearch.ingest.read import read_document

    files = _files(args.kind, Path(args.root))
    if args.sample:
        files = files[:: max(1, len(files) // args.sample)][: args.sample]
    size = sum(f.stat().st_size for f in files)
    started = time.perf_counter()
    chars = pages = failed = 0
    for f in files:
        doc = read_document(f)
        if doc is None:
            failed += 1
            continue
        chars += len(doc.text)
        pages += sum(1 for s in doc.sections if s.page is not None)
    seconds = time.perf_counter() - started
    return {
        "phase": "extract",
        "kind": args.kind,
        "files": len(files),
        "failed": failed,
        "mb": round(size / 1e6, 2),
        "seconds": round(seconds, 3),
        "docs_per_s": round(len(files) / seconds, 1),
        "mb_per_s": round(size / 1e6 / seconds, 2),
        "chars": chars,
        "pdf_pages": pages,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    """A whole build of a sample of each format, split into extraction and the rest."""
    import semsearch.ingest.read as read_mod
    from semsearch import api

    roots = {"html": Path(args.html), "pdf": Path(args.pdf), "code": Path(args.code)}
    work = Path(tempfile.mkdtemp(prefix="formats-bench-"))
    corpus = work / "corpus"
    for kind, root in roots.items():
        files = _files(kind, root)
        n = args.sample if kind != "pdf" else max(1, args.sample // 10)  # PDFs are long
        files = files[:: max(1, len(files) // n)][:n]
        for i, f in enumerate(files):
            dst = corpus / kind / f"{i:04d}-{f.name}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
    spent = {"extract": 0.0}
    original = read_mod.read_document

    def timed(path: Path):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return original(path)
        finally:
            spent["extract"] += time.perf_counter() - t

    import semsearch.indexing.engine as engine_mod

    engine_mod.read_document = timed  # type: ignore[assignment]
    size = sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file())
    started = time.perf_counter()
    stats = api.index_paths([corpus], work / "index")
    total = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    return {
        "phase": "build",
        "documents": stats.documents,
        "chunks": stats.chunks,
        "mb": round(size / 1e6, 2),
        "seconds": round(total, 2),
        "extract_seconds": round(spent["extract"], 2),
        "extract_share": round(spent["extract"] / total, 3),
        "chunks_per_s": round(stats.chunks / total, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def phase_bigtext(args: argparse.Namespace) -> dict[str, Any]:
    """Read and chunk one huge plain-text file (a stand-in tokenizer, no embedding): the
    memory it takes is the reading and chunking path's own."""
    import re

    from semsearch.ingest.chunk import iter_chunks
    from semsearch.ingest.read import read_document

    def word_spans(texts):  # type: ignore[no-untyped-def]
        return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]

    path = Path(tempfile.mkdtemp(prefix="bigtext-")) / "big.txt"
    para = ("The quick brown fox jumps over the lazy dog. " * 12 + "\n\n").encode()
    with open(path, "wb") as f:
        for _ in range(args.mb * 1_000_000 // len(para)):
            f.write(para)
    base = _peak_rss_mb()
    started = time.perf_counter()
    doc = read_document(path)
    assert doc is not None
    after_read = _peak_rss_mb()
    n = 0
    for _ in iter_chunks(doc.text, doc_id="d", source="d", token_spans=word_spans):
        n += 1
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    shutil.rmtree(path.parent, ignore_errors=True)
    return {
        "phase": "bigtext",
        "mb": round(size / 1e6, 1),
        "chunks": n,
        "seconds": round(seconds, 1),
        "rss_before_mb": round(base, 1),
        "peak_rss_after_read_mb": round(after_read, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def phase_context(args: argparse.Namespace) -> dict[str, Any]:
    """Dense nDCG@10 on a BEIR set with the title embedded (a) nowhere, (b) only in the
    first chunk (title + body chunked together: the current default), (c) before every
    chunk. Paired per-query differences with a bootstrap 95% interval."""
    import random

    import numpy as np

    from semsearch.embed import load_embedder
    from semsearch.evaluation.beir import load_beir
    from semsearch.evaluation.metrics import ndcg_at_k
    from semsearch.ingest.chunk import chunk_text

    col = load_beir(args.eval_dir)
    emb = load_embedder()
    texts: dict[str, list[str]] = {"none": [], "first": [], "every": []}
    owners: dict[str, list[str]] = {"none": [], "first": [], "every": []}
    docs = list(col.corpus())
    if args.distractors:  # judged documents + a seeded sample of the rest (a busy machine)
        judged = {d for rels in col.qrels.values() for d in rels}
        rest = [d for d in docs if d.id not in judged]
        keep = judged | {
            d.id for d in random.Random(0).sample(rest, min(args.distractors, len(rest)))
        }
        docs = [d for d in docs if d.id in keep]
    for d in docs:
        for c in chunk_text(d.text, doc_id=d.id, source=d.id, token_spans=emb.token_spans):
            texts["none"].append(c.text)
            texts["every"].append(f"{d.title}\n{c.text}" if d.title else c.text)
            owners["none"].append(d.id)
            owners["every"].append(d.id)
        full = f"{d.title} {d.text}".strip()
        for c in chunk_text(full, doc_id=d.id, source=d.id, token_spans=emb.token_spans):
            texts["first"].append(c.text)
            owners["first"].append(d.id)
    qv = emb.encode([q.text for q in col.queries], kind="query")
    per: dict[str, list[float]] = {}
    for name, chunk_texts in texts.items():
        vecs = np.concatenate(
            [emb.encode(chunk_texts[i : i + 256]) for i in range(0, len(chunk_texts), 256)]
        )
        scores = qv @ vecs.T
        own = owners[name]
        per[name] = []
        for qi, q in enumerate(col.queries):
            best: dict[str, float] = {}
            for j in np.argsort(-scores[qi])[:400]:
                best.setdefault(own[j], float(scores[qi, j]))
            ranking = sorted(best.items(), key=lambda x: -x[1])[:100]
            per[name].append(ndcg_at_k(col.qrels[q.id], ranking, 10))
        print(f"{name}: nDCG@10 {np.mean(per[name]):.4f}", file=sys.stderr, flush=True)
    return {
        "phase": "context",
        "queries": len(col.queries),
        "documents": len(docs),
        "chunks": {k: len(v) for k, v in texts.items()},
        **paired(per),
    }


def paired(per: dict[str, list[float]]) -> dict[str, Any]:
    """Means, and for each pair: mean difference, wins/losses/ties, bootstrap 95% CI."""
    import numpy as np

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {f"ndcg10_{k}": round(float(np.mean(v)), 4) for k, v in per.items()}
    for a, b in (("every", "none"), ("every", "first"), ("first", "none")):
        d = np.asarray(per[a]) - np.asarray(per[b])
        boot = rng.choice(d, size=(10_000, len(d))).mean(axis=1)
        out[f"{a}_minus_{b}"] = {
            "mean": round(float(d.mean()), 4),
            "ci95": [
                round(float(np.percentile(boot, 2.5)), 4),
                round(float(np.percentile(boot, 97.5)), 4),
            ],
            "wins": int((d > 1e-9).sum()),
            "losses": int((d < -1e-9).sum()),
            "ties": int((abs(d) <= 1e-9).sum()),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("phase", choices=["all", "extract", "build", "bigtext", "context"])
    p.add_argument("eval_dir", nargs="?", help="BEIR collection (context phase)")
    p.add_argument("--html", default=str(HTML_DIR))
    p.add_argument("--pdf", default=None, help="folder of PDFs [default: /usr/share/doc's]")
    p.add_argument("--code", default=None, help="source tree [default: the rich package]")
    p.add_argument("--kind", default="html")
    p.add_argument("--root", default=None)
    p.add_argument("--sample", type=int, default=0, help="files per format (0 = all)")
    p.add_argument("--mb", type=int, default=200)
    p.add_argument(
        "--distractors",
        type=int,
        default=0,
        help="context: judged docs + this many others (0 = whole corpus)",
    )
    args = p.parse_args(argv)
    if args.pdf is None:
        args.pdf = str(collect_pdfs(Path(tempfile.gettempdir()) / "formats-bench-pdf"))
    if args.code is None:
        args.code = str(default_code_dir())
    if args.phase == "all":
        for kind, root in (("html", args.html), ("pdf", args.pdf), ("code", args.code)):
            _child(
                ["extract", "--kind", kind, "--root", root, "--pdf", args.pdf, "--code", args.code]
            )
        _child(
            [
                "build",
                "--sample",
                str(args.sample or 60),
                "--html",
                args.html,
                "--pdf",
                args.pdf,
                "--code",
                args.code,
            ]
        )
        _child(["bigtext", "--mb", str(args.mb), "--pdf", args.pdf, "--code", args.code])
        return
    phases = {
        "extract": phase_extract,
        "build": phase_build,
        "bigtext": phase_bigtext,
        "context": phase_context,
    }
    print(json.dumps(phases[args.phase](args)), flush=True)


def _child(argv: list[str]) -> None:
    """Each phase in its own process: peak RSS is per phase, not the maximum so far."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-m", "benchmarks.formats_bench", *argv], check=True, env=env)


if __name__ == "__main__":
    main()
