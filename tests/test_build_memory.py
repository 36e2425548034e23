"""A build's passes over ``vectors.npy`` read the file instead of faulting in the map (issue 21:
build peak RSS at 1M chunks): the reader against NumPy indexing, and builds from a mapped file
against builds from the same rows in memory (identical index bytes, breadth and recall)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import semsearch.indexing.builder as builder
import semsearch.indexing.merge as merge
import semsearch.store.inverted as inverted
from semsearch import SemanticIndex
from semsearch.index import FaissIndex, ann, build_vector_index
from semsearch.store import IndexDir
from semsearch.store.manifest import segment_refs
from semsearch.store.npy import RowFile, VectorWriter, load_vectors, memmap_npy

from .conftest import FakeEmbedder

faiss = pytest.importorskip("faiss")

from .test_index import _one_thread  # noqa: E402, F401 - tiny problems: one OpenMP thread

DIM = 24


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 40), DIM)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def written(tmp_path: Path, rows: np.ndarray, parts: int = 3) -> Path:
    path = tmp_path / "vectors.npy"
    w = VectorWriter(path, rows.shape[1])
    for part in np.array_split(rows, parts):
        w.append(part)
    w.close()
    return path


@pytest.mark.parametrize("n", [1, 2, 7, 1001])
def test_row_file_reads_what_indexing_gives(tmp_path: Path, n: int) -> None:
    data = clustered(n, seed=n)
    path = written(tmp_path, data)
    assert np.array_equal(np.load(path), data)  # the writer's unbuffered append
    reader = RowFile.of(memmap_npy(path))
    assert reader is not None and len(reader) == n
    rng = np.random.default_rng(n)
    cases = [
        np.arange(n),  # one run
        np.sort(rng.choice(n, size=min(n, 5), replace=False)),  # scattered ascending
        rng.integers(0, n, 17),  # any order, repeats
        np.array([n - 1, 0, n - 1]),
        np.zeros(0, np.int64),
    ]
    for rows in cases:
        got = reader.take(rows)
        assert got.dtype == np.float32 and got.shape == (len(rows), DIM)
        assert np.array_equal(got, data[rows])
    for start, stop in ((0, n), (n // 2, n + 50), (n, n + 1)):
        assert np.array_equal(reader.block(start, stop), data[start:stop])
    with pytest.raises(IndexError):
        reader.take(np.array([n]))
    with pytest.raises(IndexError):
        reader.take(np.array([-1]))


def test_row_file_only_for_a_whole_mapped_file(tmp_path: Path) -> None:
    data = clustered(50)
    mapped = memmap_npy(written(tmp_path, data))
    assert RowFile.of(data) is None  # in memory: plain indexing
    assert RowFile.of(mapped[10:]) is None  # numpy keeps the parent's offset on views
    assert RowFile.of(mapped[:10]) is None
    assert RowFile.of(mapped) is not None


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_a_mapped_build_never_indexes_the_map_and_equals_one_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    data = clustered(1500, seed=3)
    monkeypatch.setattr(ann, "BLOCK_ROWS", 333)  # odd blocks
    want = build_vector_index("faiss", DIM, data, kind)
    mapped = load_vectors(written(tmp_path, data), DIM)

    def refuse(self: np.memmap, key: object) -> np.ndarray:
        raise AssertionError(f"the build indexed the map: [{key!r}]")

    monkeypatch.setattr(np.memmap, "__getitem__", refuse)  # only file reads may serve rows
    got = build_vector_index("faiss", DIM, mapped, kind)
    monkeypatch.undo()
    assert isinstance(got, FaissIndex) and isinstance(want, FaissIndex)
    assert got.params == want.params and got.recall == want.recall
    assert (
        faiss.serialize_index(got._index).tobytes() == faiss.serialize_index(want._index).tobytes()
    )
    q = clustered(40, seed=9)
    a, b = got.search(q, 10), want.search(q, 10)
    assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores)


def test_block_size_does_not_change_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding in smaller blocks (bounded memory) builds the same lists, tuned the same."""
    data = clustered(2000, seed=4)
    out = []
    for block in (2000, 512, 333):
        monkeypatch.setattr(ann, "BLOCK_ROWS", block)
        index = build_vector_index("faiss", DIM, data, "ivf")
        assert isinstance(index, FaissIndex)
        out.append((faiss.serialize_index(index._index).tobytes(), index.params, index.recall))
    assert out[0] == out[1] == out[2]


def _lists_and_vectors(path: Path) -> tuple[list[tuple[object, ...]], bytes]:
    gen, m = IndexDir(path).manifest()
    (ref,) = segment_refs(gen, m)
    seg = gen.parent / ref.name
    conn = sqlite3.connect(f"{(seg / 'chunks.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        lists = conn.execute("SELECT * FROM kw_lists ORDER BY level, term").fetchall()
    finally:
        conn.close()
    return lists, (seg / "vectors.npy").read_bytes()


def test_a_merge_in_small_blocks_writes_the_same_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old segments' postings decoded a few at a time and vectors copied a few rows at a time
    (both read from the file) give the merged segment the block-at-once path gave."""
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)  # keep every write's segment
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)
    words = "tide reef gull keel mast dock sail rope wave anchor".split()
    rng = np.random.default_rng(2)
    ix = SemanticIndex(path=tmp_path / "a", embedder=FakeEmbedder())
    for part in range(4):
        texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 9)))) for _ in range(37)]
        ix.add_texts(texts, ids=[f"d{part}-{i}" for i in range(len(texts))])
    ix.delete(["d1-3", "d2-0"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    SemanticIndex.load(tmp_path / "a", embedder=FakeEmbedder()).optimize()
    monkeypatch.setattr(inverted, "_READ_POSTINGS", 5)
    monkeypatch.setattr(builder, "COPY_BLOCK", 7)
    SemanticIndex.load(tmp_path / "b", embedder=FakeEmbedder()).optimize()
    a, b = _lists_and_vectors(tmp_path / "a"), _lists_and_vectors(tmp_path / "b")
    assert len(a[0]) == len(words) and a == b
