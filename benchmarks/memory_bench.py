"""Peak memory (RSS) of indexing, whatever the size of one file or of the corpus.

    python -m benchmarks.memory_bench [--cases big,line,files1k,files10k] [--big-mb 200]
                                      [--line-mb 5] [--embedder real|fake]

Each case indexes into a fresh index in a child process and reports the child's peak
resident set (``VmHWM``), its baseline after importing semsearch and loading the model,
and the time taken. The goal (issue 11, item 12): peak RSS under 1 GB for any one file.

``--embedder fake`` swaps the model for the tests' bag-of-words embedder: the reading,
chunking and storing path is the same, and a 200 MB file takes minutes instead of the
hour the real model needs for its ~250,000 chunks on two cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_MB = 1024

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {repo!r})

    def hwm_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    from semsearch import index_paths, load_embedder
    if {fake!r}:
        from tests.conftest import FakeEmbedder
        embedder = FakeEmbedder(384)
    else:
        embedder = load_embedder()
    embedder.encode(["warm up the model once"])
    base = hwm_mb()
    t0 = time.perf_counter()
    stats = index_paths([sys.argv[1]], sys.argv[2], embedder=embedder)
    print(json.dumps({{"base_mb": base, "peak_mb": hwm_mb(), "seconds": time.perf_counter() - t0,
                      "documents": stats.documents, "chunks": stats.chunks}}))
    """
)

SENTENCE = (
    "Trade between the two countries fell by about a fifth, mostly in fuel and energy, "
    "while ministers met {} times to discuss prices and pipelines. "
)


def make_big(path: Path, mb: int, *, one_line: bool) -> None:
    """``mb`` megabytes of prose, in lines of ~10 sentences or as one single line."""
    written, i = 0, 0
    with open(path, "w") as f:
        while written < mb << 20:
            s = SENTENCE.format(i)
            if not one_line and i % 10 == 9:
                s += "\n"
            f.write(s)
            written += len(s)
            i += 1


def make_files(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        sub = root / f"d{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"note{i:05d}.txt").write_text(SENTENCE.format(i) * 3)


def measure(source: Path, work: Path, fake: bool) -> dict[str, float]:
    script = work / "child.py"
    script.write_text(_CHILD.format(repo=str(REPO), fake=fake))
    idx = work / f"idx-{source.name}"
    done = subprocess.run(
        [sys.executable, str(script), str(source), str(idx)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"child failed for {source}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_bench")
    parser.add_argument("--cases", default="big,line,files1k,files10k")
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--line-mb", type=int, default=5)
    parser.add_argument("--embedder", choices=["real", "fake"], default="real")
    args = parser.parse_args(argv)
    fake = args.embedder == "fake"
    over = False
    print(f"embedder: {args.embedder}; goal: peak RSS < {GOAL_MB} MB", flush=True)
    print(f"{'case':<28} {'docs':>7} {'chunks':>8} {'base MB':>8} {'peak MB':>8} {'s':>7}")
    with tempfile.TemporaryDirectory(prefix="semsearch-mem-") as tmp:
        work = Path(tmp)
        for case in args.cases.split(","):
            t0 = time.perf_counter()
            if case == "big":
                src, label = work / "big.txt", f"one {args.big_mb} MB file"
                make_big(src, args.big_mb, one_line=False)
            elif case == "line":
                src, label = work / "line.txt", f"one {args.line_mb} MB single line"
                make_big(src, args.line_mb, one_line=True)
            elif case in ("files1k", "files10k"):
                n = 1000 if case == "files1k" else 10_000
                src, label = work / case, f"{n:,} small files"
                make_files(src, n)
            else:
                raise SystemExit(f"unknown case {case!r}")
            _ = time.perf_counter() - t0
            r = measure(src, work, fake)
            over |= r["peak_mb"] > GOAL_MB
            print(
                f"{label:<28} {r['documents']:>7,} {r['chunks']:>8,} {r['base_mb']:>8.0f} "
                f"{r['peak_mb']:>8.0f} {r['seconds']:>7.1f}",
                flush=True,
            )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
