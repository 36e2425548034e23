"""Dump each query's fusion inputs on a BEIR collection, for fusion experiments offline.

Uses the same cached index as ``semsearch eval`` (same chunks and vectors). For every
judged query it stores, per candidate chunk (union of the dense and keyword lists, both
``semsearch eval``'s depth, and the dense list after the default feedback step): document
id, cosine with the query, cosine with the feedback-moved query, keyword evidence; and per
query the background cosines (first pass and after feedback), BM25's full-match ceiling
and the query's term count. Output: ``benchmarks/_work/dump_<name>.npz`` (no pickle).

    python benchmarks/ranking_dump.py /work/shared/eval/scifact [--split test]
        [--also lucene rm3_10_10_0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch import config
from semsearch.api import SemanticIndex
from semsearch.embed import Embedder, load_embedder
from semsearch.evaluation.beir import BeirCollection, BeirDoc, load_beir
from semsearch.evaluation.run import CHUNK_DEPTH, _index_key, self_hit_queries
from semsearch.ingest.chunk import DEFAULT_CHUNK_TOKENS
from semsearch.search.feedback import Feedback
from semsearch.search.fuse import (
    FEEDBACK_ALPHA,
    FEEDBACK_DOCS,
    FEEDBACK_WEIGHT,
    blend,
    dense_part,
    feedback_query,
    keyword_part,
    order,
)
from semsearch.search.keyword import keyword_hits

R = importlib.import_module("semsearch.search.retrieve")
OUT = Path(__file__).resolve().parent / "_work"


@dataclass(frozen=True)
class Cached:
    """A BEIR collection and its cached ``semsearch eval`` index, opened for experiments."""

    col: BeirCollection
    docs: list[BeirDoc]
    index: SemanticIndex
    embedder: Embedder
    own: set[str]  # queries whose own document is dropped from their hits


def open_cached(dataset: Path, split: str = "test", model: str | None = None) -> Cached:
    """The collection's index as ``semsearch eval`` caches it (built if missing)."""
    col = load_beir(dataset, split)
    emb = load_embedder(model)
    index_dir = config.load().eval_cache / _index_key(col.corpus_path, emb, DEFAULT_CHUNK_TOKENS)
    idx = SemanticIndex(embedder=emb, chunk_tokens=DEFAULT_CHUNK_TOKENS, path=index_dir)
    docs = list(col.corpus())
    t0 = time.time()
    idx.upsert([d.full_text for d in docs], ids=[d.id for d in docs])
    print(f"{dataset.name}: index ready in {time.time() - t0:.0f}s", file=sys.stderr)
    return Cached(col, docs, idx, emb, self_hit_queries(list(col.queries), docs, "auto"))


def feedback_of(variant: str) -> Feedback | None:
    """The keyword-side feedback a variant named ``rm3_DOCS_TERMS_KEEP`` (or ``bo1_...``)
    stands for; None for any other name."""
    method, *rest = variant.split("_")
    if method not in ("rm3", "bo1") or len(rest) != 3:
        return None
    return Feedback(method, int(rest[0]), int(rest[1]), float(rest[2]))  # type: ignore[arg-type]


@contextlib.contextmanager
def patched_or_feedback(variant: str) -> Iterator[Feedback | None]:
    """A feedback variant's setting, or ``ranking_bm25``'s scoring variant patched in."""
    from benchmarks.ranking_bm25 import patched

    setting = feedback_of(variant)
    if setting is not None:
        yield setting
        return
    with patched(variant):
        yield None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default=None, help="embedding model (default: semsearch's)")
    ap.add_argument(
        "--also",
        nargs="*",
        default=[],
        help="keyword variants also dumped: ranking_bm25's, or feedback as rm3_DOCS_TERMS_KEEP",
    )
    ap.add_argument("--out", type=Path, default=OUT, help="where the dump is written")
    a = ap.parse_args()
    t0 = time.time()
    c = open_cached(a.dataset, a.split, a.model)
    col, docs, emb, own = c.col, c.docs, c.embedder, c.own
    v = c.index.live.view
    assert v is not None
    kw = v.store.keyword_index()
    queries = list(col.queries)
    qv = emb.encode([q.text for q in queries], kind="query")
    first = R._dense(v.index, qv, CHUNK_DEPTH, None)
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("doc", "cos", "cos2", "kw", "off")}
    per_q: dict[str, list[float]] = {k: [] for k in ("floor", "floor2", "full", "nterms")}
    also = {}  # variant -> each query's keyword hits under it
    for variant in a.also:
        with patched_or_feedback(variant) as setting:
            also[variant] = [
                keyword_hits(kw, q.text, CHUNK_DEPTH, feedback=setting) for q in queries
            ]
        rec[f"kw_{variant}"], per_q[f"full_{variant}"] = [], []
    moved = np.empty_like(qv)
    stage = []
    for n, q in enumerate(queries):
        h = keyword_hits(kw, q.text, CHUNK_DEPTH)
        rows = np.union1d(first[n][0], h.rows)
        dids = kw.doc_of(rows)
        cos = np.asarray(v.vectors[rows], np.float32) @ qv[n]
        s = blend(
            dense_part(cos, R._floor(first[n][1])),
            keyword_part(h.evidence(rows, dids), h.full_match),
            FEEDBACK_ALPHA,
        )
        best = rows[R._best_documents(order(rows, s), dids, FEEDBACK_DOCS)]
        moved[n] = feedback_query(qv[n], np.asarray(v.vectors[best], np.float32), FEEDBACK_WEIGHT)
        stage.append((h, rows))
    second = R._dense(v.index, moved, CHUNK_DEPTH, None)
    for n in range(len(queries)):
        h, rows0 = stage[n]
        rows = np.union1d(second[n][0], rows0)
        for hits in also.values():
            rows = np.union1d(rows, hits[n].rows)
        dids = kw.doc_of(rows)
        vecs = np.asarray(v.vectors[rows], np.float32)
        names = kw.doc_ids(np.unique(dids).tolist())
        rec["doc"].append(np.asarray([names[int(d)] for d in dids]))
        rec["cos"].append((vecs @ qv[n]).astype(np.float32))
        rec["cos2"].append((vecs @ moved[n]).astype(np.float32))
        rec["kw"].append(h.evidence(rows, dids).astype(np.float32))
        rec["off"].append(np.asarray([len(rows)]))
        for variant, hits in also.items():
            with patched_or_feedback(variant):
                rec[f"kw_{variant}"].append(hits[n].evidence(rows, dids).astype(np.float32))
            per_q[f"full_{variant}"].append(hits[n].full_match)
        per_q["floor"].append(R._floor(first[n][1]))
        per_q["floor2"].append(R._floor(second[n][1]))
        per_q["full"].append(h.full_match)
        per_q["nterms"].append(len(h.terms))
    name = a.dataset.name + ("" if a.split == "test" else f"-{a.split}")
    name += f"@{a.model}" if a.model else ""
    a.out.mkdir(exist_ok=True)
    np.savez(
        a.out / f"dump_{name}.npz",
        qid=np.asarray([q.id for q in queries]),
        own=np.asarray([q.id in own for q in queries]),
        ndocs=np.asarray([len(docs)]),
        **{k: np.concatenate(x) for k, x in rec.items()},
        **{k: np.asarray(x) for k, x in per_q.items()},
    )
    print(f"{name}: {len(queries)} queries dumped in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
