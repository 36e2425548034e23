"""Incremental re-indexing: first build of a folder vs re-running on it unchanged, and after
editing a few files. Issue target: an unchanged 1,000-file folder re-indexes in < 10 % of the
first build's time.

    python -m benchmarks.incremental_bench [--quick]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _make_corpus(root: Path, n: int, seed: int = 0) -> None:
    """n files of 3-8 sentences drawn from the bundled seeds (realistic text, fixed seed)."""
    sentences = []
    for f in sorted((REPO / "seeds").glob("*.txt")):
        sentences += [s.strip() + "." for s in f.read_text().split(".") if len(s.strip()) > 20]
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 8)))
        (root / f"note{i:05d}.txt").write_text(f"Note {i}. {body}\n")


def run(quick: bool, out: dict[str, Any]) -> None:
    from semsearch import index_paths
    from semsearch.embed import load_embedder

    n = 100 if quick else 1000
    embedder = load_embedder()
    embedder.encode(["warm up"])  # model load is not part of either build
    with tempfile.TemporaryDirectory() as tmp:
        corpus, idx = Path(tmp) / "corpus", Path(tmp) / "idx"
        _make_corpus(corpus, n)
        t0 = time.perf_counter()
        first = index_paths([corpus], idx, embedder=embedder)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        same = index_paths([corpus], idx, embedder=embedder)
        t_same = time.perf_counter() - t0
        for i in range(0, n, max(n // 10, 1)):  # edit 10 files
            (corpus / f"note{i:05d}.txt").write_text(f"Edited note {i} about river trade.\n")
        t0 = time.perf_counter()
        edited = index_paths([corpus], idx, embedder=embedder)
        t_edit = time.perf_counter() - t0
    result = {
        "files": n,
        "chunks": first.chunks,
        "first_build_s": round(t_first, 3),
        "unchanged_reindex_s": round(t_same, 3),
        "unchanged_fraction": round(t_same / t_first, 4),
        "ten_edited_reindex_s": round(t_edit, 3),
        "ten_edited_fraction": round(t_edit / t_first, 4),
        "edited_counts": {"updated": edited.updated, "unchanged": edited.unchanged},
        "unchanged_embedded_chunks": same.embedded_chunks,
    }
    out.update(result)
    print(
        f"incremental: {n} files first {t_first:.2f}s, unchanged re-index {t_same:.3f}s "
        f"({100 * t_same / t_first:.1f}%), 10 edited {t_edit:.2f}s ({100 * t_edit / t_first:.1f}%)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    results: dict[str, Any] = {}
    run(parser.parse_args().quick, results)
