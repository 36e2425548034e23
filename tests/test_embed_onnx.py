"""ONNX fast path: same vectors as sentence-transformers, and no torch at query time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from semsearch import config
from semsearch.embed import SentenceTransformerEmbedder, resolve_model
from semsearch.embed import onnx_export as embed_onnx
from semsearch.embed.onnx_export import (
    META_FILE,
    MODEL_FILE,
    ensure_onnx,
    export_onnx,
    onnx_model_dir,
)
from semsearch.embed.onnx_runtime import OnnxEmbedder
from semsearch.errors import MissingDependencyError, ModelError, UsageError

REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "trade between Belarus and Russia",
    "what did the president say about the pandemic?",
    "hello",
    "",
    "  padded query with spaces  ",
]


def _seed_paragraphs() -> list[str]:
    out = []
    for path in sorted((REPO / "seeds").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        out += [p.strip() for p in text.split("\n\n") if p.strip()]
    return [*out, "word " * 400]  # longer than max_seq_length: truncation must match


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """fp32 and int8 exports of the default model, made once through the model cache path."""
    root = os.environ.get("SEMSEARCH_MODEL_CACHE") or str(tmp_path_factory.mktemp("models"))
    identity, location = resolve_model(None)
    dirs = {p: ensure_onnx(identity, location, p, Path(root)) for p in ("fp32", "int8")}
    yield {**dirs, "root": Path(root)}


@pytest.fixture(scope="session")
def reference() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def reference_vectors(reference: SentenceTransformerEmbedder) -> dict[str, np.ndarray]:
    return {
        "document": reference.encode(_seed_paragraphs(), kind="document"),
        "query": reference.encode(QUERIES, kind="query"),
    }


def _cosines(emb: OnnxEmbedder, ref: dict[str, np.ndarray]) -> np.ndarray:
    docs = emb.encode(_seed_paragraphs(), kind="document")
    queries = emb.encode(QUERIES, kind="query")
    return np.concatenate(
        [(docs * ref["document"]).sum(axis=1), (queries * ref["query"]).sum(axis=1)]
    )


@pytest.mark.slow
def test_fp32_matches_sentence_transformers(
    exported: dict[str, Path], reference_vectors: dict[str, np.ndarray]
) -> None:
    cos = _cosines(OnnxEmbedder(model_dir=exported["fp32"]), reference_vectors)
    assert cos.min() >= 0.9999, cos.min()


@pytest.mark.slow
def test_int8_stays_close(
    exported: dict[str, Path], reference_vectors: dict[str, np.ndarray]
) -> None:
    cos = _cosines(OnnxEmbedder(model_dir=exported["int8"]), reference_vectors)
    # int8 averages ~0.993; very short texts ("", "hello") are the worst, ~0.98.
    assert cos.mean() >= 0.99, cos.mean()
    assert cos.min() >= 0.97, cos.min()


@pytest.mark.slow
def test_attributes_match_reference(
    exported: dict[str, Path], reference: SentenceTransformerEmbedder
) -> None:
    for precision in ("fp32", "int8"):
        emb = OnnxEmbedder(model_dir=exported[precision])
        assert emb.name == reference.name
        assert emb.precision == precision
        assert emb.dim == reference.dim
        assert emb.max_tokens == reference.max_tokens
    texts = ["Hello, world!", "naïve café — 2020", ""]
    assert emb.token_spans(texts) == reference.token_spans(texts)


@pytest.mark.slow
def test_batches_keep_order_and_unit_norm(exported: dict[str, Path]) -> None:
    texts = _seed_paragraphs()[:12]
    emb = OnnxEmbedder(model_dir=exported["fp32"])
    together = emb.encode(texts)
    reversed_ = emb.encode(texts[::-1])
    assert together.shape == (12, 384) and together.dtype == np.float32
    np.testing.assert_array_equal(reversed_[::-1], together)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert emb.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_ensure_onnx_reuses_the_export(
    exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(exported["root"]))
    identity, location = resolve_model(None)
    assert onnx_model_dir(identity, "int8", exported["root"]) == exported["int8"]
    before = (exported["int8"] / MODEL_FILE).stat().st_mtime_ns
    monkeypatch.setattr(embed_onnx, "export_onnx", _fail)
    monkeypatch.setattr(embed_onnx, "_quantize_dir", _fail)
    assert ensure_onnx(identity, location, "int8", exported["root"]) == exported["int8"]
    assert (exported["int8"] / MODEL_FILE).stat().st_mtime_ns == before
    meta = json.loads((exported["int8"] / META_FILE).read_text())
    assert meta["identity"] == identity and meta["precision"] == "int8"
    assert meta["max_seq_length"] == 256 and meta["pooling"] == ["mean"]


def test_int8_weight_bits_follow_the_cpu(tmp_path: Path) -> None:
    """8-bit weights are exact only where an int8 dot product sums into 32 bits; exports are
    keyed on their width, and the default stays 7 bits on every CPU."""
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert embed_onnx.int8_weight_bits(avx2) == 7
    assert embed_onnx.int8_weight_bits(avx2.replace("fma", "fma avx512f avx512_vnni")) == 8
    assert embed_onnx.int8_weight_bits(avx2.replace("fma", "avx_vnni")) == 8
    assert embed_onnx.int8_weight_bits("model name\t: avx512_vnni in a name\n") == 7
    dirs = {b: onnx_model_dir("m", "int8", tmp_path, weight_bits=b) for b in (7, 8)}
    assert dirs[7] != dirs[8] and dirs[7].parent == dirs[8].parent
    # The default is the 7-bit export, in the folder earlier versions used.
    assert onnx_model_dir("m", "int8", tmp_path) == dirs[7] and dirs[7].name == "int8"


@pytest.mark.slow
def test_8bit_weights_stay_close_and_are_their_own_export(
    exported: dict[str, Path], reference_vectors: dict[str, np.ndarray]
) -> None:
    identity, location = resolve_model(None)
    dirs = {
        b: ensure_onnx(identity, location, "int8", exported["root"], weight_bits=b) for b in (7, 8)
    }
    assert dirs[7] != dirs[8]
    embs = {b: OnnxEmbedder(model_dir=d) for b, d in dirs.items()}
    assert embs[8].meta["weight_bits"] == 8 and embs[7].meta["weight_bits"] == 7
    assert embs[7].cache_tag != embs[8].cache_tag  # their vectors never share a cache entry
    cos = _cosines(embs[8], reference_vectors)
    assert cos.mean() >= 0.99, cos.mean()
    assert cos.min() >= 0.97, cos.min()
    texts = _seed_paragraphs()[:4]
    assert not np.array_equal(embs[7].encode(texts), embs[8].encode(texts))


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("exported again")


_NO_TORCH = """
import sys
from semsearch.embed.onnx_runtime import OnnxEmbedder
vec = OnnxEmbedder(model_dir=sys.argv[1]).encode(["a cold query"], kind="query")
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(vec.shape, heavy)
sys.exit(1 if heavy or vec.shape != (1, 384) else 0)
"""


@pytest.mark.slow
def test_query_path_never_imports_torch(exported: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(exported["int8"])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_prompts_and_cls_pooling_match_reference(exported: dict[str, Path], tmp_path: Path) -> None:
    """A model with a query prompt excluded from CLS pooling, built from the default weights."""
    _, location = resolve_model(None)
    model = tmp_path / "prompted"
    shutil.copytree(location, model, ignore=shutil.ignore_patterns("*.safetensors", "README*"))
    os.symlink(Path(location) / "model.safetensors", model / "model.safetensors")
    pooling = {"word_embedding_dimension": 384, "pooling_mode": "cls", "include_prompt": False}
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (model / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": ""}})
    )
    config = embed_onnx._st_config(model)
    assert config["pooling"] == ["cls"] and config["include_prompt"] is False
    assert config["prompts"] == {"query": "query: "}  # empty prompts are dropped
    # Same weights, so reuse the default export's graph with this model's pooling and prompts.
    onnx_dir = tmp_path / "onnx"
    shutil.copytree(exported["fp32"], onnx_dir)
    meta = json.loads((onnx_dir / META_FILE).read_text())
    (onnx_dir / META_FILE).write_text(json.dumps({**meta, **config}))
    emb = OnnxEmbedder(model_dir=onnx_dir)
    ref = SentenceTransformerEmbedder(str(model))
    for kind, texts in (("query", QUERIES), ("document", _seed_paragraphs()[:5])):
        cos = (emb.encode(texts, kind=kind) * ref.encode(texts, kind=kind)).sum(axis=1)
        assert cos.min() >= 0.9999, (kind, cos.min())
    plain = OnnxEmbedder(model_dir=exported["fp32"]).encode(["x"], kind="query")
    assert float((emb.encode(["x"], kind="query") * plain).sum()) < 0.99  # prompt + CLS differ


def test_unsupported_models_fail_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            ]
        )
    )
    with pytest.raises(ModelError, match="Dense"):
        export_onnx(tmp_path, tmp_path / "out")
    (tmp_path / "modules.json").unlink()
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "lasttoken"}))
    with pytest.raises(ModelError, match="lasttoken"):
        export_onnx(tmp_path, tmp_path / "out")


def test_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        OnnxEmbedder(model_dir=tmp_path)


def test_bad_precision() -> None:
    with pytest.raises(UsageError):
        onnx_model_dir("m", "fp16", Path("/nonexistent"))
    with pytest.raises(UsageError):
        OnnxEmbedder(precision="int4")


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        OnnxEmbedder(model_dir=tmp_path)


def test_cache_dir_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEMSEARCH_MODEL_CACHE", raising=False)
    monkeypatch.setenv("SEMSEARCH_CACHE", str(tmp_path))
    root = config.load().model_cache
    a = onnx_model_dir("all-MiniLM-L6-v2", "fp32", root)
    assert a.parent.parent == tmp_path / "onnx" and a.name == "fp32"
    assert a.parent.name.startswith("all-MiniLM-L6-v2-")
    assert onnx_model_dir("/x/all-MiniLM-L6-v2", "fp32", root) != a  # same tail, other identity
    assert onnx_model_dir("all-MiniLM-L6-v2", "int8", root).parent == a.parent
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(tmp_path / "models"))
    assert config.load().model_cache == tmp_path / "models"


def test_unknown_hub_name_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        export_onnx("no-such-org/no-such-model", tmp_path / "out")
