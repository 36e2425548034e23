"""`semsearch eval` on collections shaped like ArguAna (queries that are corpus documents)
and CoSQA (separate dev and test qrels), built tiny in each test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch.api import SemanticIndex
from semsearch.errors import UsageError
from semsearch.evaluation import run_eval

from .conftest import FakeEmbedder

ARGS = [
    ("a1", "Cats should be kept indoors to protect songbirds from hunting."),
    ("a2", "Keeping cats indoors denies them exercise; songbirds face worse threats."),
    ("a3", "Nuclear power is a safe low carbon source of electricity."),
    ("a4", "Nuclear accidents and waste make the power source unsafe for decades."),
    ("7", "Unrelated note about gardening tools and hedge trimming."),
]


def _write(root: Path, docs: list[tuple[str, str]], queries: list[tuple[str, str]],
           qrels: dict[str, list[tuple[str, str, int]]]) -> Path:  # fmt: skip
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for i, t in docs:
            f.write(json.dumps({"_id": i, "title": "", "text": t}) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as f:
        for i, t in queries:
            f.write(json.dumps({"_id": i, "text": t}) + "\n")
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{s}" for q, d, s in rows)]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def arguana_like(tmp_path: Path) -> Path:
    """Queries a1 and a3 are corpus arguments (same id, same text); query 7 only shares
    its id with a document by chance, and that document is judged relevant to it."""
    queries = [("a1", ARGS[0][1]), ("a3", ARGS[2][1]), ("7", "hedge trimming gardening")]
    qrels = {"test": [("a1", "a2", 1), ("a3", "a4", 1), ("7", "7", 1)]}
    return _write(tmp_path / "arg", ARGS, queries, qrels)


def _ndcg(report: object, mode: str) -> dict[str, float]:
    return next(r.per_query for r in report.results if r.mode == mode)  # type: ignore[attr-defined]


def test_self_hits_auto_drops_only_queries_that_are_their_own_document(
    arguana_like: Path, tmp_path: Path, fake: FakeEmbedder
) -> None:
    report = run_eval(arguana_like, modes=["keyword"], embedder=fake, cache=tmp_path / "c")
    assert report.self_hits_dropped == 2
    each = _ndcg(report, "keyword")
    # The counter-argument is now the best remaining hit: with the self-hit kept it is 2nd.
    assert each["a1"] == pytest.approx(1.0)
    assert each["a3"] == pytest.approx(1.0)
    # Query 7's relevant document shares its id by chance and must not be dropped.
    assert each["7"] == pytest.approx(1.0)

    kept = run_eval(
        arguana_like, modes=["keyword"], embedder=fake, cache=tmp_path / "c", self_hits="keep"
    )
    assert kept.self_hits_dropped == 0
    assert _ndcg(kept, "keyword")["a1"] < 0.7  # its own text ranks first

    dropped = run_eval(
        arguana_like, modes=["keyword"], embedder=fake, cache=tmp_path / "c", self_hits="drop"
    )
    assert dropped.self_hits_dropped == 3
    assert _ndcg(dropped, "keyword")["7"] == 0.0  # BEIR's blanket rule loses this one


def test_self_hits_bad_value(arguana_like: Path, tmp_path: Path, fake: FakeEmbedder) -> None:
    with pytest.raises(UsageError, match="self-hits"):
        run_eval(arguana_like, embedder=fake, cache=tmp_path / "c", self_hits="sometimes")  # type: ignore[arg-type]


def test_copies_are_judged_each_on_their_own(tmp_path: Path, fake: FakeEmbedder) -> None:
    """Three records with one text (CACM holds such groups), all relevant: the search folds
    copies into one hit, the evaluation must rank each (as BEIR does), or nDCG@10 drops."""
    same = "Algorithm 311: prime number generator for sieve methods."
    docs = [("d1", same), ("d2", same), ("d3", same), *ARGS]
    qrels = {"test": [("q", d, 1) for d in ("d1", "d2", "d3")]}
    root = _write(tmp_path / "dup", docs, [("q", "prime number sieve algorithm")], qrels)
    report = run_eval(root, modes=["keyword", "dense"], embedder=fake, cache=tmp_path / "c")
    assert _ndcg(report, "keyword") == {"q": pytest.approx(1.0)}
    assert _ndcg(report, "dense")["q"] == pytest.approx(1.0)
    # The search itself folds them: one hit naming the other two.
    hits = SemanticIndex(embedder=fake, path=Path(report.index_dir)).search(
        "prime number sieve algorithm", 10, mode="keyword"
    )
    assert sum(h.text == same for h in hits) == 1 and len(hits[0].also_in) == 2


@pytest.fixture
def cosqa_like(tmp_path: Path) -> Path:
    docs = [
        ("c0", "def read_json(path): load a json file from disk"),
        ("c1", "def sort_dict(d): sort a dictionary by value"),
        ("c2", "def flatten(xs): flatten a nested list"),
    ]
    queries = [("q-dev", "python sort dictionary by value"), ("q-test", "flatten nested list")]
    qrels = {"dev": [("q-dev", "c1", 1)], "test": [("q-test", "c0", 1)]}
    return _write(tmp_path / "cosqa", docs, queries, qrels)


def test_split_picks_the_qrels_file_and_its_queries(
    cosqa_like: Path, tmp_path: Path, fake: FakeEmbedder
) -> None:
    dev = run_eval(cosqa_like, modes=["keyword"], embedder=fake, cache=tmp_path / "c", split="dev")
    assert dev.split == "dev" and dev.queries == 1
    assert _ndcg(dev, "keyword") == {"q-dev": pytest.approx(1.0)}
    test = run_eval(cosqa_like, modes=["keyword"], embedder=fake, cache=tmp_path / "c")
    assert test.split == "test" and test.queries == 1
    assert _ndcg(test, "keyword") == {"q-test": 0.0}  # judged c0, the query finds c2


def test_cli_split_and_self_hits(cosqa_like: Path, arguana_like: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SEMSEARCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "semsearch", "eval"]
    bad = subprocess.run([*cmd, str(cosqa_like), "--split", "train"], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "train.tsv" in bad.stderr and "dev, test" in bad.stderr
    assert "Traceback" not in bad.stderr
    wrong = subprocess.run([*cmd, str(arguana_like), "--self-hits", "maybe"], capture_output=True,
                           text=True, env=env, timeout=300)  # fmt: skip
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
