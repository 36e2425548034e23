"""The pluggable cross-encoder: loading a local directory, re-ordering by its scores, and
one-line errors when the directory is missing or broken. The model is a tiny random BERT
the test saves itself (nothing is downloaded)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.api import SemanticIndex
from semsearch.errors import ModelError, UsageError
from semsearch.search.rerank import Reranker, load_reranker

from .conftest import FakeEmbedder

TEXTS = [
    "The cat sat on the mat and purred.",
    "A cat chased the mouse around the old barn for hours.",
    "Dogs bark at cats.",
    "Stock markets fell sharply on Monday.",
    "The cat.",
]


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BertForSequenceClassification (one label, random weights) with the
    bundled model's tokenizer, saved the way sentence-transformers' CrossEncoder loads it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from semsearch.embed.models import resolve_model

    _, location = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(location)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=1,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("xenc")
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def index(fake: FakeEmbedder) -> SemanticIndex:
    return SemanticIndex.from_texts(TEXTS, embedder=fake)


@pytest.mark.slow
def test_rerank_orders_by_the_cross_encoders_scores(
    index: SemanticIndex, cross_encoder_dir: Path
) -> None:
    hits = index.search("cat", k=4, mode="keyword", rerank=cross_encoder_dir)
    assert len(hits) == 4
    model = load_reranker(cross_encoder_dir)
    assert isinstance(model, Reranker) and model.path == cross_encoder_dir.resolve()
    assert load_reranker(cross_encoder_dir) is model  # loaded once per directory
    # Every candidate the first stage found, scored by the model directly:
    first = index.search("cat", k=100, mode="keyword")
    direct = model.scores("cat", [h.text for h in first])
    expected = [first[i].text for i in np.argsort(-direct, kind="stable")[:4]]
    assert [h.text for h in hits] == expected
    assert [h.score for h in hits] == pytest.approx(sorted(direct, reverse=True)[:4], abs=1e-5)
    # The keyword part stays what the first stage measured.
    assert all(h.keyword_score is not None and h.keyword_score > 0 for h in hits)


class _LengthModel:
    """Stands in for a CrossEncoder: longer passages score higher (BM25 prefers short)."""

    def predict(self, pairs: list[tuple[str, str]], **_: object) -> np.ndarray:
        return np.array([len(p) for _, p in pairs], dtype=np.float32)


def test_rerank_reorders_first_stage_hits(index: SemanticIndex, tmp_path: Path) -> None:
    first = index.search("cat", k=3, mode="keyword")
    hits = index.search("cat", k=3, mode="keyword", rerank=Reranker(tmp_path, _LengthModel()))
    cat_texts = sorted((t for t in TEXTS if "cat" in t.lower()), key=len, reverse=True)
    assert [h.text for h in hits] == cat_texts[:3]
    assert [h.text for h in hits] != [h.text for h in first]
    assert [h.score for h in hits] == [float(len(t)) for t in cat_texts[:3]]


def test_missing_or_broken_directory(tmp_path: Path, index: SemanticIndex) -> None:
    with pytest.raises(UsageError, match=r"reranker .*nope: not a directory"):
        index.search("cat", rerank=tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(ModelError, match=r"cannot load reranker .*broken: no config\.json"):
        load_reranker(broken)
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=r"cannot load reranker .*broken"):
        load_reranker(broken)


@pytest.mark.slow
def test_cli_rerank_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SEMSEARCH_CACHE": str(tmp_path / "cache")}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("cats and mats\n", encoding="utf-8")
    run = [sys.executable, "-m", "semsearch"]
    idx = str(tmp_path / "idx")
    built = subprocess.run([*run, "index", str(tmp_path / "docs"), "--index", idx],
                           capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    for path, code, words in (
        (tmp_path / "nope", 2, "not a directory"),
        (broken, 1, "cannot load"),
    ):
        r = subprocess.run([*run, "query", "cats", "--index", idx, "--rerank", str(path)],
                           capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
        assert r.returncode == code, r.stderr
        assert words in r.stderr and str(path) in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
