"""The static model: numpy inference, the one-time distillation cache, ``model="static"``.

Distilling for real takes minutes, so these tests stand a small random table in for
model2vec's output (``fake_distil``), with the bundled model's real tokenizer.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.embed import STATIC_MODEL, load_embedder, resolve_model
from semsearch.embed import static_distill as sd
from semsearch.embed.static import META_FILE, VECTORS_FILE, StaticEmbedder
from semsearch.errors import MissingDependencyError, ModelError

TEACHER_ID, TEACHER_DIR = resolve_model(None)
TOKENIZER_JSON = (Path(TEACHER_DIR) / "tokenizer.json").read_text(encoding="utf-8")

TEXTS = [
    "Solar panels convert sunlight into electricity.",
    "The cat sat on the mat, purring.",
    "",
    "☃☃☃ ✓",  # no known token except [UNK]s: a zero vector, never NaN
    " ".join(f"{i} apples" for i in range(400)),  # beyond the 254 tokens the model reads
    "Python list comprehensions build lists from iterables.",
]


def _random_model(dim: int = 48, seed: int = 0) -> sd.Distilled:
    from tokenizers import Tokenizer

    size = Tokenizer.from_str(TOKENIZER_JSON).get_vocab_size()
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((size, dim)).astype(np.float16).astype(np.float32)
    return sd.Distilled(vectors, TOKENIZER_JSON)


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    out = tmp_path / "static"
    sd.write_static(out, _random_model(), teacher=TEACHER_ID, stamp="x", max_tokens=254)
    return out


@pytest.fixture
def fake_distil(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replaces model2vec: records each distillation and returns the random model."""
    calls: list[str] = []

    def distil(location: str) -> sd.Distilled:
        calls.append(location)
        return _random_model()

    monkeypatch.setattr(sd, "distil", distil)
    return calls


def test_vectors_are_bit_identical_alone_and_in_any_batch(static_dir: Path) -> None:
    emb = StaticEmbedder(static_dir)
    batch = emb.encode(TEXTS)
    assert batch.shape == (len(TEXTS), 48) and batch.dtype == np.float32
    for i, text in enumerate(TEXTS):
        assert np.array_equal(emb.encode([text])[0], batch[i])
    order = [5, 0, 3, 1, 4, 2]
    shuffled = emb.encode([TEXTS[i] for i in order] * 2)
    for row, i in enumerate(order * 2):
        assert np.array_equal(shuffled[row], batch[i])
    assert np.array_equal(emb.encode(TEXTS), batch)  # and on every call


def test_rows_are_unit_or_zero(static_dir: Path) -> None:
    vectors = StaticEmbedder(static_dir).encode(TEXTS)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.all(np.isfinite(vectors))
    assert norms[2] == 0.0 and norms[3] == 0.0  # empty, and unknown tokens only
    np.testing.assert_allclose(np.delete(norms, [2, 3]), 1.0, atol=1e-6)
    assert np.array_equal(StaticEmbedder(static_dir).encode([]), np.zeros((0, 48), np.float32))


def test_matches_model2vec(static_dir: Path) -> None:
    """Our numpy inference computes what model2vec's StaticModel.encode does, reading as many
    tokens as the teacher does."""
    pytest.importorskip("model2vec")
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    model = _random_model()
    reference = StaticModel(
        vectors=model.vectors, tokenizer=Tokenizer.from_str(TOKENIZER_JSON), normalize=True
    )
    theirs = reference.encode(TEXTS, max_length=254, use_multiprocessing=False)
    ours = StaticEmbedder(static_dir).encode(TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_chunks_like_the_teacher(static_dir: Path) -> None:
    """Same token spans and limit as the transformer, so both models chunk a tree the same."""
    from semsearch.embed import SentenceTransformerEmbedder

    teacher = SentenceTransformerEmbedder(None)
    static = StaticEmbedder(static_dir)
    assert static.max_tokens == teacher.max_tokens == 254
    texts = [t for t in TEXTS if t] + ["def f(x):\n    return x ** 2  # squared"]
    assert static.token_spans(texts) == teacher.token_spans(texts)


def test_distils_once_announces_once_and_reuses_the_cache(
    tmp_path: Path, fake_distil: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "models"
    with caplog.at_level(logging.INFO, logger="semsearch"):
        first = sd.ensure_static(TEACHER_ID, TEACHER_DIR, cache, max_tokens=254)
        second = sd.ensure_static(TEACHER_ID, TEACHER_DIR, cache, max_tokens=254)
    assert first == second == sd.static_model_dir(TEACHER_ID, cache)
    assert first.parent == cache / first.parent.name  # beside the ONNX exports of the teacher
    assert fake_distil == [TEACHER_DIR]
    lines = [r.getMessage() for r in caplog.records if "distilling" in r.getMessage()]
    assert lines == [f"distilling the static model from {TEACHER_ID} (once, about a minute) …"]
    meta = json.loads((first / META_FILE).read_text())
    assert meta["dim"] == 48 and meta["max_tokens"] == 254 and meta["teacher"] == TEACHER_ID


def test_a_changed_teacher_is_distilled_again(tmp_path: Path, fake_distil: list[str]) -> None:
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text("{}")
    cache = tmp_path / "models"
    sd.ensure_static("t", str(teacher), cache, max_tokens=254)
    (teacher / "config.json").write_text('{"changed": true}')
    sd.ensure_static("t", str(teacher), cache, max_tokens=254)
    assert len(fake_distil) == 2


@pytest.mark.parametrize(("option", "value"), [("PCA_DIMS", 128), ("SIF_COEFFICIENT", 1e-3)])
def test_other_distil_options_are_distilled_again(
    tmp_path: Path,
    fake_distil: list[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: float,
) -> None:
    cache = tmp_path / "models"
    sd.ensure_static(TEACHER_ID, TEACHER_DIR, cache, max_tokens=254)
    sd.ensure_static(TEACHER_ID, TEACHER_DIR, cache, max_tokens=254)
    assert len(fake_distil) == 1
    monkeypatch.setattr(sd, option, value)
    out = sd.ensure_static(TEACHER_ID, TEACHER_DIR, cache, max_tokens=254)
    assert len(fake_distil) == 2
    assert json.loads((out / META_FILE).read_text())[option.lower()] == value


def test_no_pickle_on_disk(static_dir: Path) -> None:
    np.load(static_dir / VECTORS_FILE, allow_pickle=False)  # raises on an object array
    np.save(static_dir / VECTORS_FILE, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="cannot load the static model"):
        StaticEmbedder(static_dir)


def test_a_damaged_cache_is_one_line(static_dir: Path) -> None:
    np.save(static_dir / VECTORS_FILE, np.zeros((10, 48), np.float32))
    with pytest.raises(ModelError, match="do not match the tokenizer"):
        StaticEmbedder(static_dir)
    (static_dir / META_FILE).write_text("{")
    with pytest.raises(ModelError, match="not a static model"):
        StaticEmbedder(static_dir)


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)
    with pytest.raises(MissingDependencyError) as err:
        sd.distil(TEACHER_DIR)
    assert str(err.value) == "model2vec is not installed: pip install 'semsearch[static]'"


def test_model_static_indexes_and_queries(
    tmp_path: Path, fake_distil: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model="static"`` goes through the registry; the index records it as its model and
    reopens with it, whatever precision was asked."""
    from semsearch.api import SemanticIndex

    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(tmp_path / "models"))
    emb = load_embedder(STATIC_MODEL, "int8", runtime="torch", model_cache=tmp_path / "models")
    assert isinstance(emb, StaticEmbedder) and emb.name == "static"
    texts = [
        "Solar panels convert sunlight into electricity on rooftops.",
        "The cat sat on the mat and purred all afternoon.",
        "Sourdough bread needs a starter, flour, water and salt.",
    ]
    path = tmp_path / "idx"
    index = SemanticIndex.from_texts(texts, model=STATIC_MODEL, path=path)
    assert index.settings.model == "static" and index.settings.dim == 48
    reopened = SemanticIndex.load(path)
    assert reopened.embedder.name == "static"
    hits = reopened.search("sunlight solar panels electricity", k=1, mode="dense")
    assert hits[0].text.startswith("Solar panels")
    assert fake_distil == [TEACHER_DIR]  # distilled once for both


_NO_HEAVY = """
import sys
from semsearch.embed.static import StaticEmbedder
vec = StaticEmbedder(sys.argv[1]).encode(["no torch needed to query"])
assert vec.shape == (1, 48), vec.shape
heavy = sorted(m for m in ("torch", "transformers", "model2vec", "sklearn") if m in sys.modules)
assert not heavy, heavy
"""


@pytest.mark.slow
def test_querying_imports_neither_torch_nor_model2vec(static_dir: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _NO_HEAVY, str(static_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


_ODD = [
    "tab\there\nnew\r\nline",
    "vertical\x0btab and\x0cform\x1cfeed\x1fsep\x85next",  # Python splits these, BERT deletes
    "no\u00a0break\u2003em\u3000ideographic\u200bzero-width",
    "Crème brûlée, naïve façade — «quoted» (x+y)=z; e.g. 3.14!",
    "中文字符和English混合",
    "combining\u0301 marks \u0301alone",
    "x" * 150 + " a" + "very" * 30 + "longword",  # past WordPiece's 100 characters: [UNK]
    "\ufeffbom\u00adsoft\x00nul\ufffdreplacement",
    "",
    "   ",
]


@pytest.mark.parametrize("text", _ODD)
def test_word_memo_gives_the_tokenizers_ids(static_dir: Path, text: str) -> None:
    emb = StaticEmbedder(static_dir)
    assert emb._words is not None
    whole = emb._span_tok.encode(text, add_special_tokens=False).ids
    assert emb._words([text]) == [whole]
    assert emb._words([text, text]) == [whole, whole]  # and from the memo


def test_word_memo_matches_on_any_text(static_dir: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    emb = StaticEmbedder(static_dir)
    words = emb._words
    assert words is not None

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.text(max_size=60), min_size=1, max_size=4))
    def check(texts: list[str]) -> None:
        whole = [e.ids for e in emb._span_tok.encode_batch(texts, add_special_tokens=False)]
        assert words(texts) == whole

    check()
