"""Embedding cache: hits skip the model, misses are encoded once, rows survive reopening."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from semsearch import config
from semsearch.embed import Embedder, Kind, normalize
from semsearch.errors import UsageError
from semsearch.store.embedding_cache import EmbeddingCache, encode_cached

REPO = Path(__file__).resolve().parent.parent


class CountingEmbedder(Embedder):
    """Deterministic vectors from a hash of the text; records every text it is asked to encode."""

    name = "counting"
    dim = 8

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        self.seen.extend(texts)
        rows = [
            np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[: self.dim]
            for t in texts
        ]
        return normalize(np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim) + 1)


@pytest.fixture
def cache(tmp_path: Path) -> EmbeddingCache:
    with EmbeddingCache(tmp_path / "emb.sqlite") as c:
        yield c


def test_default_path_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE", str(tmp_path / "c"))
    assert config.load().cache_dir == tmp_path / "c"
    with EmbeddingCache(config.load().embedding_cache) as c:
        assert c.path == tmp_path / "c" / "embeddings.sqlite"
        c.store("m", "fp32", ["a"], np.eye(1, 4, dtype=np.float32))
    assert (tmp_path / "c" / "embeddings.sqlite").is_file()


def test_xdg_cache_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMSEARCH_CACHE", raising=False)
    monkeypatch.delenv("SEMSEARCH_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config.load()
    assert cfg.cache_dir == tmp_path / "xdg" / "semsearch"
    assert cfg.model_cache == tmp_path / "xdg" / "semsearch" / "onnx"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the spec: ignored
    assert config.load().cache_dir == Path.home() / ".cache" / "semsearch"


def test_lookup_on_empty_cache(cache: EmbeddingCache) -> None:
    vecs, hits = cache.lookup("m", "fp32", ["a", "b"], dim=8)
    assert vecs.shape == (2, 8) and vecs.dtype == np.float32 and not vecs.any()
    assert hits.dtype == bool and not hits.any()


def test_store_then_lookup_is_exact_and_keyed(cache: EmbeddingCache) -> None:
    emb = CountingEmbedder()
    vecs = emb.encode(["alpha", "beta"])
    cache.store("m", "fp32", ["alpha", "beta"], vecs)
    got, hits = cache.lookup("m", "fp32", ["beta", "gamma", "alpha"])
    assert hits.tolist() == [True, False, True]
    np.testing.assert_array_equal(got[0], vecs[1])
    np.testing.assert_array_equal(got[2], vecs[0])
    assert not got[1].any()
    # Another precision or model is another key.
    assert not cache.lookup("m", "int8", ["alpha"])[1].any()
    assert not cache.lookup("other", "fp32", ["alpha"])[1].any()
    # A row of the wrong width is a miss when the caller says which width it wants.
    assert not cache.lookup("m", "fp32", ["alpha"], dim=16)[1].any()


def test_vectors_are_raw_float32(cache: EmbeddingCache) -> None:
    vec = np.arange(8, dtype=np.float32)[None]
    cache.store("m", "fp32", ["x"], vec)
    with sqlite3.connect(cache.path) as conn:
        (blob,) = conn.execute("SELECT vector FROM embeddings").fetchone()
    assert blob == vec.astype("<f4").tobytes()


def test_store_rejects_mismatched_rows(cache: EmbeddingCache) -> None:
    with pytest.raises(UsageError):
        cache.store("m", "fp32", ["a", "b"], np.zeros((3, 8), dtype=np.float32))


def test_encode_cached_encodes_only_misses(cache: EmbeddingCache) -> None:
    emb = CountingEmbedder()
    first, hits = encode_cached(emb, ["a", "b", "a"], cache)
    assert hits == 0 and emb.seen == ["a", "b"]  # duplicates encoded once
    np.testing.assert_array_equal(first[0], first[2])

    emb.seen.clear()
    again, hits = encode_cached(emb, ["b", "c", "a"], cache)
    assert hits == 2 and emb.seen == ["c"]
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    np.testing.assert_array_equal(again[1], CountingEmbedder().encode(["c"])[0])

    emb.seen.clear()
    _, hits = encode_cached(emb, ["a", "b", "c"], cache)
    assert hits == 3 and emb.seen == []


def test_encode_cached_separates_precisions(cache: EmbeddingCache) -> None:
    encode_cached(CountingEmbedder("fp32"), ["a"], cache)
    int8 = CountingEmbedder("int8")
    _, hits = encode_cached(int8, ["a"], cache)
    assert hits == 0 and int8.seen == ["a"]


def test_encode_cached_empty(cache: EmbeddingCache) -> None:
    vecs, hits = encode_cached(CountingEmbedder(), [], cache)
    assert vecs.shape == (0, 8) and hits == 0


def test_many_texts_span_batches(cache: EmbeddingCache) -> None:
    emb = CountingEmbedder()
    texts = [f"text {i}" for i in range(1234)]
    first, _ = encode_cached(emb, texts, cache)
    emb.seen.clear()
    again, hits = encode_cached(emb, texts, cache)
    assert hits == len(texts) and emb.seen == []
    np.testing.assert_array_equal(first, again)


def test_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(path) as c:
        encode_cached(CountingEmbedder(), ["kept"], c)
    emb = CountingEmbedder()
    with EmbeddingCache(path) as c:
        _, hits = encode_cached(emb, ["kept"], c)
    assert hits == 1 and emb.seen == []


_WRITER = """
import sys
import numpy as np
from semsearch.store.embedding_cache import EmbeddingCache
tag = sys.argv[2]
with EmbeddingCache(sys.argv[1]) as c:
    for start in range(0, 600, 50):
        texts = [f"{tag}-{i}" for i in range(start, start + 50)]
        angle = start / 1000
        row = [np.cos(angle), np.sin(angle), 0.0, 0.0]
        c.store("m", "fp32", texts, np.tile(np.array(row, dtype=np.float32), (50, 1)))
        c.lookup("m", "fp32", texts)
"""


def test_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag], cwd=REPO)
        for tag in ("p", "q", "r")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with EmbeddingCache(path) as c:
        texts = [f"{tag}-{i}" for tag in ("p", "q", "r") for i in range(600)]
        vecs, hits = c.lookup("m", "fp32", texts)
    assert hits.all() and vecs.shape == (1800, 4)
    assert np.allclose(vecs[599], [np.cos(0.55), np.sin(0.55), 0, 0], atol=1e-6)


def test_a_process_that_skips_teardown_leaves_no_write_ahead_log(tmp_path: Path) -> None:
    """The CLI ends read-only commands by os._exit after the atexit handlers: the cache is
    closed there, so its log is folded into the file, and what was stored is kept."""
    path = tmp_path / "cache.sqlite"
    script = (
        "import atexit, os, sys, numpy as np\n"
        "from semsearch.store.embedding_cache import EmbeddingCache\n"
        "c = EmbeddingCache(sys.argv[1])\n"
        "c.store('m', 'fp32', ['a text'], np.full((1, 4), 0.5, dtype=np.float32))\n"
        "atexit._run_exitfuncs()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    assert path.exists()
    assert not (tmp_path / "cache.sqlite-wal").exists()
    with EmbeddingCache(path) as cache:
        vectors, hit = cache.lookup("m", "fp32", ["a text"])
    assert hit.tolist() == [True] and np.allclose(vectors, 0.5)
