"""Fusion experiments on the dumps of ``ranking_dump.py``, chosen by leave-one-collection-out.

For each candidate fusion setting, every collection's per-query nDCG@10 is computed from
the dumped chunk scores (a document scores as its best chunk, as in ``semsearch eval``).
Leave one out: the setting with the best mean over the other collections (each collection
weighing the same; CoSQA's dev qrels stand for it in training) is scored on the one left
out. Paired per-query differences carry a 95% bootstrap interval.

    python benchmarks/ranking_fusion.py [--out benchmarks/_work/fusion.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.evaluation.beir import read_qrels
from semsearch.evaluation.compare import paired
from semsearch.search import fuse

WORK = Path(__file__).resolve().parent / "_work"
EVAL = Path("/work/shared/eval")
NAMES = ["scifact", "med", "cacm", "npl", "arguana", "trec-dl19-pool", "cosqa", "xquad-de",
         "xquad-zh"]  # fmt: skip


@dataclass
class Query:
    qid: str
    own: bool
    docs: np.ndarray  # unique document ids of the candidates
    inv: np.ndarray  # chunk -> position in docs
    cos: np.ndarray
    cos2: np.ndarray
    kw: np.ndarray
    floor: float
    floor2: float
    full: float
    nterms: int
    rel: np.ndarray  # gain of each document (self-hit: 0 and never ranked)
    idcg: float
    perm: np.ndarray  # chunks grouped by document
    starts: np.ndarray


DISCOUNT = 1.0 / np.log2(np.arange(2, 12))


def load(name: str, qrels: dict[str, dict[str, int]]) -> list[Query]:
    z = np.load(WORK / f"dump_{name}.npz")
    out, start = [], 0
    for n, qid in enumerate(z["qid"].tolist()):
        end = start + int(z["off"][n])
        docs, inv = np.unique(z["doc"][start:end], return_inverse=True)
        judged = qrels.get(qid, {})
        rel = np.array([max(judged.get(str(d), 0), 0) for d in docs], dtype=np.float64)
        own = bool(z["own"][n])
        ideal = np.sort(np.array([max(v, 0) for v in judged.values()], np.float64))[::-1][:10]
        perm = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[perm]) != 0])
        out.append(Query(qid, own, docs, inv, z["cos"][start:end], z["cos2"][start:end],
                         z["kw"][start:end], float(z["floor"][n]), float(z["floor2"][n]),
                         float(z["full"][n]), int(z["nterms"][n]), rel,
                         float((ideal * DISCOUNT[: len(ideal)]).sum()), perm, starts))  # fmt: skip
        start = end
    return out


def doc_max(q: Query, chunk: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(np.asarray(chunk, np.float64)[q.perm], q.starts)


def ndcg10(q: Query, s: np.ndarray) -> float:
    """nDCG@10 with linear gains (pytrec_eval's), the query's own document never ranked."""
    if q.idcg <= 0:
        return 0.0
    s = s.copy()
    if q.own:
        s[q.docs == q.qid] = -np.inf
    top = np.argsort(-s, kind="stable")[:10]
    top = top[np.isfinite(s[top])]
    return float((q.rel[top] * DISCOUNT[: len(top)]).sum() / q.idcg)


def rrf_scores(*lists: np.ndarray, k: float = 60.0) -> np.ndarray:
    total = np.zeros(len(lists[0]))
    for s in lists:
        ranks = np.empty(len(s))
        ranks[np.argsort(-s, kind="stable")] = np.arange(1, len(s) + 1)
        total += np.where(np.isfinite(s) & (s > -np.inf), 1.0 / (k + ranks), 0.0)
    return total


Method = Callable[[Query], np.ndarray]


def parts(q: Query, feedback: bool) -> tuple[np.ndarray, np.ndarray]:
    """Document-level dense and keyword parts (each in [0, 1])."""
    d = fuse.dense_part(q.cos2, q.floor2) if feedback else fuse.dense_part(q.cos, q.floor)
    k = fuse.keyword_part(q.kw.astype(np.float64), q.full)
    return d, k


def m_keyword(q: Query) -> np.ndarray:
    s = doc_max(q, q.kw.astype(np.float64))
    return np.where(s > 0, s, -np.inf)


def m_dense(q: Query) -> np.ndarray:
    return doc_max(q, q.cos.astype(np.float64))


def m_rrf(q: Query) -> np.ndarray:
    return rrf_scores(m_dense(q), m_keyword(q))


def m_blend(alpha: float, feedback: bool) -> Method:
    def f(q: Query) -> np.ndarray:
        d, k = parts(q, feedback)
        return doc_max(q, alpha * d + (1 - alpha) * k)

    return f


def confidence(s: np.ndarray, top: int = 10) -> float:
    """How sharply a list's best document stands out: (top1 - mean of top-`top`) / top1."""
    v = np.sort(s[np.isfinite(s)])[::-1]
    if len(v) == 0 or v[0] <= 0:
        return 0.0
    return float((v[0] - v[:top].mean()) / v[0])


def m_adaptive(
    alpha: float, shrink: float, feedback: bool, top: int = 10, power: float = 1.0
) -> Method:
    """Dense weight moved from ``alpha`` towards each list's relative confidence."""

    def f(q: Query) -> np.ndarray:
        d, k = parts(q, feedback)
        cd = confidence(d, top) ** power  # over chunks: what fuse.blend sees at its call site
        ck = confidence(k, top) ** power
        w = alpha if cd + ck <= 0 else (1 - shrink) * alpha + shrink * cd / (cd + ck)
        return doc_max(q, w * d + (1 - w) * k)

    return f


def m_agree(alpha: float, tau: float, feedback: bool, top: int = 10) -> Method:
    """Blend where the lists agree (overlap of their top ``top`` documents >= tau),
    reciprocal-rank fusion where they do not."""

    def f(q: Query) -> np.ndarray:
        d, k = parts(q, feedback)
        a = set(np.argsort(-d, kind="stable")[:top].tolist())  # chunks, as in fuse.blend
        b = set(np.argsort(-k, kind="stable")[:top].tolist())
        if len(a & b) / top >= tau:
            return doc_max(q, alpha * d + (1 - alpha) * k)
        return doc_max(q, rrf_scores(d, np.where(k > 0, k, -np.inf)))

    return f


def m_wrrf(wd: float, k: float, feedback: bool) -> Method:
    """Weighted reciprocal-rank fusion over the document lists."""

    def f(q: Query) -> np.ndarray:
        d, kp = parts(q, feedback)
        dd, kk = doc_max(q, d), doc_max(q, kp)
        kk = np.where(kk > 0, kk, -np.inf)
        return wd * rrf_scores(dd, k=k) + (1 - wd) * rrf_scores(kk, k=k)

    return f


def score(qs: list[Query], m: Method) -> dict[str, float]:
    return {q.qid: ndcg10(q, m(q)) for q in qs}


def candidates() -> dict[str, Method]:
    c: dict[str, Method] = {}
    for fb in (True, False):
        t = "fb" if fb else "nofb"
        for a in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
            c[f"blend a={a} {t}"] = m_blend(a, fb)
        for a, s in itertools.product((0.25, 0.35, 0.45), (0.25, 0.5, 0.75, 1.0)):
            c[f"adaptive a={a} s={s} {t}"] = m_adaptive(a, s, fb)
        for a, sh, pw in itertools.product((0.35,), (0.25, 0.5, 0.75, 1.0), (2.0, 3.0)):
            c[f"adaptive a={a} s={sh} p={pw} {t}"] = m_adaptive(a, sh, fb, power=pw)
        for a, tau in itertools.product((0.3, 0.35, 0.4), (0.1, 0.2, 0.3)):
            c[f"agree a={a} tau={tau} {t}"] = m_agree(a, tau, fb)
        for wd, k in itertools.product((0.3, 0.4, 0.5), (20.0, 60.0)):
            c[f"wrrf wd={wd} k={k} {t}"] = m_wrrf(wd, k, fb)
    return c


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=WORK / "fusion.json")
    ap.add_argument("--names", nargs="*", default=NAMES)
    a = ap.parse_args()
    names = [n for n in a.names if (WORK / f"dump_{n}.npz").exists()]
    data, qrels = {}, {}
    for n in names:
        qrels[n] = read_qrels(EVAL / n / "qrels" / "test.tsv")
        data[n] = load(n, qrels[n])
    train = {n: n for n in names}
    if "cosqa" in names and (WORK / "dump_cosqa-dev.npz").exists():
        qrels["cosqa-dev"] = read_qrels(EVAL / "cosqa" / "qrels" / "dev.tsv")
        data["cosqa-dev"] = load("cosqa-dev", qrels["cosqa-dev"])
        train["cosqa"] = "cosqa-dev"
    base = {"keyword": m_keyword, "dense": m_dense, "rrf": m_rrf}
    cands = candidates()
    res: dict[str, dict[str, dict[str, float]]] = {}
    for n in data:
        cached = WORK / f"fusion_{n}.json"  # per-collection scores, reused while the grid holds
        methods = {**base, **cands}
        res[n] = json.loads(cached.read_text()) if cached.exists() else {}
        res[n] = {m: res[n].get(m) or score(data[n], f) for m, f in methods.items()}
        cached.write_text(json.dumps(res[n]))
    mean = {n: {m: float(np.mean(list(v.values()))) for m, v in r.items()} for n, r in res.items()}
    report = {"collections": names, "mean": mean, "loo": {}}
    for held in names:
        others = [train[o] for o in names if o != held]
        pick = max(cands, key=lambda m: np.mean([mean[o][m] for o in others]))
        best_plain = max(("keyword", "dense", "rrf"), key=lambda m: mean[held][m])
        d = paired(res[held][pick], res[held][best_plain])
        cur = paired(res[held][pick], res[held]["blend a=0.35 fb"])
        report["loo"][held] = {
            "pick": pick,
            "ndcg": mean[held][pick],
            "best_plain": best_plain,
            "best_plain_ndcg": mean[held][best_plain],
            "vs_best_plain": [d.mean, d.low, d.high, d.wins, d.losses],
            "vs_current": [cur.mean, cur.low, cur.high, cur.wins, cur.losses],
        }
        print(f"{held:15} kw {mean[held]['keyword']:.3f} dense {mean[held]['dense']:.3f} "
              f"rrf {mean[held]['rrf']:.3f} current {mean[held]['blend a=0.35 fb']:.3f} | "
              f"LOO {mean[held][pick]:.3f} ({pick}) vs best plain {d.mean:+.3f} "
              f"[{d.low:+.3f},{d.high:+.3f}] vs current {cur.mean:+.3f} "
              f"[{cur.low:+.3f},{cur.high:+.3f}]")  # fmt: skip
    overall = max(cands, key=lambda m: np.mean([mean[train[o]][m] for o in names]))
    report["all"] = overall
    print("best on all:", overall, {n: round(mean[n][overall], 3) for n in names})
    a.out.write_text(json.dumps({**report, "per_query": res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
