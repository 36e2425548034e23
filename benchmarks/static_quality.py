"""Static-model variants against BM25, query by query, through the library's own hybrid.

``python -m benchmarks.static_quality run DIR... --variant NAME=MODEL_DIR ...``
    For each BEIR collection: the chunks of ``semsearch eval``'s cached static index (same
    chunking for every variant: the static model chunks with its teacher's tokenizer), each
    variant's vectors of those chunks and of the queries (exact cosines, no vector index),
    and :func:`semsearch.search.retrieve._hybrid` itself on them (dense feedback included),
    keeping each candidate's dense and keyword parts. nDCG@10 per query for BM25 alone,
    static dense, and the hybrid at every dense weight of ``W`` under three normalisations
    (the library's, after feedback; the query as typed, no feedback; DBSF), documents
    scored by their best chunk, copies folded, a query's own document never ranked
    (ArguAna), as ``semsearch eval`` does. ``MODEL_DIR`` is a static model directory or
    ``installed`` (the user's); ``,A,W,D`` after it sets the feedback step's first-pass
    dense weight, move weight and documents. Output:
    ``benchmarks/_work/static_quality_<collection>.npz`` (no pickle; later runs add to it).
``python -m benchmarks.static_quality report [--variants a,b] [--weight 0.05]``
    Per variant: mean hybrid - BM25 over the collections at the given weight and at the
    weight chosen leaving one collection out (the best mean over the other collections,
    each weighing the same), with paired 95% bootstrap intervals per collection.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

WORK = Path(__file__).resolve().parent / "_work"
#: Dense weights tabulated per query.
W = np.round(np.arange(0.0, 0.3001, 0.025), 3)
DISCOUNT = 1.0 / np.log2(np.arange(2, 12))


def _ndcg10(
    rows: np.ndarray, doc_ids: np.ndarray, scores: np.ndarray, judged: dict[str, int],
    own: str | None, copy_key: np.ndarray,
) -> float:  # fmt: skip
    """nDCG@10, linear gains (pytrec_eval's), documents in the order of their best chunk
    (chunks best first, ties to the smaller row, as the library ranks them), a chunk that
    copies an earlier one of another document folded into it (``copy_key``: each row's
    :func:`semsearch.search.collapse.text_key`, as a number), as ``semsearch eval`` does."""
    ideal = np.sort(np.array([max(v, 0) for v in judged.values()], np.float64))[::-1][:10]
    idcg = float((ideal * DISCOUNT[: len(ideal)]).sum())
    if idcg <= 0:
        return 0.0
    pos = np.lexsort((rows, -np.asarray(scores, np.float64)))
    seen_key: dict[int, str] = {}
    top: list[str] = []
    for doc, key in zip(doc_ids[pos].tolist(), copy_key[rows[pos]].tolist(), strict=True):
        first = seen_key.setdefault(key, doc)
        if first != doc or doc == own or doc in top:
            continue
        top.append(doc)
        if len(top) == 10:
            break
    gains = np.array([max(judged.get(str(d), 0), 0) for d in top], np.float64)
    return float((gains * DISCOUNT[: len(top)]).sum() / idcg)


def _dbsf(x: np.ndarray) -> np.ndarray:
    """Distribution-based score fusion's part: mean +- 3 sd of the list mapped to [0, 1]."""
    v = np.nan_to_num(np.asarray(x, np.float64))
    lo, hi = v.mean() - 3 * v.std(), v.mean() + 3 * v.std()
    return np.clip((v - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def _exact_pool(q: np.ndarray, x: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each query's best ``size`` rows by cosine, best first, ties to the smaller row."""
    out = []
    for start in range(0, len(q), 64):
        sims = q[start : start + 64] @ x.T
        for s in sims:
            k = min(size, len(s))
            cand = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
            cand = cand[np.lexsort((cand, -s[cand]))]
            out.append((cand.astype(np.int64), s[cand].astype(np.float32)))
    return out


def run_collection(root: Path, variants: dict[str, str]) -> dict[str, Any]:
    from benchmarks.ranking_dump import open_cached
    from semsearch.embed import load_embedder
    from semsearch.embed.static import StaticEmbedder
    from semsearch.evaluation.run import CHUNK_DEPTH
    from semsearch.search.collapse import text_key
    from semsearch.search.fuse import (
        FEEDBACK_ALPHA,
        FEEDBACK_DOCS,
        FEEDBACK_WEIGHT,
        dense_part,
        readings,
    )
    from semsearch.search.keyword import keyword_hits
    from semsearch.search.request import MAX_K

    r = importlib.import_module("semsearch.search.retrieve")
    c = open_cached(root, "test", "static")
    view = c.index.live.view
    assert view is not None
    kw = view.store.keyword_index()
    texts = view.store.chunk_texts(0, view.store.count_chunks())
    copy_keys = np.unique([text_key(t) for t in texts], return_inverse=True)[1]
    queries = [q for q in c.col.queries if q.id in c.col.qrels]
    qtexts = [q.text for q in queries]
    # semsearch eval asks for CHUNK_DEPTH hits, collapsed: the library ranks twice as many.
    depth = max(min(2 * CHUNK_DEPTH, MAX_K), r.CANDIDATES)
    started = time.perf_counter()
    hits = [keyword_hits(kw, t, depth) for t in qtexts]
    keyword_s = time.perf_counter() - started
    names: dict[int, str] = {}

    def doc_names(rows: np.ndarray) -> np.ndarray:
        keys = kw.doc_of(rows)
        missing = set(keys.tolist()).difference(names)
        if missing:
            names.update(kw.doc_ids(sorted(missing)))
        return np.asarray([names[int(k)] for k in keys])

    own = [q.id if q.id in c.own else None for q in queries]
    judged = [c.col.qrels[q.id] for q in queries]
    out: dict[str, Any] = {"qid": np.asarray([q.id for q in queries])}
    bm25 = []
    for n, h in enumerate(hits):
        ranked = r._keyword_ranked(h, kw.doc_of(h.rows))
        bm25.append(
            _ndcg10(
                ranked.rows, doc_names(ranked.rows), ranked.scores, judged[n], own[n], copy_keys
            )
        )
    out["bm25"] = np.asarray(bm25)
    meta: dict[str, Any] = {"collection": root.name, "chunks": len(texts),
                            "queries": len(queries), "keyword_s": round(keyword_s, 1)}  # fmt: skip
    for name, spec in variants.items():
        where, _, fb = spec.partition(",")
        # "DIR,A,W,D": the feedback step's first-pass dense weight, move and documents
        r.FEEDBACK_ALPHA, r.FEEDBACK_WEIGHT, r.FEEDBACK_DOCS = (
            (float(fb.split(",")[0]), float(fb.split(",")[1]), int(fb.split(",")[2]))
            if fb
            else (FEEDBACK_ALPHA, FEEDBACK_WEIGHT, FEEDBACK_DOCS)
        )
        emb = load_embedder("static") if where == "installed" else StaticEmbedder(where)
        started = time.perf_counter()
        x = np.concatenate([emb.encode(texts[i : i + 1024]) for i in range(0, len(texts), 1024)])
        encode_s = time.perf_counter() - started
        qv = emb.encode(qtexts, kind="query")
        pool = _exact_pool(qv, x, r.FEEDBACK_POOL)
        ranked_all = r._hybrid(qv, pool, hits, readings(emb, qtexts), kw, x, depth)
        dense: list[float] = []
        grids: dict[str, list[list[float]]] = {"hybrid": [], "hybrid_nofb": [], "hybrid_dbsf": []}
        for n, rk in enumerate(ranked_all):
            drows, dcos = pool[n][0][:CHUNK_DEPTH], pool[n][1][:CHUNK_DEPTH]
            dense.append(_ndcg10(drows, doc_names(drows), dcos, judged[n], own[n], copy_keys))
            docs = doc_names(rk.rows)
            parts = {  # (dense part, keyword part) of each candidate under each normalisation
                "hybrid": (rk.dense_part, rk.keyword_part),  # the library's (after feedback)
                "hybrid_nofb": (dense_part(rk.cosine, r._floor(pool[n][1][:depth])),
                                rk.keyword_part),  # the query as typed, no feedback
                "hybrid_dbsf": (_dbsf(rk.cosine), _dbsf(rk.bm25)),  # mean +- 3 sd, as typed
            }  # fmt: skip
            for kind, (dp, kp) in parts.items():
                grids[kind].append([_ndcg10(rk.rows, docs, w * dp + (1 - w) * kp, judged[n],
                                            own[n], copy_keys) for w in W])  # fmt: skip
        out[f"dense@{name}"] = np.asarray(dense)
        for kind, grid in grids.items():
            out[f"{kind}@{name}"] = np.asarray(grid)
        print(json.dumps({**meta, "variant": name, "encode_s": round(encode_s, 1),
                          "dense": round(float(np.mean(dense)), 4),
                          "bm25": round(float(np.mean(bm25)), 4),
                          "hybrid@0.05": round(float(np.mean(grids["hybrid"], axis=0)[2]), 4),
                          "loadavg": round(os.getloadavg()[0], 1)}), flush=True)  # fmt: skip
    return out


def _merge_save(name: str, arrays: dict[str, Any]) -> None:
    """Add ``arrays`` to the collection's file (variants measured in earlier runs stay)."""
    WORK.mkdir(exist_ok=True)
    path = WORK / f"static_quality_{name}.npz"
    old: dict[str, Any] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            old = {k: z[k] for k in z.files}
        if old["qid"].tolist() != arrays["qid"].tolist():
            old = {}
    np.savez(path, **{**old, **arrays})


def _interval(p: Any) -> list[float]:
    return [round(p.low, 4), round(p.high, 4)]


def report(variants: list[str] | None, weight: float) -> list[dict[str, Any]]:
    from semsearch.evaluation.compare import paired

    files = sorted(WORK.glob("static_quality_*.npz"))
    data = {}
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            # grids of earlier runs may reach further weights: keep those of ``W``
            data[f.stem.removeprefix("static_quality_")] = {
                k: z[k][:, : len(W)] if z[k].ndim == 2 else z[k] for k in z.files
            }
    cols = sorted(data)
    found = sorted({k.split("@", 1)[1] for d in data.values() for k in d if "@" in k})
    out = []
    at = int(np.argmin(np.abs(W - weight)))
    for v in variants or found:
        for kind in ("hybrid", "hybrid_nofb", "hybrid_dbsf"):
            if not all(f"{kind}@{v}" in data[c] for c in cols):
                continue
            means = np.array([data[c][f"{kind}@{v}"].mean(0) for c in cols])  # cols x W
            rec: dict[str, Any] = {"variant": v, "kind": kind, "collections": len(cols),
                                   "weight": float(W[at])}  # fmt: skip
            rows = {}
            for i, c in enumerate(cols):
                others = np.delete(means, i, axis=0).mean(0)
                j = int(np.argmax(others))
                d = data[c]
                qids = d["qid"].tolist()
                bm = dict(zip(qids, d["bm25"].tolist(), strict=True))
                fixed = dict(zip(qids, d[f"{kind}@{v}"][:, at].tolist(), strict=True))
                loo = dict(zip(qids, d[f"{kind}@{v}"][:, j].tolist(), strict=True))
                pf, pl = paired(fixed, bm), paired(loo, bm)
                rows[c] = {"bm25": round(float(d["bm25"].mean()), 4),
                           "dense": round(float(d[f"dense@{v}"].mean()), 4),
                           "fixed": round(pf.mean, 4), "fixed_ci": _interval(pf),
                           "loo_w": float(W[j]), "loo": round(pl.mean, 4),
                           "loo_ci": _interval(pl)}  # fmt: skip
            rec["per_collection"] = rows
            rec["mean_fixed_minus_bm25"] = round(
                float(np.mean([r["fixed"] for r in rows.values()])), 4
            )
            rec["mean_loo_minus_bm25"] = round(float(np.mean([r["loo"] for r in rows.values()])), 4)
            rec["best_w_all"] = float(W[int(np.argmax(means.mean(0)))])
            rec["mean_best_w_all_minus_bm25"] = round(float(means.mean(0).max() - np.mean(
                [data[c]["bm25"].mean() for c in cols])), 4)  # fmt: skip
            out.append(rec)
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.static_bench import EVAL_DIR, _emit

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("dirs", nargs="*", type=Path)
    run.add_argument(
        "--variant", action="append", default=[],
        help="NAME=MODEL_DIR (or 'installed'), optionally ,A,W,D: feedback's first-pass dense "
        "weight, move weight and documents",
    )  # fmt: skip
    rep = sub.add_parser("report")
    rep.add_argument("--variants", default=None)
    rep.add_argument("--weight", type=float, default=0.05)
    args = parser.parse_args(argv)
    if args.cmd == "report":
        for rec in report(args.variants.split(",") if args.variants else None, args.weight):
            _emit(rec)
        return 0
    variants = dict(v.split("=", 1) for v in args.variant) or {"base": "installed"}
    for d in args.dirs or sorted(p for p in EVAL_DIR.iterdir() if p.is_dir()):
        _merge_save(d.name, run_collection(d, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
