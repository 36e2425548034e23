"""Warm query time on a code index: grouped by file as search does it now, beside the
grouping it replaced (every candidate's full record read, text included, then a Python
loop), and ungrouped, interleaved query by query in one process.

    PYTHONPATH=. python -m benchmarks.code.query_speed [--only asyncio --only unittest]
        [--index-dir DIR] [--repeats 5]

Prints the p50 (median over every query x repeat) per tree, mode and arm, the CPU's
vector extensions and the load average before and after. ``--index-dir`` keeps the built
indexes between runs (``DIR/NAME``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.code.score import HERE, SOURCE_GLOBS
from benchmarks.cold_cli import cpu_flags
from semsearch.search import group, query_vectors
from semsearch.search import retrieve as retrieve_module
from semsearch.search.group import path_factor, query_names

MODES = ("keyword", "dense", "hybrid")
#: What defined a name before: one expression over the whole text.
OLD_DEFINERS = (
    r"def|class|function|func|fn|sub|module|struct|interface|type|enum|trait|impl|"
    r"defmodule|defp?|defmacro|const|let|var|async\s+def|async\s+function"
)


def old_pattern(names: Sequence[str]) -> re.Pattern[str]:
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"\b(?:{OLD_DEFINERS})\s+\*?(?:{alt})\b|^[A-Za-z_][\w \t\*]*\b(?:{alt})\s*\([^;\n]*$",
        re.MULTILINE,
    )


def full_record_grouping(ranked: Any, store: Any, query: str, k: int | None = None) -> Any:
    """The grouping before: every candidate's record fetched (text included), one regular
    expression for definitions, grouped by document id in a Python loop (``k``: unused,
    every candidate is grouped)."""
    records = store.fetch(ranked.rows)
    names = query_names(query)
    pattern = old_pattern(names) if names else None
    by_doc: dict[str, list[tuple[float, int]]] = {}
    factor: dict[str, float] = {}
    for r, s in zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True):
        rec = records[int(r)]
        score = s
        named = rec.section.rsplit(".", 1)[-1] in names
        if pattern and (named or (any(n in rec.text for n in names) and pattern.search(rec.text))):
            score *= 1.0 + group.DEFINITION_BONUS
        by_doc.setdefault(rec.doc_id, []).append((score, r))
        factor.setdefault(rec.doc_id, path_factor(rec.source))
    groups = []
    for doc, chunks in by_doc.items():
        chunks.sort(key=lambda sr: (-sr[0], sr[1]))
        groups.append((chunks[0][1], chunks[0][0] * factor[doc], tuple(r for _, r in chunks[1:3])))
    groups.sort(key=lambda g: (-g[1], g[0]))
    rows = np.array([g[0] for g in groups], np.int64)
    further = np.empty(len(groups), dtype=object)
    further[:] = [g[2] for g in groups]
    pos = {int(r): i for i, r in enumerate(ranked.rows.tolist())}
    at = np.array([pos[int(r)] for r in rows], dtype=np.int64)
    scores = np.array([g[1] for g in groups], np.float32)
    return replace(ranked.take(at), rows=rows, scores=scores, further=further)


def open_index(name: str, root: Path, where: Path, globs: Sequence[str] = SOURCE_GLOBS) -> Any:
    from semsearch import SemanticIndex

    index = SemanticIndex(path=where / name)
    index.add_paths([root], glob=list(globs))  # a no-op when already current
    return index


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, default=HERE / "queries.json")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--index-dir", type=Path, default=Path("/tmp/semsearch-code-speed"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args(argv)
    spec = json.loads(args.queries.read_text())
    print(f"cpu flags: {' '.join(cpu_flags())}; load average {os.getloadavg()[0]:.2f}")
    new_path = retrieve_module.by_file
    # The grouping before knew one definition tier: the same hits need the two equal.
    group.EXACT_DEFINITION_BONUS = group.DEFINITION_BONUS
    for tree in spec["trees"]:
        if args.only and tree["name"] not in args.only:
            continue
        index = open_index(
            tree["name"], Path(tree["path"]), args.index_dir, tree.get("globs", SOURCE_GLOBS)
        )
        queries = [q["query"] for q in tree["queries"]]
        arms = {"chunks": None, "files, before": full_record_grouping, "files, now": new_path}
        times: dict[tuple[str, str], list[float]] = {(m, a): [] for m in MODES for a in arms}
        same = True
        for mode in MODES:
            index.search(queries[0], args.k, mode=mode, group="file")  # warm
            for _ in range(args.repeats):
                for q in queries:
                    results = {}
                    for arm, grouping in arms.items():
                        if grouping is not None:
                            retrieve_module.by_file = grouping  # type: ignore[assignment]
                        extra = {"group": "file"} if grouping is not None else {}
                        query_vectors.clear()  # time a new query, not a cached vector
                        t0 = time.perf_counter()
                        hits = index.search(q, args.k, mode=mode, **extra)
                        times[mode, arm].append(time.perf_counter() - t0)
                        results[arm] = [(h.chunk_id, h.score, h.more) for h in hits]
                        retrieve_module.by_file = new_path
                    same &= results["files, before"] == results["files, now"]
        for mode in MODES:
            p50 = {a: 1000 * statistics.median(times[mode, a]) for a in arms}
            print(
                f"{tree['name']:13} {mode:8} p50 ms: chunks {p50['chunks']:6.2f}  files before "
                f"{p50['files, before']:6.2f}  files now {p50['files, now']:6.2f}  "
                f"(before/now {p50['files, before'] / p50['files, now']:.2f}x)",
                flush=True,
            )
        print(f"{tree['name']:13} same hits before and now: {same}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
