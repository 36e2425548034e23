from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import IndexFormatError, SemanticIndex, UsageError, index_paths
from semsearch.store import IndexDir
from semsearch.store.manifest import FORMAT_VERSION

from .conftest import REPO, SEEDS, FakeEmbedder

QUERIES = ["trade decline", "foreign policy", "gas"]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    index_paths([SEEDS], tmp_path / "idx", embedder=FakeEmbedder(), chunk_tokens=60)
    return tmp_path / "idx"


def _gen(path: Path) -> Path:
    return IndexDir(path).current()


def _load(path: Path) -> SemanticIndex:
    return SemanticIndex.load(path, embedder=FakeEmbedder())


def test_layout_has_no_pickle_and_a_declared_manifest(built: Path) -> None:
    gen = _gen(built)
    names = sorted(p.name for p in gen.iterdir())
    assert names == ["chunks.sqlite", "index.faiss", "manifest.json", "vectors.npy"]
    manifest = json.loads((gen / "manifest.json").read_text())
    assert manifest["model"] == "fake-bow" and manifest["dim"] == 64
    assert manifest["documents"] == 5 and manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["files"]) == {"chunks.sqlite", "index.faiss", "vectors.npy"}
    np.load(gen / "vectors.npy", allow_pickle=False)  # plain array, no objects


def _rewrite_manifest(index: Path, **changes: object) -> None:
    """Edit the manifest the way a (future) writer would: CURRENT's digest updated too."""
    path = _gen(index) / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    raw = json.dumps(data).encode()
    path.write_bytes(raw)
    (index / "CURRENT").write_text(f"{path.parent.name} {hashlib.sha256(raw).hexdigest()}\n")


def test_unknown_format_version(built: Path) -> None:
    _rewrite_manifest(built, format_version=99)
    with pytest.raises(IndexFormatError, match="format version 99"):
        _load(built)


def test_altered_manifest_is_detected(built: Path) -> None:
    path = _gen(built) / "manifest.json"
    path.write_text(path.read_text().replace('"chunks": ', '"chunks": 1'))
    with pytest.raises(IndexFormatError, match=r"manifest.*altered"):
        _load(built)


@pytest.mark.parametrize("name", ["vectors.npy", "chunks.sqlite"])
def test_same_size_alteration_is_detected_by_checksum(built: Path, name: str) -> None:
    path = _gen(built) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=f"{name}: checksum"):
        _load(built)


def test_damaged_faiss_file_falls_back_to_exact_search(
    built: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """index.faiss is derived from vectors.npy: when it is damaged, queries search the
    intact vectors exactly (same answers as flat faiss) and say so."""
    before = _load(built).search_batch(QUERIES, 5)
    path = _gen(built) / "index.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="semsearch"):
        index = _load(built)
    assert "index.faiss: checksum" in caplog.text
    assert index.live.view.index.backend == "numpy"
    after = index.search_batch(QUERIES, 5)
    assert [[h.chunk_id for h in q] for q in after] == [[h.chunk_id for h in q] for q in before]


def test_model_and_dimension_mismatch(built: Path) -> None:
    other = FakeEmbedder(dim=64)
    other.name = "other-model"
    with pytest.raises(IndexFormatError, match="built with model 'fake-bow'"):
        SemanticIndex.load(built, embedder=other)
    small = FakeEmbedder(dim=32)
    with pytest.raises(IndexFormatError, match="dimension 64"):
        SemanticIndex.load(built, embedder=small)


@pytest.mark.parametrize("name", ["vectors.npy", "chunks.sqlite", "manifest.json"])
def test_missing_or_truncated_files_are_named(built: Path, name: str) -> None:
    path = _gen(built) / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFormatError, match=name.split(".")[0]):
        _load(built)
    path.unlink()
    with pytest.raises(IndexFormatError, match=name.split(".")[0]):
        _load(built)


def test_missing_index_and_foreign_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no index"):
        _load(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(IndexFormatError, match="not a semsearch index"):
        _load(tmp_path)
    with pytest.raises(UsageError, match="not empty"):
        index_paths([SEEDS], tmp_path, embedder=FakeEmbedder())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_build_of_only_empty_files_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   \n")
    with pytest.raises(UsageError, match="no text to index"):
        index_paths([empty], tmp_path / "idx", embedder=FakeEmbedder())
    assert not IndexDir(tmp_path / "idx").exists()


def test_failed_build_keeps_previous_index(built: Path, tmp_path: Path) -> None:
    before = _load(built).search_batch(QUERIES, 5)

    class Broken(FakeEmbedder):
        def encode(self, texts, *, kind="document"):  # type: ignore[no-untyped-def]
            raise RuntimeError("model crashed")

    new = tmp_path / "new"
    new.mkdir()
    (new / "a.txt").write_text("Fresh text that must be embedded.")
    with pytest.raises(RuntimeError, match="crashed"):
        index_paths([new], built, embedder=Broken(), chunk_tokens=60)
    assert _load(built).search_batch(QUERIES, 5) == before
    assert not [p for p in built.iterdir() if p.name.startswith(".tmp-")]


_SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from tests.conftest import FakeEmbedder
    from semsearch import index_paths

    class Slow(FakeEmbedder):
        def encode(self, texts, *, kind="document"):
            print("encoding", flush=True)
            time.sleep(0.2)
            return super().encode(texts, kind=kind)

    index_paths(sys.argv[1:-1], sys.argv[-1], embedder=Slow(), chunk_tokens=60)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_build_killed_midway_leaves_old_index_loadable(
    built: Path, tmp_path: Path, delay: float
) -> None:
    before = _load(built).search_batch(QUERIES, 5)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(400):
        (corpus / f"doc{i}.txt").write_text(f"Document {i} talks about topic {i % 7}. " * 40)
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_BUILD.format(repo=str(REPO)))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(corpus), str(built)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # it has started embedding and writing its generation
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _load(built).search_batch(QUERIES, 5) == before
    # The next build clears the debris and succeeds.
    index_paths([SEEDS], built, embedder=FakeEmbedder(), chunk_tokens=60)
    assert not [p for p in built.iterdir() if p.name.startswith(".tmp-")]


def test_second_writer_waits_then_fails_clearly(built: Path) -> None:
    from semsearch.errors import IndexLockedError

    with (
        IndexDir(built).lock(),
        pytest.raises(IndexLockedError, match="another process"),
        IndexDir(built).lock(timeout=0.2),
    ):
        pass


def _ivf_corpus(root: Path, n: int = 400) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"d{i}.txt").write_text(f"w{i} x{i * 7 % 101} y{i % 13} z{i % 29} topic {i % 17}.")
    return root


def test_old_ivfflat_index_opens_and_is_converted_on_the_next_write(tmp_path: Path) -> None:
    """An index written when ``ivf`` meant faiss's IndexIVFFlat (a second copy of every vector
    in its lists) answers as before, and the next write rewrites it with codes."""
    faiss = pytest.importorskip("faiss")
    from semsearch.index import FaissIndex, ann

    corpus, emb, idx = _ivf_corpus(tmp_path / "corpus"), FakeEmbedder(), tmp_path / "idx"
    index_paths([corpus], idx, embedder=emb, index_type="ivf")
    gen = _gen(idx)
    assert not ann.is_legacy(gen / "index.faiss")  # new indexes keep codes, not vectors
    vectors = np.load(gen / "vectors.npy")
    legacy = faiss.index_factory(vectors.shape[1], "IVF8,Flat", faiss.METRIC_INNER_PRODUCT)
    legacy.train(vectors)
    legacy.add(vectors)
    faiss.downcast_index(legacy).nprobe = 8  # every list: exact
    faiss.write_index(legacy, str(gen / "index.faiss"))
    raw = (gen / "index.faiss").read_bytes()
    data = json.loads((gen / "manifest.json").read_text())
    for files in [data["files"], *(seg["files"] for seg in data.get("segments", []))]:
        if "index.faiss" in files:
            files["index.faiss"].update(size=len(raw), sha256=hashlib.sha256(raw).hexdigest())
    _rewrite_manifest(idx, **data)
    exact = tmp_path / "exact"
    index_paths([corpus], exact, embedder=emb, index_type="flat")

    def top(path: Path) -> list[tuple[str, float]]:
        hits = SemanticIndex.load(path, embedder=emb).search("topic 3 y5", k=8, mode="dense")
        return [(h.source, round(h.score, 5)) for h in hits]

    view = SemanticIndex.load(idx, embedder=emb).live.view
    assert view is not None and isinstance(view.index, FaissIndex) and view.index.legacy
    assert top(idx) == top(exact)
    (corpus / "new.txt").write_text("a brand new document about topic 3.")
    index_paths([corpus], idx, embedder=emb)
    segs = [p for p in _gen(idx).parent.glob("gen-*/index.faiss")]
    live = json.loads((_gen(idx) / "manifest.json").read_text())
    names = [seg["name"] for seg in live.get("segments", [])] or [_gen(idx).name]
    live_files = [p for p in segs if p.parent.name in names]
    assert live_files and not any(ann.is_legacy(p) for p in live_files)
    index_paths([corpus], exact, embedder=emb)
    got, want = top(idx), top(exact)  # approximate again (tuned nprobe), scores exact
    assert got[0] == want[0] and len(set(got) & set(want)) >= 6
    assert json.loads((_gen(idx) / "manifest.json").read_text())["recall_at_10"] >= 0.95


def test_approximate_index_type_is_tuned_and_recorded(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(400):
        (corpus / f"d{i}.txt").write_text(
            f"w{i} x{i * 7 % 101} y{i % 13} z{i % 29} topic {i % 17}."
        )
    emb = FakeEmbedder()
    idx = tmp_path / "idx"
    index_paths([corpus], idx, embedder=emb, index_type="ivf")
    manifest = json.loads((_gen(idx) / "manifest.json").read_text())
    assert manifest["index_type"] == "ivf"
    assert manifest["recall_at_10"] >= 0.95 and manifest["index_params"]["requested"] == "ivf"
    loaded = SemanticIndex.load(idx, embedder=emb)
    assert loaded.info().recall_at_10 == manifest["recall_at_10"]
    hits = loaded.search("topic 3 theme 3", k=5, mode="dense")
    assert len(hits) == 5
    # auto stays exact at this size
    index_paths([corpus], tmp_path / "auto", embedder=emb)
    assert (
        json.loads((_gen(tmp_path / "auto") / "manifest.json").read_text())["index_type"] == "flat"
    )
    with pytest.raises(UsageError, match="faiss"):
        index_paths([corpus], tmp_path / "np", embedder=emb, backend="numpy", index_type="hnsw")
