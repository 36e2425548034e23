"""Where a cold ``semsearch query`` spends its wall time: a timeline of one CLI process.

``python -m benchmarks.cold_timeline INDEX [--runs 9] [--baseline PYTHONPATH]`` runs
``semsearch query "trade decline" --index INDEX`` in fresh processes (alternating with the
baseline tree's, when given) with an import hook that changes nothing but records, from the
moment the process was launched: when the interpreter is up, when the big imports start and
end, when the model, the tokenizer and the ONNX session (in its thread) are made, the search,
each model run, the best sentences, the printing, and when the process is gone. Prints the
median of each mark per tree (milliseconds) and the load average. No mark moves an import
earlier: the hook only wraps modules as the CLI itself imports them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import log

QUERY = "trade decline"

#: Run in the measured process instead of the console script: install the hook, then
#: ``semsearch.cli.run()`` as the script would. Marks are appended as one JSON line to
#: $MARKS_OUT at ``atexit`` or at ``os._exit``, whichever comes first.
_HOOK = r"""
import atexit, importlib.abc, importlib.machinery, json, os, sys, threading, time
LAUNCH = float(os.environ["T_LAUNCH"])
marks = [["interpreter up", time.time() - LAUNCH]]
def mark(name, t=None):
    marks.append([name, time.time() - LAUNCH if t is None else t])
def timed(label, f):
    def w(*a, **k):
        t = time.time() - LAUNCH
        try:
            return f(*a, **k)
        finally:
            mark(label + " start", t); mark(label + " end")
    return w
IMPORTS = ("typer", "numpy", "onnxruntime", "tokenizers", "semsearch.cli", "semsearch.cli.querying",
           "semsearch.api.directory", "semsearch.indexing.writer", "semsearch.api.index")
def patch(name, mod):
    if name == "semsearch.api.directory":
        mod.start_loading_model = timed("start_loading_model", mod.start_loading_model)
    elif name == "semsearch.api.index":
        cls = mod.SemanticIndex
        load = cls.load.__func__
        cls.load = classmethod(lambda c, *a, **k: timed("open index", load)(c, *a, **k))
        cls.search_with = timed("search", cls.search_with)
        cls.best_sentences = timed("best sentences", cls.best_sentences)
    elif name == "semsearch.embed.onnx_runtime":
        enc = mod.OnnxEmbedder.encode
        mod.OnnxEmbedder.encode = lambda s, texts, **k: timed(
            f"model run ({len(texts)} texts)", enc)(s, texts, **k)
        mod._new_session = timed("ONNX session (its thread)", mod._new_session)
    elif name == "tokenizers":
        real = mod.Tokenizer
        class Tokenizer:
            from_file = staticmethod(lambda p: timed("tokenizer load", real.from_file)(p))
        mod.Tokenizer = Tokenizer
    elif name in ("semsearch.cli.query", "semsearch.cli.querying"):  # where the tree has it
        if hasattr(mod, "print_hits"):
            mod.print_hits = timed("print hits", mod.print_hits)
class Loader(importlib.abc.Loader):
    def __init__(self, inner, name):
        self.inner, self.name = inner, name
    def create_module(self, spec):
        return self.inner.create_module(spec)
    def exec_module(self, module):
        t = time.time() - LAUNCH
        self.inner.exec_module(module)
        if self.name in IMPORTS:
            mark("import " + self.name + " start", t); mark("import " + self.name + " end")
        patch(self.name, module)
WRAPPED = (*IMPORTS, "semsearch.embed.onnx_runtime", "semsearch.cli.query")
class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in WRAPPED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = Loader(spec.loader, name)
        return spec
sys.meta_path.insert(0, Finder())
done = []
def dump():
    if not done:
        done.append(1)
        mark("exit begins")
        with open(os.environ["MARKS_OUT"], "a") as f:
            f.write(json.dumps(marks) + "\n")
real_exit = os._exit
def exit_now(code):
    dump()
    real_exit(code)
os._exit = exit_now
atexit.register(dump)
sys.argv = ["semsearch", *sys.argv[1:]]
from semsearch.cli import run
run()
"""


def timeline(index: Path, tree: str, out: Path) -> float:
    """One process of ``tree`` (a PYTHONPATH); its marks are appended to ``out``, and the
    wall seconds from launch until it is gone are returned."""
    env = {**os.environ, "PYTHONPATH": tree, "MARKS_OUT": str(out)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t = time.time()
    env["T_LAUNCH"] = repr(t)
    cmd = [sys.executable, "-c", _HOOK, "query", QUERY, "--index", str(index)]
    # cwd: a folder without a semsearch package, so PYTHONPATH decides which tree runs
    subprocess.run(cmd, env=env, cwd=out.parent, stdout=subprocess.DEVNULL, check=True)
    return time.time() - t


def run(index: Path, runs: int, trees: dict[str, str]) -> dict[str, object]:
    """The median time of each mark per tree, over ``runs`` rounds that alternate the trees
    (the order reversed every other round)."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = {name: Path(tmp) / f"{name}.jsonl" for name in trees}
        ends: dict[str, list[float]] = {name: [] for name in trees}
        loads = []
        for i in range(runs):
            loads.append(os.getloadavg()[0])
            # every other round in reverse order, so neither tree always runs first
            for name, tree in list(trees.items())[:: -1 if i % 2 else 1]:
                ends[name].append(timeline(index, tree, outs[name]))
        result: dict[str, object] = {"runs": runs, "load_1min_median": statistics.median(loads)}
        for name in trees:
            rounds = [dict(json.loads(line)) for line in outs[name].read_text().splitlines()]
            names = list(rounds[0])
            marks = {k: statistics.median(r[k] for r in rounds if k in r) for k in names}
            marks["process gone"] = statistics.median(ends[name])
            result[name] = {k: round(v * 1000, 1) for k, v in sorted(marks.items(), key=_at)}
        return result


def _at(item: tuple[str, float]) -> float:
    return item[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="an index built with the default model")
    parser.add_argument("--runs", type=int, default=9, help="rounds (default 9)")
    parser.add_argument("--baseline", help="PYTHONPATH of a tree to run alternately")
    args = parser.parse_args()
    trees = {"tree": str(Path(__file__).resolve().parent.parent)}
    if args.baseline:
        trees["baseline"] = args.baseline
    log(f"cold timeline: {args.runs} rounds of {', '.join(trees)}")
    print(json.dumps(run(args.index.resolve(), args.runs, trees), indent=2))
