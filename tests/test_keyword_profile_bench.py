"""The keyword-latency profile on a small index: every step of this tree's keyword path is
timed, inside the query's own time, and the functions it wraps are given back unchanged."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import semsearch.embed
from benchmarks import keyword_profile
from benchmarks.serve_bench import sentences, vocabulary
from semsearch import SemanticIndex
from semsearch.search import keyword, retrieve

from .conftest import FakeEmbedder


def test_profile_times_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = sentences(300, vocabulary(), seed=3, lo=6, hi=14)
    SemanticIndex.from_texts(texts, embedder=FakeEmbedder(), path=tmp_path / "index-300")
    monkeypatch.setattr(semsearch.embed, "load_embedder", FakeEmbedder)
    for module, owner, name, _ in keyword_profile.STEPS:  # restored after the test
        mod = importlib.import_module(module)
        target = getattr(mod, owner) if owner else mod
        monkeypatch.setattr(target, name, getattr(target, name))
    found = keyword_profile.profile(300, tmp_path, passes=2)
    steps = found["steps_cpu_ms"]
    assert [label for *_, label in keyword_profile.STEPS] == list(steps)  # all in this tree
    assert found["search_cpu_ms"] > 0 and all(v >= 0 for v in steps.values())
    assert steps["keyword_hits (all below)"] >= steps["  BM25 (both levels)"] > 0
    assert steps["keyword_hits (all below)"] <= found["search_cpu_ms"]


def test_bad_passes_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        keyword_profile.cli(["--passes", "0"])
    assert exc.value.code == 2 and "--passes" in capsys.readouterr().err
    assert keyword.keyword_hits is retrieve.keyword_hits  # nothing left wrapped
