"""RayEngine on a real two-node Ray cluster (head + one worker node, both on this machine).

A Ray build must be indistinguishable from a local one, survive a worker process dying
mid-shard, and leave the previous index intact when it fails for good. One cluster serves
the whole module; each build still starts its actors (and loads the model) afresh, which is
where most of the time goes. Without Ray those tests skip with the install hint; the
missing-Ray error and the driver's reordering are checked without a cluster.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.api import SemanticIndex
from semsearch.embed import Embedder, load_embedder
from semsearch.errors import MissingDependencyError, ModelError
from semsearch.indexing import BuildStats, Changes, Settings, build
from semsearch.indexing.engine import ChunkParams, Engine, Item, LocalEngine
from semsearch.indexing.ray import RayBuildError, RayEngine, ShardWorker, _describe
from semsearch.ingest.chunk import DEFAULT_CHUNK_TOKENS
from semsearch.ingest.document import documents_from_texts
from semsearch.store import CHUNKS, VECTORS, IndexDir
from semsearch.store.chunkstore import ChunkStore
from semsearch.store.records import ChunkRecord

from .conftest import SEEDS, FakeEmbedder

#: Engine parity is checked at the default precision (int8), bit for bit: a text's vector
#: does not depend on its batch or on the actor's thread count (tests/test_determinism.py).
DEFAULT = functools.partial(load_embedder, None)


@pytest.fixture(scope="module")
def real_embedder() -> Embedder:
    return DEFAULT()


NO_RAY = "Ray is not installed: pip install 'semsearch[ray]' to run the Ray engine tests"
QUERIES = ["trade decline", "how are the vectors stored", "a river in winter"]
#: Items per shard: small, so five-plus documents make several shards for two workers.
SHARD = 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head node and one worker node, one CPU each, joined by this process as the driver."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    pytest.importorskip("ray.data", reason=NO_RAY)
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        c.add_node(num_cpus=1)
        ray.init(address=c.address, log_to_driver=False, logging_level=logging.WARNING)
        c.wait_for_nodes()
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Item]]:
    """Seeds, a few odd files (multi-chunk, non-ASCII, empty, binary) and two raw texts."""
    root = tmp_path_factory.mktemp("corpus")
    for f in sorted(SEEDS.glob("*.txt")):
        shutil.copy(f, root / f.name)
    (root / "long.txt").write_text(
        "\n".join(f"Line {i}: the river froze early that winter." for i in range(120)), "utf-8"
    )
    (root / "unicode.md").write_text("Café naïve — 東京 and Zürich.\nSecond line ✓\n", "utf-8")
    (root / "empty.txt").write_text("", "utf-8")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02binary\x00" * 64)
    docs = documents_from_texts(
        ["Vectors are stored as float32 rows in a .npy file.", "Trade fell sharply last year."],
        ids=["raw-a", "raw-b"],
        metadata=[{"k": 1}, None],
    )
    return root, [*sorted(root.iterdir()), *docs]


def build_with(
    index: Path, corpus: tuple[Path, list[Item]], engine: Engine, embedder: Embedder
) -> BuildStats:
    """What ``api.index_paths`` does, with the engine chosen by the caller."""
    root, items = corpus
    settings = Settings(
        model=embedder.name,
        precision=embedder.precision,
        dim=embedder.dim,
        chunk_tokens=DEFAULT_CHUNK_TOKENS,
        overlap=0,
        backend="auto",
    )
    return build(IndexDir(index), Changes(items=items, roots=[root]), engine, settings)


def contents(index: Path) -> tuple[list[ChunkRecord], np.ndarray]:
    """Every chunk record in row order, and every vector."""
    gen = IndexDir(index).current()
    store = ChunkStore.open_readonly(gen / CHUNKS)
    try:
        records = store.fetch(range(store.count_chunks()))
    finally:
        store.close()
    return [records[i] for i in sorted(records)], np.load(gen / VECTORS, allow_pickle=False)


def hits(index: Path, embedder: Embedder) -> tuple[list[Any], np.ndarray]:
    """The top five chunks for each query, and their scores."""
    found = SemanticIndex.load(index, embedder=embedder).search_batch(QUERIES, k=5)
    return [[(h.doc_id, h.chunk_id, h.text) for h in q] for q in found], np.array(
        [[h.score for h in q] for q in found]
    )


@pytest.fixture(scope="module")
def local_index(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: tuple[Path, list[Item]],
    real_embedder: Embedder,
) -> Path:
    index = tmp_path_factory.mktemp("local") / "index"
    build_with(index, corpus, LocalEngine(real_embedder), real_embedder)
    return index


def assert_same_index(got: Path, want: Path, embedder: Embedder) -> None:
    got_rows, got_vectors = contents(got)
    want_rows, want_vectors = contents(want)
    assert got_rows == want_rows
    assert got_vectors.shape == want_vectors.shape
    np.testing.assert_array_equal(got_vectors, want_vectors)
    got_hits, got_scores = hits(got, embedder)
    want_hits, want_scores = hits(want, embedder)
    assert got_hits == want_hits
    np.testing.assert_array_equal(got_scores, want_scores)


@pytest.mark.slow
def test_ray_build_matches_local_build(
    cluster: Any,
    corpus: tuple[Path, list[Item]],
    local_index: Path,
    real_embedder: Embedder,
    tmp_path: Path,
) -> None:
    expect = (real_embedder.name, real_embedder.precision, real_embedder.dim)
    cache = tmp_path / "embeddings.sqlite"

    def engine() -> RayEngine:
        return RayEngine(
            None, make_embedder=DEFAULT, batch_size=SHARD, expect=expect, embedding_cache=cache
        )

    first = engine()
    assert first._pool(shards=6) == (2, 1)  # one single-CPU actor per node
    stats = build_with(tmp_path / "index", corpus, first, real_embedder)
    assert stats.skipped == 1  # blob.bin, reported like LocalEngine reports it
    assert first.counts.skipped == [str(corpus[0] / "blob.bin")]
    assert stats.documents == len(corpus[1]) - 1
    assert_same_index(tmp_path / "index", local_index, real_embedder)
    chunks = len(contents(local_index)[0])
    assert (first.counts.embedded, first.counts.cache_hits) == (chunks, 0)
    # The actors filled the cache: a second build embeds nothing, with the same result.
    second = engine()
    build_with(tmp_path / "again", corpus, second, real_embedder)
    assert (second.counts.embedded, second.counts.cache_hits) == (0, chunks)
    assert_same_index(tmp_path / "again", local_index, real_embedder)


@pytest.mark.slow
def test_worker_dying_mid_shard_is_retried(
    monkeypatch: pytest.MonkeyPatch,
    cluster: Any,
    corpus: tuple[Path, list[Item]],
    local_index: Path,
    real_embedder: Embedder,
    tmp_path: Path,
) -> None:
    flag = tmp_path / "crashed"
    victim = str(corpus[0] / "long.txt")

    class CrashOnce(ShardWorker):  # defined here, so Ray ships it to workers by value
        def read(self, described: Any) -> Any:
            if described.get("path") == victim and not flag.exists():
                flag.touch()
                os._exit(1)  # the worker process dies, as on OOM or a segfault
            return super().read(described)

    engine = RayEngine(None, make_embedder=DEFAULT, batch_size=SHARD, num_workers=1)
    engine.worker_class = CrashOnce
    # As on a multi-machine cluster: shards come back through the object store, not files.
    monkeypatch.setattr(engine, "_shared_fs", lambda: False)
    build_with(tmp_path / "index", corpus, engine, real_embedder)
    assert flag.exists()
    assert_same_index(tmp_path / "index", local_index, real_embedder)


@pytest.mark.slow
def test_failed_build_leaves_previous_index_intact(
    cluster: Any,
    corpus: tuple[Path, list[Item]],
    local_index: Path,
    real_embedder: Embedder,
    tmp_path: Path,
) -> None:
    index = tmp_path / "index"
    shutil.copytree(local_index, index)
    before = contents(index)
    root = corpus[0]
    (root / "new.txt").write_text("A new file the broken worker never gets past.", "utf-8")
    victim = str(root / "new.txt")

    class AlwaysCrash(ShardWorker):
        def read(self, described: Any) -> Any:
            if described.get("path") == victim:
                os._exit(1)
            return super().read(described)

    # No retries: with Ray Data's default (restart forever) this test would never end.
    engine = RayEngine(None, make_embedder=DEFAULT, batch_size=SHARD, num_workers=1, retries=0)
    engine.worker_class = AlwaysCrash
    items = [*corpus[1], root / "new.txt"]
    try:
        with pytest.raises(RayBuildError, match=r"^Ray build failed: .*worker process died"):
            build_with(index, (root, items), engine, real_embedder)
    finally:
        (root / "new.txt").unlink()
    after = contents(index)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    assert SemanticIndex.load(index, embedder=real_embedder).verify() == []
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize("via_files", [True, False], ids=["shard-files", "object-store"])
def test_shards_finishing_out_of_order_are_yielded_in_input_order(
    corpus: tuple[Path, list[Item]], fake: FakeEmbedder, tmp_path: Path, via_files: bool
) -> None:
    """The driver half alone, fed a worker's real output in reverse order (no cluster)."""
    pytest.importorskip("ray", reason=NO_RAY)
    items = corpus[1]
    params = ChunkParams(DEFAULT_CHUNK_TOKENS, 0)
    out_dir = tmp_path if via_files else None
    worker = ShardWorker(
        lambda: fake, params.chunk_tokens, params.overlap, str(out_dir) if out_dir else None, None
    )
    shards = [items[a : a + SHARD] for a in range(0, len(items), SHARD)]
    rows = []
    for k, shard in enumerate(shards):
        described = json.dumps([_describe(i) for i in shard])
        batch = worker({"shard": np.array([k]), "items": np.array([described], dtype=object)})
        rows.append({c: batch[c][0] for c in batch})
    engine = RayEngine(None, expect=(fake.name, fake.precision, fake.dim))
    got = list(engine._in_order(iter(reversed(rows)), shards, out_dir))
    want = list(LocalEngine(fake).process(items, params))
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want, strict=True):
        if g is not None and w is not None:
            assert (g.doc, g.rows) == (w.doc, w.rows)
            np.testing.assert_allclose(g.vectors, w.vectors, atol=1e-6)
    assert engine.counts.skipped == [str(corpus[0] / "blob.bin")]
    assert list(tmp_path.iterdir()) == []  # shard files are removed once read

    if not via_files:  # a worker with another model fails the build, it does not mix vectors
        engine.expect = ("another-model", "fp32", fake.dim)
        with pytest.raises(ModelError, match="another-model"):
            list(engine._in_order(iter(rows), shards, None))


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs with or without Ray installed: without it this is the real thing."""
    monkeypatch.setitem(sys.modules, "ray", None)  # makes ``import ray`` raise ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingDependencyError) as err:
        RayEngine(None)
    assert str(err.value) == "ray is not installed: pip install 'semsearch[ray]'"


def test_no_address_starts_its_own_ray_never_one_found_on_the_machine() -> None:
    """Ray's ``init()`` with no address joins the newest cluster started on the machine
    (another user's or another test run's); the engine asks for its own local instance."""
    pytest.importorskip("ray", reason=NO_RAY)
    pytest.importorskip("ray.data", reason=NO_RAY)
    engine = RayEngine(None)
    asked: list[dict[str, Any]] = []

    class Recorder:
        def is_initialized(self) -> bool:
            return False

        def init(self, **kwargs: Any) -> None:
            asked.append(kwargs)

    engine.ray = Recorder()
    engine.connect()
    assert [a["address"] for a in asked] == ["local"]
    assert engine._started_ray


def test_actors_cap_onnx_threads_to_their_cpus(
    fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An actor given one CPU makes single-threaded ONNX sessions (and torch), not one thread
    per core of the machine; the cap is set before the model loads."""
    from semsearch.embed import onnx_runtime

    monkeypatch.setattr(onnx_runtime, "_thread_limit", None)
    seen = []

    def make() -> FakeEmbedder:
        seen.append(onnx_runtime._cpu_count())
        return fake

    ShardWorker(make, DEFAULT_CHUNK_TOKENS, 0, None, 1)
    assert seen == [1]
    assert onnx_runtime._cpu_count() == 1


def test_ray_log_lines_stay_out_of_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    """Lines Ray's C++ core and loggers write to fd 2 are dropped; ours, and partial progress
    redraws, pass through; with verbose everything passes."""
    from semsearch.indexing.ray import _ray_log_lines_hidden

    ray_c = b"[2026-11-27 21:47:57,580 E 24479 24479] core_worker.cc:2465: Actor with ...\n"
    ray_py = b"2026-11-27 21:47:20,152\tWARNING authentication_token_setup.py:85 -- Token ...\n"
    with _ray_log_lines_hidden(True):
        os.write(2, ray_c)
        print("semsearch: our own message", file=sys.stderr, flush=True)
        os.write(2, b"\rIndexing  40%")
        os.write(2, ray_py)
        os.write(2, b"\rIndexing 100%\n")
    err = capfd.readouterr().err
    assert "core_worker" not in err and "authentication" not in err
    assert "semsearch: our own message\n" in err
    assert "\rIndexing  40%" in err and "\rIndexing 100%\n" in err
    with _ray_log_lines_hidden(False):
        os.write(2, ray_c)
    assert "core_worker" in capfd.readouterr().err
