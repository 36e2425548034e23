"""The static model against BM25 and the transformer: quality, encode speed, indexing a tree.

``python -m benchmarks.static_bench eval DIR... [--model static|default] [--modes ...]``
    nDCG@10 per BEIR collection, as ``semsearch eval`` computes it (same cached index, a
    document scored by its best chunk), plus what ``semsearch eval`` does not do yet: ArguAna's
    queries are corpus documents, so a hit on the query's own id is dropped before scoring, as
    BEIR's evaluator does (``ignore_identical_ids``). Collections without a ``test`` qrels
    file are skipped; CoSQA is scored on ``test.tsv`` (its ``dev.tsv`` is for tuning).
``python -m benchmarks.static_bench speed [--texts N] [--rounds R]``
    encode throughput of the static model (a cold first pass over all SciFact abstracts,
    then a warm one) and the int8 transformer (N abstracts spread over the same corpus),
    side by side in one process, rounds interleaved: median texts/s, and their ratios.
``python -m benchmarks.static_bench tree PATH... [--default-files N]``
    wall time of ``semsearch index FILES --model static`` (every ``.py`` file under the paths)
    against the default model, each in a fresh index with an empty embedding cache; the
    default model runs on a sample of about N files (extrapolated by chunk count) when N is
    given.
``python -m benchmarks.static_bench progressive PATH... [--sample-every K]``
    progressive indexing of every file ``semsearch index`` takes under the paths: phase 1
    (keyword + static vectors) on the whole tree and the wall time of a first query on it;
    then, on every K-th file (a fixed sample), the plain transformer build against phase 1 +
    phase 2 of the same files, each in a fresh index and embedding cache. The transformer's
    time for the whole tree is extrapolated per chunk from the sample.

Every result is printed as JSON on one line, with the CPU flags that matter for int8 GEMMs.
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
from typing import Any

EVAL_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    present = set(line.split(":", 1)[-1].split())
    return [f for f in CPU_FLAGS if f in present]


def _emit(record: dict[str, Any]) -> None:
    record.setdefault("cpu_flags", cpu_flags())
    record.setdefault("loadavg", round(os.getloadavg()[0], 2))
    print(json.dumps(record), flush=True)


# --------------------------------------------------------------------------- quality


def eval_collection(
    root: Path, model: str | None, modes: list[str], max_queries: int | None = None
) -> dict[str, Any]:
    from semsearch import config
    from semsearch.api import SemanticIndex
    from semsearch.embed import load_embedder
    from semsearch.evaluation.beir import load_beir
    from semsearch.evaluation.metrics import evaluate
    from semsearch.evaluation.run import CHUNK_DEPTH, QUERY_BATCH, _index_key
    from semsearch.ingest.chunk import DEFAULT_CHUNK_TOKENS

    collection = load_beir(root, "test")
    embedder = load_embedder(model)
    index_dir = config.load().eval_cache / _index_key(
        collection.corpus_path, embedder, DEFAULT_CHUNK_TOKENS
    )
    index = SemanticIndex(embedder=embedder, chunk_tokens=DEFAULT_CHUNK_TOKENS, path=index_dir)
    docs = list(collection.corpus())
    started = time.perf_counter()
    index.upsert([d.full_text for d in docs], ids=[d.id for d in docs])
    index_s = time.perf_counter() - started
    texts = {d.id: d.text for d in docs}
    queries = list(collection.queries)
    # Queries that are corpus documents (ArguAna): same id and same text. Numeric ids
    # shared by chance (CACM, MED) do not count.
    drop_self = sum(texts.get(q.id) == q.text for q in queries) > len(queries) // 2
    if max_queries and len(queries) > max_queries:  # every k-th: the same sample every run
        queries = queries[:: -(-len(queries) // max_queries)]
    judged = {q.id: collection.qrels[q.id] for q in queries if q.id in collection.qrels}
    scores: dict[str, float] = {}
    for mode in modes:
        run: dict[str, list[tuple[str, float]]] = {}
        started = time.perf_counter()
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start : start + QUERY_BATCH]
            hits = index.search_batch([q.text for q in batch], CHUNK_DEPTH, mode=mode)  # type: ignore[arg-type]
            for q, qhits in zip(batch, hits, strict=True):
                best: dict[str, float] = {}
                for h in qhits:
                    if drop_self and h.doc_id == q.id:
                        continue
                    best.setdefault(h.doc_id, h.score)
                run[q.id] = list(best.items())[:100]
        scores[mode] = round(evaluate(judged, run, ks=(10,)).at(10).ndcg, 4)
        scores[f"{mode}_query_s"] = round(time.perf_counter() - started, 2)
    return {
        "section": "eval",
        "collection": root.name,
        "model": embedder.name,
        "precision": embedder.precision,
        "documents": len(docs),
        "queries": len(queries),
        "queries_in_collection": len(collection.queries),
        "self_hits_dropped": drop_self,
        "index_s": round(index_s, 1),
        "ndcg_at_10": scores,
    }


# --------------------------------------------------------------------------- speed


def speed(n_texts: int, rounds: int, eval_dir: Path) -> dict[str, Any]:
    """Texts/s of the static model and the int8 transformer on SciFact abstracts, in one
    process, rounds interleaved, medians. ``static_cold``: every abstract once, with the word
    memo emptied first (a first pass over a new corpus); ``static_warm``: all of them again;
    ``int8``: ``n_texts`` abstracts spread evenly over the same corpus (every k-th), whose
    mean length is printed beside the corpus's. ``rust_whole``: the Rust tokenizer alone on
    every whole abstract (``encode_batch_fast``, all cores), what the memo replaces. CPU
    seconds (all threads) are printed beside the wall times."""
    from semsearch.embed import load_embedder
    from semsearch.evaluation.beir import read_corpus

    everything = [d.full_text for d in read_corpus(eval_dir / "scifact" / "corpus.jsonl")]
    step = max(1, len(everything) // n_texts)
    sample = everything[::step][:n_texts]
    static = load_embedder("static")
    int8 = load_embedder(None, "int8")
    rust = static._span_tok  # type: ignore[attr-defined]
    clipped = [t[: static._max_chars] for t in everything]  # type: ignore[attr-defined]
    rates: dict[str, list[float]] = {k: [] for k in ("static_cold", "static_warm", "int8")}
    rates["rust_whole"] = []
    cpu: dict[str, list[float]] = {k: [] for k in rates}
    loads: list[float] = []
    stages: list[dict[str, float]] = []

    def timed(name: str, run: Any, count: int) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        run()
        rates[name].append(count / (time.perf_counter() - started))
        cpu[name].append(time.process_time() - cpu_started)

    def static_pass() -> None:
        for start in range(0, len(everything), 256):
            static.encode(everything[start : start + 256])

    def cold() -> None:
        static._words.clear()  # type: ignore[attr-defined]
        static_pass()

    for _ in range(rounds):  # interleaved, so load drifts hit all alike
        loads.append(round(os.getloadavg()[0], 2))
        timed("static_cold", cold, len(everything))
        timed("static_warm", static_pass, len(everything))
        timed("int8", lambda: int8.encode(sample), len(sample))
        timed("rust_whole", lambda: rust.encode_batch_fast(clipped), len(everything))
        stages.append(_cold_stages(static, everything))
    median = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "section": "speed",
        "static_cold_stages_s": {
            k: round(statistics.median(r[k] for r in stages), 3) for k in stages[0]
        },
        "cold_texts": len(everything),
        "int8_texts": len(sample),
        "mean_chars": {
            "corpus": round(statistics.mean(map(len, everything))),
            "int8_sample": round(statistics.mean(map(len, sample))),
        },
        "rounds": rounds,
        "loadavg_per_round": loads,
        "texts_per_s_median": {k: round(v, 1) for k, v in median.items()},
        "texts_per_s_all": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "cpu_s_median": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
        "ratio_static_cold_over_int8": round(median["static_cold"] / median["int8"], 1),
        "ratio_static_warm_over_int8": round(median["static_warm"] / median["int8"], 1),
    }


def _cold_stages(static: Any, texts: list[str]) -> dict[str, float]:
    """Where one more cold pass's wall time goes, by timing the encoder's own steps from
    outside: the new pieces' tokenizer call (Rust, joined), the rest of learning new words
    (cutting them into pieces, looking the pieces up), the rest of tokenising (splitting
    texts into words, looking them up, one gather), and the rest of ``encode`` (cut and
    [UNK] mask, sparse counts times the table, normalising)."""
    words = static._words
    spent = {"tokens": 0.0, "learn_words": 0.0, "learn_pieces": 0.0}

    def clocked(name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return run

    kept = words._words._learn, words._pieces._learn
    words.tokens = clocked("tokens", words.tokens)
    words._words._learn = clocked("learn_words", kept[0])
    words._pieces._learn = clocked("learn_pieces", kept[1])
    try:
        words.clear()
        started = time.perf_counter()
        for start in range(0, len(texts), 256):
            static.encode(texts[start : start + 256])
        total = time.perf_counter() - started
    finally:
        del words.tokens
        words._words._learn, words._pieces._learn = kept
    return {
        "tokenizer_on_new_pieces": spent["learn_pieces"],
        "new_words_to_pieces": spent["learn_words"] - spent["learn_pieces"],
        "split_lookup_gather": spent["tokens"] - spent["learn_words"],
        "mask_sparse_product_normalise": total - spent["tokens"],
        "total": total,
    }


# --------------------------------------------------------------------------- a real tree


def _index_wall(paths: list[str], model: str | None, work: Path) -> tuple[float, dict[str, Any]]:
    """One ``semsearch index`` run in a fresh index and embedding cache; the model cache
    (ONNX export, static model) is the user's, so no one-time preparation is timed."""
    from semsearch import config

    env = dict(os.environ)
    env["SEMSEARCH_MODEL_CACHE"] = str(config.load().model_cache)
    env["SEMSEARCH_CACHE"] = str(work / "cache")
    index = work / "index"
    cmd = [sys.executable, "-m", "semsearch", "index", *paths, "--index", str(index)]
    if model:
        cmd += ["--model", model]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    info = subprocess.run(
        [sys.executable, "-m", "semsearch", "info", "--index", str(index), "--json"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return wall, json.loads(info)


def tree(roots: list[Path], default_files: int | None) -> dict[str, Any]:
    """Index the ``.py`` files under ``roots`` with each model. The subset for the default
    model is every k-th file, so it samples the whole tree rather than its first folder."""
    files = sorted(str(p) for root in roots for p in root.rglob("*.py") if p.is_file())
    out: dict[str, Any] = {"section": "tree", "roots": [str(r) for r in roots], "files": len(files)}
    with tempfile.TemporaryDirectory(prefix="static-bench-") as tmp:
        static_s, info = _index_wall(files, "static", Path(tmp) / "static")
        out["static"] = {"wall_s": round(static_s, 1), "chunks": info.get("chunks")}
        out["static"]["chunks_per_s"] = round((info.get("chunks") or 0) / static_s, 1)
        step = max(1, len(files) // default_files) if default_files else 1
        subset = files[::step]
        default_s, dinfo = _index_wall(subset, None, Path(tmp) / "default")
        entry: dict[str, Any] = {"wall_s": round(default_s, 1), "chunks": dinfo.get("chunks")}
        # Extrapolating the whole wall time (start-up included) slightly overstates the
        # default model's time; chunks per second is the fairer comparison.
        entry["chunks_per_s"] = round((dinfo.get("chunks") or 0) / default_s, 1)
        if default_files:
            scale = (info.get("chunks") or 0) / max(1, dinfo.get("chunks") or 1)
            entry.update(files=len(subset), extrapolated_wall_s=round(default_s * scale, 1))
        out["default"] = entry
        full_default = entry.get("extrapolated_wall_s", entry["wall_s"])
        out["ratio_default_over_static"] = round(full_default / static_s, 1)
    return out


def _bench_env(work: Path) -> dict[str, str]:
    from semsearch import config

    env = dict(os.environ)
    env["SEMSEARCH_MODEL_CACHE"] = str(config.load().model_cache)
    env["SEMSEARCH_CACHE"] = str(work / "cache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent.parent),
                                                      env.get("PYTHONPATH")]))  # fmt: skip
    return env


def _timed_python(code: str, env: dict[str, str]) -> tuple[float, str]:
    """Wall time of a fresh Python process running ``code`` (imports included, as a user
    waits for them), and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - started, done.stdout


def _phase_one(files: list[str], work: Path) -> dict[str, Any]:
    env = _bench_env(work)
    code = (
        "import json, sys; from semsearch import api; "
        f"s = api.index_paths({files!r}, {str(work / 'index')!r}, progressive=True); "
        "print(json.dumps({'chunks': s.chunks, 'documents': s.documents}))"
    )
    wall, out = _timed_python(code, env)
    return {"wall_s": round(wall, 2), **json.loads(out.strip().splitlines()[-1])}


def _phase_two(work: Path) -> dict[str, Any]:
    code = (
        "import json; from semsearch.api.progressive import upgrade_index; "
        f"s = upgrade_index({str(work / 'index')!r}); "
        "print(json.dumps({'chunks': s.chunks, 'cache_hits': s.cache_hits}))"
    )
    wall, out = _timed_python(code, _bench_env(work))
    return {"wall_s": round(wall, 2), **json.loads(out.strip().splitlines()[-1])}


def _first_query(work: Path, query: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "semsearch", "query", query, "--index", str(work / "index"),
           "--json"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, env=_bench_env(work), check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    hits = json.loads(done.stdout)
    hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
    models = sorted({str(h.get("dense_model")) for h in hits if isinstance(h, dict)})
    return {"wall_s": round(wall, 2), "hits": len(hits), "dense_model": models}


def progressive(roots: list[str], sample_every: int) -> dict[str, Any]:
    """Phase 1 on the whole tree; transformer build vs phase 1 + 2 on a fixed sample."""
    from semsearch.ingest.discover import discover_files

    files = sorted(str(p) for p in discover_files(roots, ()).files)
    sample = files[::sample_every]
    out: dict[str, Any] = {"section": "progressive", "roots": roots, "files": len(files),
                           "sample_files": len(sample), "sample_every": sample_every}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="progressive-bench-") as tmp:
        work = Path(tmp)
        out["phase1"] = _phase_one(roots, work / "full")  # the folders, as a user names them
        out["phase1"]["loadavg"] = round(os.getloadavg()[0], 2)
        out["first_query"] = _first_query(work / "full", "how do I read a file line by line")
        plain_s, info = _index_wall(sample, None, work / "plain")
        out["sample_transformer"] = {"wall_s": round(plain_s, 2), "chunks": info.get("chunks"),
                                     "loadavg": round(os.getloadavg()[0], 2)}  # fmt: skip
        p1 = _phase_one(sample, work / "sample")
        p2 = _phase_two(work / "sample")
        out["sample_phase1"], out["sample_phase2"] = p1, p2
        out["sample_phase2"]["loadavg"] = round(os.getloadavg()[0], 2)
    per_chunk = plain_s / max(1, info.get("chunks") or 1)
    full_transformer = per_chunk * out["phase1"]["chunks"]
    out["transformer_full_extrapolated_s"] = round(full_transformer, 1)
    out["ratio_transformer_over_phase1"] = round(full_transformer / out["phase1"]["wall_s"], 1)
    out["ratio_phase2_over_transformer"] = round(p2["wall_s"] / plain_s, 2)
    out["ratio_phase1_plus_2_over_transformer"] = round((p1["wall_s"] + p2["wall_s"]) / plain_s, 2)
    return out


def fuse_rule(model: str | None) -> dict[str, float]:
    """The hybrid's dense weight rule for ``model`` (its base weight and cuts)."""
    from semsearch.search import fuse

    rule = fuse.MODEL_RULES.get(model or "", fuse.RULE)
    return {"alpha": rule.alpha, "fit": rule.fit, "vocab": rule.vocab}


def set_alpha(model: str | None, alpha: float) -> None:
    """What-if: the hybrid's base dense weight for ``model`` (its cuts kept)."""
    from dataclasses import replace

    from semsearch.search import fuse

    if model in fuse.MODEL_RULES:
        fuse.MODEL_RULES[model] = replace(fuse.MODEL_RULES[model], alpha=alpha)
    else:  # the transformer: the rule every model without its own uses
        fuse.RULE = replace(fuse.RULE, alpha=alpha)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("eval")
    ev.add_argument("dirs", nargs="*", type=Path)
    ev.add_argument("--model", default="static", help="static, or 'default' for the transformer")
    ev.add_argument("--modes", default="dense,keyword,hybrid")
    ev.add_argument("--max-queries", type=int, default=None, help="score a sample of queries")
    ev.add_argument("--alpha", type=float, default=None, help="experiment: hybrid dense weight")
    sp = sub.add_parser("speed")
    sp.add_argument("--texts", type=int, default=200)
    sp.add_argument("--rounds", type=int, default=5)
    sp.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    tr = sub.add_parser("tree")
    tr.add_argument("roots", nargs="+", type=Path)
    tr.add_argument("--default-files", type=int, default=None)
    pr = sub.add_parser("progressive")
    pr.add_argument("roots", nargs="+")
    pr.add_argument("--sample-every", type=int, default=20)
    args = parser.parse_args(argv)
    if args.cmd == "eval":
        dirs = args.dirs or sorted(p for p in EVAL_DIR.iterdir() if p.is_dir())
        model = None if args.model == "default" else args.model
        if args.alpha is not None:  # what-if only: the library's rules are search.fuse's
            set_alpha(model, args.alpha)
        for d in dirs:
            record = eval_collection(d, model, args.modes.split(","), args.max_queries)
            _emit({**record, "rule": fuse_rule(model)})
    elif args.cmd == "speed":
        _emit(speed(args.texts, args.rounds, args.eval_dir))
    elif args.cmd == "progressive":
        _emit(progressive(args.roots, args.sample_every))
    else:
        _emit(tree(args.roots, args.default_files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
