"""The code gate of :func:`semsearch.search.fuse.on_code`, chosen on CoSQA's dev qrels.

For every query of the dumps (``ranking_dump.py``), the share of its ten best dense
documents whose text looks like source code (:mod:`semsearch.search.codelike`) is its code
signal (``ranking_adaptive.code_share``). Where it is at least ``fuse.CODE_GATE``, the gated
rule scores the query with the normalisation ``bg0`` (the dense part without feedback) or
``bg`` (with) at a dense weight of its own; elsewhere the default rule stays. The setting
with the best mean on CoSQA ``dev`` is scored on ``test``; on the other collections the
gate's firing rate and the change it makes are printed (leave one collection out cannot
choose a code setting: no other collection holds code).

    python benchmarks/ranking_code.py [--keyword lucene]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import ranking_fusion
from benchmarks.ranking_adaptive import NORMS, Rule, W, prepare, score_rule
from benchmarks.ranking_fusion import NAMES
from semsearch.evaluation.compare import paired
from semsearch.search import fuse


def gated(data: dict[str, np.ndarray], norm: str, alpha: float) -> np.ndarray:
    """Per-query nDCG@10: the default rule, or ``norm`` at ``alpha`` where the gate fires."""
    base = score_rule(data, Rule("bg", fuse.RULE), code=False)
    j = int(np.argmin(np.abs(W - alpha)))
    return np.where(data["code"] >= fuse.CODE_GATE, data["grid"][NORMS.index(norm), :, j], base)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keyword", default="", help="a keyword variant dumped with --also")
    a = ap.parse_args()
    ranking_fusion.KEYWORD = a.keyword
    names = [n for n in NAMES if (ranking_fusion.WORK / f"dump_{n}.npz").exists()]
    names.append("cosqa-dev")
    data = {n: prepare(n, None, ("bg", "bg0")) for n in names}
    dev = data["cosqa-dev"]
    settings = [(norm, float(w)) for norm in ("bg", "bg0") for w in W]
    dev_means = [gated(dev, *s).mean() for s in settings]
    pick = settings[int(np.argmax(dev_means))]
    default = score_rule(dev, Rule("bg", fuse.RULE), code=False).mean()
    print(f"picked on cosqa dev: norm {pick[0]}, dense weight {pick[1]} "
          f"(dev {max(dev_means):.4f}, ungated {default:.4f})")  # fmt: skip
    print(f"{'collection':15} {'fires':>6} {'BM25':>6} {'dense':>6} {'RRF':>6} {'ungated':>7} "
          f"{'gated':>6}  gated - ungated        gated - best plain")  # fmt: skip
    for n in names:
        d = data[n]
        plain = d["plain"]
        base = score_rule(d, Rule("bg", fuse.RULE), code=False)
        new = gated(d, *pick)
        best = int(np.argmax(plain.mean(0)))
        g = paired(dict(enumerate(new)), dict(enumerate(base)))
        b = paired(dict(enumerate(new)), dict(enumerate(plain[:, best])))
        print(f"{n:15} {np.mean(d['code'] >= fuse.CODE_GATE):6.3f} {plain[:, 0].mean():6.3f} "
              f"{plain[:, 1].mean():6.3f} {plain[:, 2].mean():6.3f} {base.mean():7.3f} "
              f"{new.mean():6.3f}  {g.mean:+.3f} [{g.low:+.3f},{g.high:+.3f}]  "
              f"{b.mean:+.3f} [{b.low:+.3f},{b.high:+.3f}]")  # fmt: skip
    for name in ("cosqa-dev", "cosqa"):
        print(f"{name} by setting (norm, dense weight: nDCG@10):")
        for norm in ("bg", "bg0"):
            row = [f"{w:.2f}:{gated(data[name], norm, float(w)).mean():.3f}" for w in W[::4]]
            print(f"  {norm:4} " + " ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
