"""tokenlearn (PyPI) against the distilled static model: its cost and its gain, per collection.

``python -m benchmarks.tokenlearn_bench DIR... [--max-queries N] [--threads T] [--train-every K]``

For each BEIR collection (evaluation only: pass paths, nothing is committed):

1. the collection is indexed with the distilled static model (``--model static``), as
   ``benchmarks.static_bench eval`` does; its stored chunk texts are the training corpus
   ("the user's own corpus": exactly the texts phase 2 would embed; with ``--train-every
   K`` every K-th chunk only, as if trained after the first 1/K of phase 2);
2. **featurise**: every chunk is embedded by the teacher, the bundled int8 MiniLM, through
   the embedding cache (time and cache hits reported: a chunk embedded before costs nothing);
3. **train**: ``tokenlearn.train.train_model`` fine-tunes the distilled table on (chunk text,
   teacher vector) pairs, starting from the distilled vectors and vocabulary (tokenlearn's
   own CLI would first distil again with a corpus vocabulary: minutes more, not done);
   wall time, CPU time and the process's peak RSS before and after are reported;
4. the trained table is stored as a static model of its own (same tokenizer, same inference
   code) and the collection indexed again with it;
5. static dense and static hybrid nDCG@10 of both models on the same queries, with paired
   per-query differences (trained − distilled) and 95% bootstrap intervals; BM25 beside.

tokenlearn is not a dependency: install it apart, without its dependencies (it pins an
older transformers and would pull ``datasets``; the training step needs only torch,
model2vec and scikit-learn, which the ``static`` extra has), e.g.
``pip install --no-deps --target /tmp/tl tokenlearn==0.2.1`` and ``PYTHONPATH=.:/tmp/tl``.
Every result is one JSON line, with the CPU flags and the load average.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .static_bench import EVAL_DIR, _emit

BLOCK = 256


def _chunk_texts(index_dir: Path) -> list[str]:
    from semsearch.store.layout import IndexDir

    store = IndexDir(index_dir).open_store()
    try:
        return [t for at in range(0, store.rows, BLOCK) for t in store.chunk_texts(at, at + BLOCK)]
    finally:
        store.close()


def _teacher_vectors(texts: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    from semsearch import config
    from semsearch.embed import load_embedder
    from semsearch.store.embedding_cache import EmbeddingCache, encode_cached

    teacher = load_embedder()
    cache = EmbeddingCache(config.load().embedding_cache)
    started, cpu = time.perf_counter(), time.process_time()
    parts, hits = [], 0
    for at in range(0, len(texts), BLOCK):
        vectors, hit = encode_cached(teacher, texts[at : at + BLOCK], cache)
        parts.append(vectors)
        hits += hit
    cost = {
        "featurise_s": round(time.perf_counter() - started, 1),
        "featurise_cpu_s": round(time.process_time() - cpu, 1),
        "chunks": len(texts),
        "teacher_cache_hits": hits,
        "teacher": f"{teacher.name} {teacher.precision}",
    }
    return np.concatenate(parts), cost


def _train(distilled_dir: Path, texts: list[str], targets: np.ndarray, out: Path) -> dict[str, Any]:
    import torch
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from tokenlearn.train import train_model

    from semsearch.embed.static import TOKENIZER_FILE, VECTORS_FILE
    from semsearch.embed.static_distill import Distilled, write_static

    table = np.load(distilled_dir / VECTORS_FILE, allow_pickle=False)
    tok = Tokenizer.from_file(str(distilled_dir / TOKENIZER_FILE))
    model = StaticModel(vectors=np.array(table), tokenizer=tok, normalize=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    trained = train_model(model, texts, targets, device="cpu", pca_dims=table.shape[1])
    cost = {
        "train_s": round(time.perf_counter() - started, 1),
        "train_cpu_s": round(time.process_time() - cpu, 1),
        "peak_rss_mb_before": rss0 // 1024,
        "peak_rss_mb_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "torch_threads": torch.get_num_threads(),
    }
    vectors = np.asarray(trained.embedding, dtype=np.float32)
    write_static(
        out, Distilled(vectors, tok.to_str()), teacher="tokenlearn", stamp="bench",
        max_tokens=int(_meta(distilled_dir)["max_tokens"]),
    )  # fmt: skip
    return cost


def _meta(model_dir: Path) -> dict[str, Any]:
    from semsearch.embed.static import META_FILE
    from semsearch.util import read_json_object

    return read_json_object(model_dir / META_FILE) or {}


def _per_query(
    index: Any, collection: Any, queries: list[Any], mode: str, drop_self: bool
) -> dict[str, float]:
    from semsearch.evaluation.metrics import per_query
    from semsearch.evaluation.run import CHUNK_DEPTH, QUERY_BATCH

    run: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start : start + QUERY_BATCH]
        hits = index.search_batch([q.text for q in batch], CHUNK_DEPTH, mode=mode)
        for q, qhits in zip(batch, hits, strict=True):
            best: dict[str, float] = {}
            for h in qhits:
                if not (drop_self and h.doc_id == q.id):
                    best.setdefault(h.doc_id, h.score)
            run[q.id] = list(best.items())[:100]
    judged = {q.id: collection.qrels[q.id] for q in queries if q.id in collection.qrels}
    return {q: e.at(10).ndcg for q, e in per_query(judged, run, ks=(10,)).items()}


def bench_collection(
    root: Path, max_queries: int | None, work: Path, train_every: int = 1
) -> dict[str, Any]:
    from semsearch import config
    from semsearch.api import SemanticIndex
    from semsearch.embed import load_embedder
    from semsearch.embed.static import StaticEmbedder
    from semsearch.evaluation.beir import load_beir
    from semsearch.evaluation.compare import paired
    from semsearch.evaluation.run import _index_key
    from semsearch.ingest.chunk import DEFAULT_CHUNK_TOKENS

    collection = load_beir(root, "test")
    docs = list(collection.corpus())
    distilled = load_embedder("static")
    assert isinstance(distilled, StaticEmbedder)
    where = config.load().eval_cache / _index_key(
        collection.corpus_path, distilled, DEFAULT_CHUNK_TOKENS
    )
    base = SemanticIndex(embedder=distilled, chunk_tokens=DEFAULT_CHUNK_TOKENS, path=where)
    base.upsert([d.full_text for d in docs], ids=[d.id for d in docs])
    texts = _chunk_texts(where)
    if train_every > 1:  # a sample, as the first part of phase 2 would embed it
        texts = texts[::train_every]
    targets, cost = _teacher_vectors(texts)
    model_dir = work / f"{root.name}-tokenlearn"
    cost.update(_train(distilled.model_dir, texts, targets, model_dir))
    trained_embedder = StaticEmbedder(model_dir)
    started = time.perf_counter()
    trained = SemanticIndex(
        embedder=trained_embedder, chunk_tokens=DEFAULT_CHUNK_TOKENS, path=work / root.name
    )
    trained.upsert([d.full_text for d in docs], ids=[d.id for d in docs])
    cost["index_trained_s"] = round(time.perf_counter() - started, 1)
    own = {d.id: d.text for d in docs}
    queries = list(collection.queries)
    drop_self = sum(own.get(q.id) == q.text for q in queries) > len(queries) // 2
    if max_queries and len(queries) > max_queries:
        queries = queries[:: -(-len(queries) // max_queries)]
    result: dict[str, Any] = {"section": "tokenlearn", "collection": root.name,
                              "train_every": train_every,
                              "documents": len(docs), "queries": len(queries), **cost}  # fmt: skip
    bm25 = _per_query(base, collection, queries, "keyword", drop_self)
    result["bm25"] = round(float(np.mean(list(bm25.values()))), 4)
    for mode in ("dense", "hybrid"):
        a = _per_query(trained, collection, queries, mode, drop_self)
        b = _per_query(base, collection, queries, mode, drop_self)
        diff = paired(a, b)
        result[mode] = {
            "distilled": round(float(np.mean(list(b.values()))), 4),
            "tokenlearn": round(float(np.mean(list(a.values()))), 4),
            "diff": round(diff.mean, 4), "low": round(diff.low, 4), "high": round(diff.high, 4),
            "wins": diff.wins, "losses": diff.losses,
        }  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--max-queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument("--train-every", type=int, default=1, help="train on every k-th chunk")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    dirs = args.dirs or sorted(p for p in EVAL_DIR.iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory(prefix="tokenlearn-bench-") as tmp:
        for d in dirs:
            _emit(bench_collection(d, args.max_queries, Path(tmp), args.train_every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
