"""Hand-computed checks of the IR metrics, and the BEIR loader on a tiny fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from semsearch.errors import UsageError
from semsearch.evaluation.beir import BeirDoc, BeirQuery, load_beir, read_corpus, read_qrels
from semsearch.evaluation.metrics import (
    Evaluation,
    MetricsAtK,
    Ranking,
    evaluate,
    mean,
    mrr_at_k,
    ndcg_at_k,
    per_query,
    ranked_ids,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # 1.5849625...

# ---------------------------------------------------------------- nDCG


def test_ndcg_graded_relevance() -> None:
    rels = {"d1": 3, "d2": 2, "d3": 1, "d4": 0}
    run = ["d3", "d1", "d5", "d2"]
    # DCG@3  = 1/log2(2) + 3/log2(3) + 0      = 1 + 1.8927893            = 2.8927893
    # IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5   = 4.7618595
    # nDCG@3 = 2.8927893 / 4.7618595 = 0.6074915
    assert ndcg_at_k(rels, run, 3) == pytest.approx(0.6074915, abs=1e-7)
    # DCG@10 adds d2 (rel 2) at rank 4: 2/log2(5) = 0.8613531 -> 3.7541424
    # IDCG@10 is still 4.7618595 (only three relevant docs) -> 0.7883774
    assert ndcg_at_k(rels, run, 10) == pytest.approx(0.7883774, abs=1e-7)


def test_ndcg_perfect_and_cut() -> None:
    rels = {"a": 2, "b": 1}
    assert ndcg_at_k(rels, ["a", "b", "x"], 10) == pytest.approx(1.0)
    # Swapped: DCG = 1 + 2/log2(3) = 2.2618595; IDCG = 2 + 1/log2(3) = 2.6309298 -> 0.8597186
    assert ndcg_at_k(rels, ["b", "a"], 10) == pytest.approx(0.8597186, abs=1e-7)
    # @1 sees only "b": DCG = 1, IDCG@1 = 2 -> 0.5
    assert ndcg_at_k(rels, ["b", "a"], 1) == pytest.approx(0.5)


def test_non_positive_relevance_is_not_relevant() -> None:
    rels = {"neg": -1, "zero": 0, "good": 1}
    # Only "good" is relevant; it sits at rank 3: DCG = 1/log2(4) = 0.5, IDCG = 1.
    assert ndcg_at_k(rels, ["neg", "zero", "good"], 10) == pytest.approx(0.5)
    assert recall_at_k(rels, ["neg", "zero"], 10) == 0.0
    assert mrr_at_k(rels, ["neg", "zero", "good"], 10) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- ties and order


def test_ties_are_broken_by_doc_id_descending_like_trec_eval() -> None:
    rels = {"a": 1}
    pairs = [("a", 1.0), ("b", 1.0), ("c", 0.5)]
    # Equal scores: "b" > "a", so the order is b, a, c whatever the input order.
    assert ranked_ids(pairs) == ["b", "a", "c"]
    assert ranked_ids(list(reversed(pairs))) == ["b", "a", "c"]
    # "a" at rank 2: nDCG = 1/log2(3) = 0.6309298, MRR = 1/2.
    assert ndcg_at_k(rels, pairs, 10) == pytest.approx(1 / LOG2_3)
    assert mrr_at_k(rels, pairs, 10) == pytest.approx(0.5)


def test_ties_with_graded_relevance_match_pytrec_eval() -> None:
    qrels = {"q": {"a": 1, "b": 2, "c": 0, "d": 3}}
    run = {"q": [("a", 1.0), ("b", 1.0), ("x", 1.0), ("d", 0.5), ("c", 2.0)]}
    # Order: c (2.0), then the 1.0 tie by id descending: x, b, a; then d (0.5).
    # DCG@3  = 0 + 0 + 2/log2(4) = 1;  IDCG@3 = 3 + 2/log2(3) + 1/2 = 4.7618595 -> 0.2100020
    # DCG@10 = 1 + 1/log2(5) + 3/log2(6) = 1 + 0.4306766 + 1.1605584 = 2.5912350
    # IDCG@10 = IDCG@3 (three relevant docs) -> 0.5441645
    # pytrec_eval 0.5.x gives ndcg_cut_3 0.21000199575, ndcg_cut_10 0.54416451722 on this input.
    ev = evaluate(qrels, run, ks=(3, 10))
    assert ev.at(3).ndcg == pytest.approx(0.21000199575, abs=1e-10)
    assert ev.at(10).ndcg == pytest.approx(0.54416451722, abs=1e-10)
    assert ev.at(3).recall == pytest.approx(1 / 3)  # b of {a, b, d}
    assert ev.at(10).mrr == pytest.approx(1 / 3)  # c has rel 0, x unjudged, b at rank 3


def test_scored_pairs_are_sorted_but_bare_ids_keep_their_order() -> None:
    assert ranked_ids([("low", 0.1), ("high", 0.9)]) == ["high", "low"]
    assert ranked_ids(["low", "high"]) == ["low", "high"]


def test_duplicates_count_once_at_best_rank() -> None:
    # "a" twice then "b": b is at rank 2, not 3 -> MRR 1/2.
    assert ranked_ids(["a", "a", "b"]) == ["a", "b"]
    assert mrr_at_k({"b": 1}, ["a", "a", "b"], 10) == pytest.approx(0.5)
    # With scores, the best-scored copy wins: a(0.9), b(0.5), a(0.1) -> a, b.
    assert ranked_ids([("a", 0.9), ("b", 0.5), ("a", 0.1)]) == ["a", "b"]


# ---------------------------------------------------------------- recall and MRR


def test_recall() -> None:
    rels = {"a": 1, "b": 1, "c": 1, "d": 1}
    run = ["a", "x", "c"]
    assert recall_at_k(rels, run, 1) == pytest.approx(1 / 4)  # a
    assert recall_at_k(rels, run, 2) == pytest.approx(1 / 4)  # a, (x)
    assert recall_at_k(rels, run, 3) == pytest.approx(2 / 4)  # a, c
    assert recall_at_k(rels, run, 100) == pytest.approx(2 / 4)  # short run, no more hits


def test_mrr() -> None:
    rels = {"r": 1, "s": 2}
    run = ["x", "y", "r", "s"]
    assert mrr_at_k(rels, run, 2) == 0.0  # first relevant is at rank 3 > k
    assert mrr_at_k(rels, run, 3) == pytest.approx(1 / 3)
    assert mrr_at_k(rels, run, 10) == pytest.approx(1 / 3)  # only the first hit counts


# ---------------------------------------------------------------- evaluate over queries


def test_evaluate_means_over_judged_queries() -> None:
    qrels = {
        "q1": {"a": 1},  # run puts "a" first: nDCG 1, R 1, MRR 1
        "q2": {"b": 1},  # "b" at rank 2: nDCG 1/log2(3) = 0.6309298, R@10 1, MRR 0.5
        "q3": {"c": 0},  # no relevant doc: skipped, like BEIR
    }
    run: dict[str, Ranking] = {
        "q1": ["a", "z"],
        "q2": [("z", 2.0), ("b", 1.0)],
        "q3": ["c"],
        "extra": ["a"],
    }
    ev = evaluate(qrels, run, ks=[10, 1])
    assert ev.num_queries == 2
    assert [m.k for m in ev.cutoffs] == [1, 10]  # sorted
    at10 = ev.at(10)
    assert at10.ndcg == pytest.approx((1 + 1 / LOG2_3) / 2)  # (1 + 0.6309298) / 2 = 0.8154649
    assert at10.recall == pytest.approx(1.0)
    assert at10.mrr == pytest.approx(0.75)  # (1 + 0.5) / 2
    at1 = ev.at(1)
    assert (at1.ndcg, at1.recall, at1.mrr) == pytest.approx((0.5, 0.5, 0.5))
    assert ev.as_dict()["nDCG@10"] == at10.ndcg
    assert set(ev.as_dict()) == {"nDCG@1", "Recall@1", "MRR@1", "nDCG@10", "Recall@10", "MRR@10"}


def test_missing_and_empty_runs_score_zero_but_count() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": ["a"], "q2": []}  # q2 empty, q3 missing: both 0, both counted
    ev = evaluate(qrels, run, ks=10)
    assert ev.num_queries == 3
    assert ev.at(10).ndcg == pytest.approx(1 / 3)
    assert evaluate(qrels, {}, ks=10).at(10) == MetricsAtK(10, 0.0, 0.0, 0.0)


def test_unjudged_retrieved_docs_are_non_relevant() -> None:
    # "u" is not in the qrels at all; "a" at rank 2 -> nDCG 1/log2(3).
    assert ndcg_at_k({"a": 1}, ["u", "a"], 10) == pytest.approx(1 / LOG2_3)


def test_per_query_and_mean_agree_with_evaluate() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": ["a"], "q2": ["x", "b"]}
    pq = per_query(qrels, run, ks=(10,))
    assert set(pq) == {"q1", "q2"}
    assert pq["q2"].at(10).mrr == pytest.approx(0.5)
    assert mean(pq.values()) == evaluate(qrels, run, ks=(10,))


def test_query_without_relevant_docs_scores_zero_standalone() -> None:
    assert ndcg_at_k({"a": 0}, ["a"], 10) == 0.0


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "10"])
def test_bad_cutoff(k: object) -> None:
    with pytest.raises(UsageError):
        ndcg_at_k({"a": 1}, ["a"], k)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ranking",
    ["abc", [("a",)], [("a", "high")], [("a", float("nan"))], ["a", ("b", 1.0)], [(1, 1.0)]],
)
def test_bad_rankings(ranking: object) -> None:
    with pytest.raises(UsageError):
        ranked_ids(ranking)  # type: ignore[arg-type]


def test_evaluation_errors() -> None:
    ev = evaluate({"q": {"a": 1}}, {"q": ["a"]}, ks=(10,))
    with pytest.raises(UsageError, match="cutoff 5"):
        ev.at(5)
    with pytest.raises(UsageError):
        evaluate({"q": {"a": 0}}, {"q": ["a"]})  # nothing judged relevant
    with pytest.raises(UsageError):
        evaluate({"q": {"a": 1}}, {"q": ["a"]}, ks=())
    with pytest.raises(UsageError):
        mean([ev, evaluate({"q": {"a": 1}}, {"q": ["a"]}, ks=(5,))])
    with pytest.raises(AttributeError):  # frozen
        ev.num_queries = 3  # type: ignore[misc]
    assert isinstance(ev, Evaluation)


# ---------------------------------------------------------------- BEIR loader


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    _write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Cats", "text": "Cats purr."},
            {"_id": "d2", "title": "", "text": "Dogs bark."},
            {"_id": 3, "text": "No title key, numeric id."},
        ],
    )
    _write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"_id": "q1", "text": "purring"},
            {"_id": "q2", "text": "unjudged query"},
            {"_id": "q3", "text": "barking", "metadata": {}},
        ],
    )
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\td2\t2\nq3\td1\t0\n", encoding="utf-8"
    )
    return tmp_path


def test_load_beir(beir_dir: Path) -> None:
    col = load_beir(beir_dir)
    assert col.split == "test"
    assert col.queries == (BeirQuery("q1", "purring"), BeirQuery("q3", "barking"))  # q2 unjudged
    assert dict(col.qrels["q3"]) == {"d2": 2, "d1": 0}
    docs = list(col.corpus())
    assert docs == [
        BeirDoc("d1", "Cats", "Cats purr."),
        BeirDoc("d2", "", "Dogs bark."),
        BeirDoc("3", "", "No title key, numeric id."),
    ]
    assert docs[0].full_text == "Cats Cats purr."
    assert docs[1].full_text == "Dogs bark."
    with pytest.raises(TypeError):
        col.qrels["q1"]["d9"] = 1  # type: ignore[index]
    # The loader's qrels feed straight into the metrics.
    ev = evaluate(col.qrels, {"q1": ["d1"], "q3": ["d1", "d2"]}, ks=(10,))
    # q1: 1.0; q3: d2 (rel 2) at rank 2 -> (2/log2(3)) / 2 = 0.6309298 -> mean 0.8154649
    assert ev.at(10).ndcg == pytest.approx((1 + 1 / LOG2_3) / 2)


def test_corpus_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n\n{"_id": "b", "text": "y"}\n{oops\n')
    docs = read_corpus(path)
    assert next(docs).id == "a"
    assert next(docs).id == "b"  # the blank line is skipped
    with pytest.raises(UsageError, match=r"corpus.jsonl:4: not valid JSON"):
        next(docs)


def test_qrels_without_header(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("q1\td1\t1\r\nq1\td2\t0\r\n")
    assert read_qrels(path) == {"q1": {"d1": 1, "d2": 0}}


@pytest.mark.parametrize(
    ("rel_path", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n', "duplicate"),
        ("corpus.jsonl", '{"_id": "d1"}\n', "no string 'text'"),
        ("corpus.jsonl", '{"text": "a"}\n', "invalid '_id'"),
        ("corpus.jsonl", "[1, 2]\n", "JSON object"),
        ("queries.jsonl", '{"_id": "q1", "text": 5}\n', "no string 'text'"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n", "3 tab-separated"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tyes\n", "not an integer"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\n", "no judgments"),
        ("qrels/test.tsv", "qX\td1\t1\n", "not in queries.jsonl"),
    ],
)
def test_malformed_collection(beir_dir: Path, rel_path: str, content: str, message: str) -> None:
    (beir_dir / rel_path).write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        list(load_beir(beir_dir).corpus())


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_files(beir_dir: Path, missing: str) -> None:
    (beir_dir / missing).unlink()
    with pytest.raises(UsageError, match=Path(missing).name.replace(".", r"\.")):
        load_beir(beir_dir)


def test_not_a_directory_and_other_split(beir_dir: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        load_beir(beir_dir / "nope")
    with pytest.raises(UsageError, match=r"dev\.tsv"):
        load_beir(beir_dir, split="dev")
    (beir_dir / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "\xff"}\n')
    with pytest.raises(UsageError, match="not UTF-8"):
        list(read_corpus(beir_dir / "corpus.jsonl"))
