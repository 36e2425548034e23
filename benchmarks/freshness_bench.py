"""Staying fresh: what re-checking an unchanged tree costs, how soon a saved file is
searchable under ``semsearch watch``, and what an idle watcher costs.

    python -m benchmarks.freshness_bench [--quick] [--sizes 1000,10000] [--watch-files 1000]
                                         [--edits 12] [--idle 30]

- Re-check: ``semsearch update`` on an unchanged tree of N files, as fresh processes, against
  bare process starts (``python -c pass`` and ``python -c "import semsearch.cli"``), runs
  interleaved so load on a shared machine hits all three alike; medians. Then the in-process
  check alone with 0, 10 and 100 files edited: cost should grow with the edits, not N.
- Save-to-searchable: ``semsearch watch`` in a subprocess; one file is rewritten, and the time
  until a published generation holds its new content (p50/p90 over ``--edits`` saves).
- Idle CPU: the watcher's own CPU time (utime + stime from /proc) over ``--idle`` seconds.
- Burst: peak RSS of the watcher before and after 10,000 events (2,000 files written 5 times).

Goals (2 cores): re-check <= 0.3 s above bare start (and above ``semsearch info``, issue 22)
at 10,000 files; a saved file searchable
in <= 0.5 s (p50) at 100,000 files (`--watch-files 100000 --stand-in`); idle ~0 %.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import child_env, median

WORDS = (
    "river trade harbour grain market tariff export winter budget council railway bridge "
    "school harvest copper forest storm ledger treaty coast"
).split()


def make_tree(root: Path, n: int, seed: int = 0) -> None:
    """n small text files in folders of 100 (one short paragraph each)."""
    rng = random.Random(seed)
    for i in range(n):
        folder = root / f"part{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        (folder / f"note{i:05d}.txt").write_text(f"Note {i}: {words}.\n")


_STAND_IN_BUILD = r"""
import sys
from benchmarks.serve_bench import stand_in
from semsearch import index_paths
from semsearch.embed import DEFAULT_MODEL, load_embedder
real = load_embedder()
index_paths([sys.argv[1]], sys.argv[2], embedder=stand_in(DEFAULT_MODEL, real.precision, real.dim))
"""


def build_index(tree: Path, idx: Path, env: dict[str, str], *, stand_in: bool = False) -> float:
    """Index ``tree`` in a child process: with the real default model, like a user would,
    or (``stand_in``, for 100,000 files) with vectors from a hashed bag of words carrying
    the real model's name and width, so the watcher embeds what it updates with the real
    model, as it would for a real index."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "semsearch", "index", str(tree), "--index", str(idx)]
    if stand_in:
        cmd = [sys.executable, "-c", _STAND_IN_BUILD, str(tree), str(idx)]
    subprocess.run(
        cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )  # fmt: skip
    return time.perf_counter() - t0


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def recheck(
    n: int, runs: int, tmp: Path, env: dict[str, str], *, stand_in: bool = False
) -> dict[str, Any]:
    tree, idx = tmp / f"tree{n}", tmp / f"idx{n}"
    make_tree(tree, n)
    build_s = build_index(tree, idx, env, stand_in=stand_in)
    py = sys.executable
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "import semsearch.cli": [py, "-c", "import semsearch.cli"],
        "semsearch info": [py, "-m", "semsearch", "info", "--index", str(idx)],
        "semsearch update": [py, "-m", "semsearch", "update", "--index", str(idx)],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    _timed(cmds["semsearch update"], env)  # warm the page cache once
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(_timed(cmd, env))
    med = {k: median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "files": n,
        "first_build_s": round(build_s, 2),
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "update_above_python_pass_s": round(med["semsearch update"] - med["python -c pass"], 3),
        "update_above_import_cli_s": round(
            med["semsearch update"] - med["import semsearch.cli"], 3
        ),
        # issue 22's measure: the re-check against a command that opens the same index
        "update_above_info_s": round(med["semsearch update"] - med["semsearch info"], 3),
    }
    out["update_split_s"] = update_split(idx, runs, env)
    out["check_in_process_s"] = check_split(tree, idx, env)
    return out


_SPLIT = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
import semsearch.cli as cli
t1 = time.perf_counter()
with contextlib.redirect_stderr(io.StringIO()):
    cli.main(["update", "--index", sys.argv[1]])
t2 = time.perf_counter()
print(json.dumps({"import_cli": t1 - t0, "update_command": t2 - t1}))
"""


def update_split(idx: Path, runs: int, env: dict[str, str]) -> dict[str, float]:
    """Where a fresh ``semsearch update`` process spends its time (medians over ``runs``)."""
    rows = []
    for _ in range(runs):
        res = subprocess.run(
            [sys.executable, "-c", _SPLIT, str(idx)],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        rows.append(json.loads(res.stdout))
    return {k: round(median(r[k] for r in rows), 3) for k in rows[0]}


_CHECK = r"""
import json, sys, time
from pathlib import Path
from semsearch.store import IndexDir
from semsearch.watch import check
tree, idx, n_edit = Path(sys.argv[1]), IndexDir(sys.argv[2]), int(sys.argv[3])
files = sorted(tree.rglob("*.txt"))
for i, f in enumerate(files[:n_edit]):
    f.write_text(f"Edited note {i} about glaciers.\n")
best = []
for _ in range(5):
    t0 = time.perf_counter(); d = check(idx); best.append(time.perf_counter() - t0)
best.sort()
print(json.dumps({"s": best[len(best) // 2], "pending": d.pending}))
"""


def check_split(tree: Path, idx: Path, env: dict[str, str]) -> dict[str, Any]:
    """The check alone (walk + stat + plan, hashing what changed), in-process, after editing
    0, 10 and 100 files (cumulative edits are fine: each edited file differs from the index)."""
    out = {}
    for n_edit in (0, 10, 100):
        res = subprocess.run(
            [sys.executable, "-c", _CHECK, str(tree), str(idx), str(n_edit)],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        data = json.loads(res.stdout)
        out[f"{n_edit}_edited"] = {"median_s": round(data["s"], 4), "pending": data["pending"]}
    return out


def _indexed_sha(idx: Path, source: str) -> str | None:
    """The content hash of ``source`` as the live generation holds it (every segment)."""
    from semsearch.store import IndexDir

    try:
        store = IndexDir(idx).open_store()
    except Exception:
        return None
    try:
        found = store.document(source)
        return found[0].sha256 if found else None
    finally:
        store.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _settle(pid: int, quiet: float = 0.02, timeout: float = 600.0) -> None:
    """Wait until process ``pid`` is idle (under ``quiet`` CPU seconds per half second)."""
    deadline = time.monotonic() + timeout
    last, calm = _cpu_seconds(pid), 0
    while calm < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_seconds(pid)
        calm = calm + 1 if now - last < quiet else 0
        last = now


def watch_run(
    n: int, edits: int, idle: float, tmp: Path, env: dict[str, str], *, stand_in: bool = False
) -> dict[str, Any]:
    tree, idx = tmp / f"tree{n}", tmp / f"idx{n}"
    if not idx.exists():
        if not tree.exists():
            make_tree(tree, n)
        build_index(tree, idx, env, stand_in=stand_in)
    subprocess.run(  # apply the re-check section's edits, so the watch starts in sync
        [sys.executable, "-m", "semsearch", "update", "--index", str(idx)],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "watch", "--index", str(idx)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        _until(lambda: any(s.startswith("Watching") for s in lines), 120)
        time.sleep(1.0)
        _settle(proc.pid)  # its catch-up check is done
        target = tree / f"part{(n // 2) // 100:03d}" / f"note{n // 2:05d}.txt"
        latencies = []
        for i in range(edits + 1):  # the first edit also loads the model: reported apart
            text = f"Edit {i} of this note: {' '.join(random.sample(WORDS, 8))}.\n"
            want = hashlib.sha256(text.encode()).hexdigest()
            t0 = time.perf_counter()
            target.write_text(text)
            _until(lambda w=want: _indexed_sha(idx, str(target)) == w, 60, step=0.01)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.5)
        first, rest = latencies[0], sorted(latencies[1:])
        time.sleep(3.0)  # let it settle after the last batch
        cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(idle)
        idle_cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0)
        rss_before = _rss_peak_kb(proc.pid)
        burst = sorted(tree.rglob("*.txt"))[:2000]
        contents = [p.read_bytes() for p in burst]
        t_burst = time.perf_counter()
        for _ in range(5):  # 10,000 write events; content unchanged, so nothing is embedded
            for p, data in zip(burst, contents, strict=True):
                p.write_bytes(data)
        burst_batches_before = sum("removed in" in s for s in lines)
        _until(lambda: sum("removed in" in s for s in lines) > burst_batches_before, 120)
        time.sleep(3.0)
        burst_s = time.perf_counter() - t_burst
        rss_after = _rss_peak_kb(proc.pid)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        proc.kill()
        reader.join(5)
    return {
        "files": n,
        "bulk_vectors": "stand-in" if stand_in else "real model",
        "first_edit_s (loads the model)": round(first, 3),
        "save_to_searchable_p50_s": round(rest[len(rest) // 2], 3),
        "save_to_searchable_p90_s": round(rest[min(int(len(rest) * 0.9), len(rest) - 1)], 3),
        "edits": len(rest),
        "idle_cpu_percent": round(100 * idle_cpu, 3),
        "idle_seconds": idle,
        "burst_events": 10_000,
        "burst_settled_s": round(burst_s, 2),
        "peak_rss_mb_before_burst": round(rss_before / 1024, 1),
        "peak_rss_mb_after_burst": round(rss_after / 1024, 1),
        "exit_code_after_ctrl_c": code,
        "batch_lines": [s.strip() for s in lines if "removed in" in s][-3:],
    }


def _until(cond, timeout: float, step: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise TimeoutError(f"gave up after {timeout}s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="200 files, 3 runs, 4 edits, 5 s idle")
    p.add_argument("--sizes", default="1000,10000", help="tree sizes for the re-check")
    p.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    p.add_argument("--edits", type=int, default=12, help="saves timed under watch")
    p.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured")
    p.add_argument("--watch-files", default="1000", help="tree sizes under watch ('' for none)")
    p.add_argument("--work", help="keep trees and indexes in this folder and reuse them")
    p.add_argument(
        "--stand-in", action="store_true",
        help="bulk vectors from a stand-in embedder with the model's name (for 100,000 "
        "files); what the watcher updates is embedded with the real model",
    )  # fmt: skip
    args = p.parse_args(argv)
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    runs, edits, idle = (3, 4, 5.0) if args.quick else (args.runs, args.edits, args.idle)
    watch_files = [200] if args.quick else [int(s) for s in args.watch_files.split(",") if s]
    results: dict[str, Any] = {"recheck": [], "watch": []}
    with contextlib.ExitStack() as stack:
        if args.work:  # trees and indexes kept (and reused) there
            tmp = Path(args.work)
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="semsearch-fresh-")))
        env = child_env(tmp)
        for n in sizes:
            res = recheck(n, runs, tmp, env, stand_in=args.stand_in)
            results["recheck"].append(res)
            print(json.dumps(res), flush=True)
        for n in watch_files:
            res = watch_run(n, edits, idle, tmp, env, stand_in=args.stand_in)
            results["watch"].append(res)
            print(json.dumps(res), flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
