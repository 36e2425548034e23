"""``--model`` with a multilingual sentence-transformers model, end to end.

No model is downloaded: a tiny BERT with random weights and a WordPiece vocabulary trained
here on sentences in eight scripts stands in for a real multilingual model. Its vectors
mean nothing, so the test checks the loading path (tokenizer, export, dimension, stored
model identity, dense queries answered) and keyword search in every script through the
CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch.cli import main

from .test_keyword import SENTENCES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-multilingual")
    texts = [s for s, _ in SENTENCES.values()] + [q for _, q in SENTENCES.values()]
    wp = BertWordPieceTokenizer(lowercase=True, strip_accents=True, handle_chinese_chars=True)
    wp.train_from_iterator(texts * 4, vocab_size=400, min_frequency=1)
    bert_dir = root / "bert"
    bert_dir.mkdir()
    wp.save_model(str(bert_dir))
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=wp.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    BertModel(config).save_pretrained(bert_dir)
    word = models.Transformer(str(bert_dir), max_seq_length=128)
    pool = models.Pooling(32, pooling_mode="mean")
    out = root / "st"
    SentenceTransformer(modules=[word, pool, models.Normalize()]).save(str(out))
    return out


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_local_multilingual_model_indexes_and_finds_every_script(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], precision: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for lang, (sentence, _) in SENTENCES.items():
        (docs / f"{lang}.txt").write_text(sentence, encoding="utf-8")
    ix = tmp_path / "ix"
    args = ["--model", str(tiny_model), "--precision", precision]
    own = ["--model", str(tiny_model)]  # a local model is loaded only when named (D25)
    assert main(["index", str(docs), "--index", str(ix), *args]) == 0
    capsys.readouterr()
    assert main(["info", "--index", str(ix), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dim"] == 32 and info["model"] == str(tiny_model.resolve())
    assert info["precision"] == precision and info["documents"] == len(SENTENCES)
    for lang, (_, query) in SENTENCES.items():
        # keyword side: the query's folded, stemmed or paired terms
        assert (
            main(
                ["query", query, "--index", str(ix), "--json", "-k", "1", "--mode", "keyword", *own]
            )
            == 0
        )
        (hit,) = json.loads(capsys.readouterr().out)
        assert Path(hit["source"]).stem == lang, query
        # dense side: random weights, so only that it embeds the query and answers
        assert (
            main(["query", query, "--index", str(ix), "--json", "-k", "2", "--mode", "dense", *own])
            == 0
        )
        hits = json.loads(capsys.readouterr().out)
        assert len(hits) == 2 and all(-1.0 <= h["dense_score"] <= 1.0 for h in hits)
    assert main(["query", "首都", "--index", str(ix), "--json", "-k", "3", *own]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and all(h["dense_score"] is not None for h in hits)
    # The random-weight model's dense side may rank any document; the keyword side must find
    # both texts holding the word, in Chinese and in Japanese.
    args = ["query", "首都", "--index", str(ix), "--json", "-k", "3", "--mode", "keyword", *own]
    assert main(args) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {Path(h["source"]).stem for h in hits} == {"zh", "ja"}
