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
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.evaluation.beir import read_qrels
from semsearch.evaluation.compare import paired
from semsearch.search import fuse

WORK = Path(__file__).resolve().parent / "_work"
#: The dumps' keyword evidence read: "" for the default's, else a variant dumped beside it
#: (``ranking_dump.py --also VARIANT``: ``kw_VARIANT``, ``full_VARIANT``).
KEYWORD = ""
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


#: Candidates kept per query: the best this many chunks by each of cosine, feedback cosine
#: and keyword evidence (ArguAna's whole-argument queries match most of the corpus by
#: keyword; a document outside all three lists cannot reach the top ten of a blend).
KEEP = 400


def _trim(z: dict[str, np.ndarray], start: int, end: int) -> np.ndarray:
    if end - start <= KEEP:
        return np.arange(start, end)
    keep = np.zeros(end - start, bool)
    for col in ("cos", "cos2", f"kw_{KEYWORD}" if KEYWORD else "kw"):
        keep[np.argsort(-z[col][start:end], kind="stable")[:KEEP]] = True
    return start + np.flatnonzero(keep)


def load(name: str, qrels: dict[str, dict[str, int]]) -> list[Query]:
    z = np.load(WORK / f"dump_{name}.npz")
    z = {k: z[k] for k in z.files}  # read each array once
    if KEYWORD:
        z["kw"], z["full"] = z[f"kw_{KEYWORD}"], z[f"full_{KEYWORD}"]
    out, start = [], 0
    for n, qid in enumerate(z["qid"].tolist()):
        end = start + int(z["off"][n])
        at = _trim(z, start, end)
        docs, inv = np.unique(z["doc"][at], return_inverse=True)
        judged = qrels.get(qid, {})
        rel = np.array([max(judged.get(str(d), 0), 0) for d in docs], dtype=np.float64)
        own = bool(z["own"][n])
        ideal = np.sort(np.array([max(v, 0) for v in judged.values()], np.float64))[::-1][:10]
        perm = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[perm]) != 0])
        out.append(Query(qid, own, docs, inv, z["cos"][at], z["cos2"][at],
                         z["kw"][at], float(z["floor"][n]), float(z["floor2"][n]),
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


def m_fallback(alpha: float, shrink: float, tau: float, top: int = 10) -> Method:
    """The adaptive blend where the lists agree (their top ``top`` documents overlap by at
    least ``tau``); where they do not, the more confident list alone."""
    adaptive = m_adaptive(alpha, shrink, True)

    def f(q: Query) -> np.ndarray:
        d, k = parts(q, True)
        dd, kk = doc_max(q, d), doc_max(q, k)
        a = set(np.argsort(-dd, kind="stable")[:top].tolist())
        b = set(np.argsort(-kk, kind="stable")[:top].tolist())
        if len(a & b) / top >= tau:
            return adaptive(q)
        return dd if confidence(d) > confidence(k) else np.where(kk > 0, kk, -np.inf)

    return f


def m_strength(alpha: float, shrink: float) -> Method:
    """Dense weight moved from ``alpha`` towards the dense list's share of the two lists'
    best parts (how fully each list's best candidate matches, not how it stands out)."""

    def f(q: Query) -> np.ndarray:
        d, k = parts(q, True)
        sd, sk = float(d.max(initial=0.0)), float(k.max(initial=0.0))
        w = alpha if sd + sk <= 0 else (1 - shrink) * alpha + shrink * sd / (sd + sk)
        return doc_max(q, w * d + (1 - w) * k)

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
    """The settings scored (round 2: the previous defaults, the sharpened confidence share,
    and two rules for collections where one side is far weaker; the first round's full
    family of about 90 is in docs/ranking.md)."""
    c: dict[str, Method] = {
        "blend a=0.35 fb": m_blend(0.35, True),
        "blend a=0.5 fb": m_blend(0.5, True),
        "adaptive a=0.35 s=0.25 fb": m_adaptive(0.35, 0.25, True),
        "adaptive a=0.35 s=0.5 fb": m_adaptive(0.35, 0.5, True),
        "adaptive a=0.35 s=1.0 p=2.0 fb": m_adaptive(0.35, 1.0, True, power=2.0),
        "wrrf wd=0.5 k=60.0 fb": m_wrrf(0.5, 60.0, True),
    }
    for tau in (0.1, 0.2):
        c[f"agree a=0.35 tau={tau} fb"] = m_agree(0.35, tau, True)
    for tau in (0.1, 0.2, 0.3):
        c[f"fallback a=0.35 s=0.25 tau={tau}"] = m_fallback(0.35, 0.25, tau)
    for sh in (0.5, 1.0):
        c[f"strength a=0.35 s={sh}"] = m_strength(0.35, sh)
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
