"""Query-adaptive dense weight, fitted leave-one-collection-out on the dumps of ``ranking_dump.py``.

For every query, nDCG@10 is computed once for each dense weight on a grid (``W``; a document
scores as its best chunk's ``w * dense part + (1 - w) * keyword part``, the parts of
:mod:`semsearch.search.fuse` after dense feedback), together with the query's features (what
:func:`semsearch.search.fuse.query_signals` sees at query time). A rule maps features to a
weight; evaluating it is then a table look-up, so thousands of rules are scored in seconds.
Leave one out: the rule with the best mean nDCG@10 over the other collections (each weighing
the same; CoSQA's dev qrels stand for it in training) is scored on the one left out, and its
paired per-query difference from the best of BM25, dense and RRF carries a 95% bootstrap
interval.

    python benchmarks/ranking_adaptive.py [--model static] [--out benchmarks/_work/adaptive.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from benchmarks import ranking_fusion
from benchmarks.ranking_fusion import EVAL, NAMES, Query, doc_max, load, ndcg10, rrf_scores
from semsearch.evaluation.beir import read_qrels
from semsearch.evaluation.compare import paired
from semsearch.search import fuse

#: Dense weights tabulated per query (a rule's weight is rounded to the nearest).
W = np.round(np.arange(0.0, 1.0001, 0.025), 3)


#: Score normalisations compared: the background-relative parts of :mod:`semsearch.search.fuse`
#: with the dense part after feedback ("bg"), without it ("bg0"), the larger ("bgmax") or the
#: mean ("bgmean") of the two; distribution-based (mean +- 3 sd of each list, Qdrant's DBSF)
#: and min-max per list, each after feedback; per-query z-scores of each list ("z"), and
#: CombMNZ: the min-max blend times the number of lists that retrieved the chunk ("mnz");
#: "bgk": "bg" with the keyword part also measured from its list's background (the evidence
#: of its ``fuse``-depth-th best chunk), as the dense part is.
NORMS = ("bg", "bg0", "bgmax", "bgmean", "dbsf", "minmax", "z", "mnz", "bgk")
#: The depth whose weakest score is a list's background (``search.retrieve.CANDIDATES``).
BACKGROUND_DEPTH = 200
#: Candidates of each list whose scores set its DBSF and min-max range (semsearch eval's depth).
LIST_DEPTH = 300


def _spread(x: np.ndarray, ref: np.ndarray, norm: str) -> np.ndarray:
    if len(ref) == 0:
        return np.zeros_like(x)
    if norm == "z":
        return (x - ref.mean()) / max(float(ref.std()), 1e-9)
    if norm == "dbsf":
        lo, hi = ref.mean() - 3 * ref.std(), ref.mean() + 3 * ref.std()
    else:
        lo, hi = ref.min(), ref.max()
    return np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def parts_of(q: Query, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The dense (after feedback) and keyword parts of each candidate chunk under ``norm``."""
    if norm == "bgk":
        kw = q.kw.astype(np.float64)
        listed = np.sort(kw[kw > 0])[::-1][:BACKGROUND_DEPTH]
        floor = float(listed[-1]) if len(listed) == BACKGROUND_DEPTH else 0.0
        top = fuse.K1_PLUS_1 * q.full
        k = np.clip((kw - floor) / max(top - floor, 1e-9), 0.0, 1.0) if top > 0 else 0 * kw
        return fuse.dense_part(q.cos2, q.floor2), k
    if norm.startswith("bg"):
        k = fuse.keyword_part(q.kw.astype(np.float64), q.full)
        after, before = fuse.dense_part(q.cos2, q.floor2), fuse.dense_part(q.cos, q.floor)
        both = {"bg": after, "bg0": before, "bgmax": np.maximum(after, before)}
        return both.get(norm, (after + before) / 2), k
    cos = q.cos2.astype(np.float64)
    kw = q.kw.astype(np.float64)
    dense_list = np.sort(cos)[::-1][:LIST_DEPTH]
    kw_list = np.sort(kw[kw > 0])[::-1][:LIST_DEPTH]
    spread = "minmax" if norm == "mnz" else norm
    d, k = _spread(cos, dense_list, spread), _spread(kw, kw_list, spread)
    none = float(k.min(initial=0.0)) if norm == "z" else 0.0  # no keyword match: the lowest
    return d, np.where(kw > 0, k, none)


def retrieved_by(q: Query, norm: str) -> np.ndarray | float:
    """CombMNZ's factor ("mnz"): how many of the two lists (each its best ``LIST_DEPTH``)
    hold each candidate chunk; 1 for the other normalisations."""
    if norm != "mnz":
        return 1.0
    cos = q.cos2.astype(np.float64)
    cut = np.sort(cos)[::-1][:LIST_DEPTH][-1] if len(cos) else 0.0
    return (cos >= cut).astype(np.float64) + (q.kw > 0)


def table(qs: list[Query], norms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per query: nDCG@10 for each normalisation of ``norms`` at each weight of ``W`` (NaN
    for the others), and of keyword, dense and RRF alone."""
    grid = np.full((len(NORMS), len(qs), len(W)), np.nan)
    plain = np.zeros((len(qs), 3))
    for i, q in enumerate(qs):
        for m, norm in enumerate(NORMS):
            if norm not in norms:
                continue
            d, k = parts_of(q, norm)
            times = retrieved_by(q, norm)
            for j, w in enumerate(W):
                grid[m, i, j] = ndcg10(q, doc_max(q, (w * d + (1 - w) * k) * times))
        kw = doc_max(q, q.kw.astype(np.float64))
        kw = np.where(kw > 0, kw, -np.inf)
        dn = doc_max(q, q.cos.astype(np.float64))
        plain[i] = [ndcg10(q, kw), ndcg10(q, dn), ndcg10(q, rrf_scores(dn, kw))]
    return grid, plain


def query_texts(name: str) -> dict[str, str]:
    base = EVAL / name.split("-dev")[0]
    with open(base / "queries.jsonl", encoding="utf-8") as f:
        return {str(r["_id"]): r["text"] for r in map(json.loads, f)}


def code_share(name: str, qs: list[Query]) -> np.ndarray:
    """Per query: the share of its ten best dense documents that look like code
    (:func:`semsearch.search.codelike.looks_like_code`), what :func:`fuse.on_code` gates on."""
    from semsearch.search.codelike import looks_like_code

    with open(EVAL / name.split("-dev")[0] / "corpus.jsonl", encoding="utf-8") as f:
        code = {str(r["_id"]): looks_like_code(r.get("text", "")) for r in map(json.loads, f)}
    out = np.zeros(len(qs))
    for i, q in enumerate(qs):
        top = np.argsort(-doc_max(q, q.cos.astype(np.float64)), kind="stable")[:10]
        out[i] = np.mean([code[str(d)] for d in q.docs[top]]) if len(top) else 0.0
    return out


def prepare(name: str, model: str | None, norms: Sequence[str]) -> dict[str, np.ndarray]:
    """The collection's per-query table and features, cached beside its dump."""
    suffix = f"@{model}" if model else ""
    variant = f"~{ranking_fusion.KEYWORD}" if ranking_fusion.KEYWORD else ""
    cached = ranking_fusion.WORK / f"adaptive_{name}{suffix}{variant}.npz"
    norms = sorted({*norms, "bg0"})  # the code gate's normalisation (score_rule)
    split = "dev" if name.endswith("-dev") else "test"
    qrels = read_qrels(EVAL / name.split("-dev")[0] / "qrels" / f"{split}.tsv")
    if cached.exists():
        z = np.load(cached)
        out = {k: z[k] for k in z.files}
        grid = out["grid"]
        if len(grid) < len(NORMS):  # a table from before NORMS grew: the new rows to fill
            grid = np.concatenate(
                [grid, np.full((len(NORMS) - len(grid), *grid.shape[1:]), np.nan)]
            )
            out["grid"] = grid
        missing = [n for n in norms if np.isnan(grid[NORMS.index(n)]).any()]
        if missing:
            qs = load(name + suffix, qrels)
            more, _ = table(qs, missing)
            for n in missing:
                grid[NORMS.index(n)] = more[NORMS.index(n)]
            np.savez(cached, **out)
        return out
    qs = load(name + suffix, qrels)
    texts = query_texts(name)
    from semsearch.embed import load_embedder

    emb = load_embedder(model)
    reads = fuse.readings(emb, [texts[q.qid] for q in qs])
    feats = [
        tuple(fuse.query_signals(*parts_of(q, "bg"), r)) for q, r in zip(qs, reads, strict=True)
    ]
    grid, plain = table(qs, norms)
    out = {"qid": np.array([q.qid for q in qs]), "grid": grid, "plain": plain,
           "feats": np.array(feats, np.float64), "code": code_share(name, qs)}  # fmt: skip
    np.savez(cached, **out)
    return out


class Rule(NamedTuple):
    norm: str  # one of NORMS
    weight: fuse.WeightRule


def score_rule(data: dict[str, np.ndarray], rule: Rule, code: bool = True) -> np.ndarray:
    """Per-query nDCG@10 under ``rule`` (its weight looked up at the nearest tabulated);
    with ``code``, a query whose candidates look like code is scored as :func:`fuse.on_code`
    fuses it (:data:`fuse.CODE_RULE`'s weight, the dense part without feedback)."""
    w = rule.weight.weight(fuse.QuerySignals(*data["feats"].T))
    j = np.clip(np.round(w / (W[1] - W[0])).astype(int), 0, len(W) - 1)
    out = data["grid"][NORMS.index(rule.norm), np.arange(len(w)), j]
    if code and "code" in data:
        at = int(np.argmin(np.abs(W - fuse.CODE_RULE.alpha)))
        gated = data["code"] >= fuse.CODE_GATE
        out = np.where(gated, data["grid"][NORMS.index("bg0"), :, at], out)
    return out


def grid_rules() -> list[Rule]:
    """The rules searched (:class:`semsearch.search.fuse.WeightRule`)."""
    return [
        Rule(norm, fuse.WeightRule(alpha, conf, strength, fit, vocab))
        for norm, alpha, conf, strength, fit, vocab in itertools.product(
            NORMS, np.round(np.arange(0.05, 0.801, 0.05), 2).tolist(), (0.0, 0.25), (0.0, 0.5),
            (0.0, 0.5, 1.0), (0.0, 0.5, 1.0),
        )
    ]  # fmt: skip


def show(variant: str, r: Rule) -> str:
    w = r.weight
    kw = f"[{variant}] " if variant else ""
    return f"{kw}{r.norm} a={w.alpha} conf={w.conf} str={w.strength} fit={w.fit} vocab={w.vocab}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--names", nargs="*", default=NAMES)
    ap.add_argument("--norms", nargs="*", default=NORMS, choices=NORMS)
    ap.add_argument("--work", type=Path, default=ranking_fusion.WORK, help="where the dumps are")
    ap.add_argument(
        "--keyword",
        nargs="*",
        default=[""],
        help="keyword variants dumped with --also (each is a choice beside the rules; '' is "
        "the default keyword side, which the default and before columns always use)",
    )
    a = ap.parse_args()
    ranking_fusion.WORK = WORK = a.work
    t0 = time.time()
    suffix = f"@{a.model}" if a.model else ""
    names = [n for n in a.names if (WORK / f"dump_{n}{suffix}.npz").exists()]
    every = names + (
        ["cosqa-dev"]
        if "cosqa" in names and (WORK / f"dump_cosqa-dev{suffix}.npz").exists()
        else []
    )
    train = {n: n for n in names} | ({"cosqa": "cosqa-dev"} if "cosqa-dev" in every else {})
    variants = list(dict.fromkeys(["", *a.keyword]))
    tables: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for v in variants:
        ranking_fusion.KEYWORD = v
        tables[v] = {n: prepare(n, a.model, a.norms) for n in every}
    ranking_fusion.KEYWORD = ""
    data = tables[""]
    print(f"tables ready in {time.time() - t0:.0f}s", file=sys.stderr)
    rules = [r for r in grid_rules() if r.norm in a.norms]
    default = Rule("bg", fuse.MODEL_RULES.get(a.model or "", fuse.RULE))
    before = Rule("bg", fuse.WeightRule(0.35, conf=0.25))
    choices = [(v, r) for v in (a.keyword or [""]) for r in rules]
    means = {}
    per_q: dict[str, list[np.ndarray]] = {}
    for n in every:
        per_q[n] = [score_rule(tables[v][n], p) for v, p in choices]
        means[n] = np.array([s.mean() for s in per_q[n]])
    report: dict[str, object] = {"model": a.model, "loo": {}}
    rows = []
    for held in names:
        others = [train[o] for o in names if o != held]
        pick = int(np.argmax(np.mean([means[o] for o in others], axis=0)))
        dd = data[held]
        plain = dd["plain"]
        best = int(np.argmax(plain.mean(0)))
        after = per_q[held][pick]
        now = score_rule(dd, default)
        prev = score_rule(dd, before)
        diff = paired(dict(enumerate(after)), dict(enumerate(plain[:, best])))
        gain = paired(dict(enumerate(now)), dict(enumerate(prev)))
        rows.append(
            (held, plain.mean(0), prev.mean(), after.mean(), now.mean(), diff, choices[pick])
        )
        dflt = paired(dict(enumerate(now)), dict(enumerate(plain[:, best])))
        moved = paired(dict(enumerate(after)), dict(enumerate(now)))
        report["loo"][held] = {  # type: ignore[index]
            "pick": show(*choices[pick]), "keyword": plain[:, 0].mean(),
            "dense": plain[:, 1].mean(),
            "rrf": plain[:, 2].mean(), "before": prev.mean(), "loo": after.mean(),
            "default": now.mean(), "vs_best_plain": [diff.mean, diff.low, diff.high],
            "default_vs_best_plain": [dflt.mean, dflt.low, dflt.high],
            "default_vs_before": [gain.mean, gain.low, gain.high],
            "loo_vs_default": [moved.mean, moved.low, moved.high],
        }  # fmt: skip
    allp = int(np.argmax(np.mean([means[train[n]] for n in names], axis=0)))
    print(f"{'collection':15} {'BM25':>6} {'dense':>6} {'RRF':>6} {'before':>6} {'LOO':>6} "
          f"{'dflt':>6}  LOO - best plain [95%]   pick")  # fmt: skip
    for held, pl, prev, after, now, d, p in rows:
        print(f"{held:15} {pl[0]:6.3f} {pl[1]:6.3f} {pl[2]:6.3f} {prev:6.3f} {after:6.3f} "
              f"{now:6.3f}  {d.mean:+.3f} [{d.low:+.3f},{d.high:+.3f}]  {show(*p)}")  # fmt: skip
    print("best on all:", show(*choices[allp]))
    print("default - best plain, default - before, LOO - default (95% intervals):")
    for held, v in report["loo"].items():  # type: ignore[attr-defined]
        trio = v["default_vs_best_plain"], v["default_vs_before"], v["loo_vs_default"]
        print(f"{held:15} " + "  ".join(f"{x[0]:+.3f} [{x[1]:+.3f},{x[2]:+.3f}]" for x in trio))
    report["all"] = show(*choices[allp])
    if a.out:
        a.out.write_text(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
