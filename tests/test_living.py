"""Indexes that change while they are used: incremental updates, filters, concurrency, faults."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import IndexFormatError, SemanticIndex, UsageError, index_paths
from semsearch.store import IndexDir
from semsearch.store.npy import load_vectors

from .conftest import REPO, FakeEmbedder


def _write_corpus(root: Path, n: int, salt: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"doc{i:04d}.txt").write_text(
            f"Document {i} {salt} is about topic {i % 13}. It has a second sentence. " * 3
        )


def _chunk_ids(index: SemanticIndex) -> dict[tuple[str, int], int]:
    store = index.live.view.store  # white-box: ids per (doc, ordinal)
    records = store.fetch(range(store.rows))  # dead rows (tombstones) are not returned
    return {(r.doc_id, r.ordinal): r.chunk_id for r in records.values()}


def test_reindex_embeds_only_new_and_changed(tmp_path: Path) -> None:
    corpus, idx = tmp_path / "corpus", tmp_path / "idx"
    _write_corpus(corpus, 20)
    emb = FakeEmbedder()
    first = index_paths([corpus], idx, embedder=emb, chunk_tokens=20)
    assert (first.added, first.unchanged, first.removed) == (20, 0, 0)
    ids_before = _chunk_ids(SemanticIndex.load(idx, embedder=emb))

    same = index_paths([corpus], idx, embedder=emb, chunk_tokens=20)
    assert (same.added, same.updated, same.removed, same.unchanged) == (0, 0, 0, 20)
    assert not same.changed and same.embedded_chunks == 0

    (corpus / "doc0003.txt").write_text("Completely new words about volcanoes and lava.")
    (corpus / "doc0007.txt").unlink()
    (corpus / "extra.txt").write_text("An added file about glaciers.")
    calls = emb.calls
    upd = index_paths([corpus], idx, embedder=emb, chunk_tokens=20)
    assert (upd.added, upd.updated, upd.removed, upd.unchanged) == (1, 1, 1, 18)
    assert emb.calls - calls == 1  # one batch: only the two new texts
    loaded = SemanticIndex.load(idx, embedder=emb)
    ids_after = _chunk_ids(loaded)
    for key, chunk_id in ids_before.items():
        if key[0].endswith(("doc0003.txt", "doc0007.txt")):
            continue
        assert ids_after[key] == chunk_id  # unchanged chunks keep their ids
    assert not any(k[0].endswith("doc0007.txt") for k in ids_after)
    assert loaded.search("volcanoes lava", k=1)[0].source.endswith("doc0003.txt")
    assert loaded.search("glaciers", k=1)[0].source.endswith("extra.txt")


def test_indexing_another_folder_keeps_the_first(tmp_path: Path) -> None:
    a, b, idx = tmp_path / "a", tmp_path / "b", tmp_path / "idx"
    _write_corpus(a, 3, "alpha")
    _write_corpus(b, 2, "beta")
    index_paths([a], idx, embedder=FakeEmbedder())
    stats = index_paths([b], idx, embedder=FakeEmbedder())
    assert stats.documents == 5 and stats.removed == 0


def test_upsert_delete_and_stable_ids(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    index = SemanticIndex(embedder=emb, path=tmp_path / "idx")
    index.add_texts(["red apples", "green pears", "yellow bananas"], ids=["a", "b", "c"])
    before = {h.doc_id: h.chunk_id for h in index.search("fruit apples pears bananas", k=3)}
    stats = index.upsert(["red apples", "ripe green pears"], ids=["a", "b"])
    assert (stats.unchanged, stats.updated) == (1, 1)
    after = {h.doc_id: h.chunk_id for h in index.search("fruit apples pears bananas", k=3)}
    assert after["a"] == before["a"] and after["c"] == before["c"] and after["b"] != before["b"]
    assert index.delete(["c"]) == 1
    assert {h.doc_id for h in index.search("bananas", k=5)} == {"a", "b"}
    with pytest.raises(UsageError, match="matches"):
        index.delete(["nope"])
    reopened = SemanticIndex.load(tmp_path / "idx", embedder=emb)
    assert len(reopened) == 2


@pytest.mark.parametrize("k", [1, 3, 10])
def test_source_filter_returns_k_hits_when_k_match(tmp_path: Path, k: int) -> None:
    emb = FakeEmbedder()
    big = " ".join(f"Trade fell in month {i}." for i in range(200))
    small = " ".join(f"Other note {i} on trade." for i in range(40))
    index = SemanticIndex(embedder=emb, chunk_tokens=20)
    index.add_texts([big, small], ids=["news/big.txt", "notes/small.txt"])
    hits = index.search("trade fell", k=k, where={"source": "notes/*"})
    assert len(hits) == k and all(h.source == "notes/small.txt" for h in hits)
    unfiltered = index.search("trade fell", k=k)
    assert all(h.source == "news/big.txt" for h in unfiltered)  # the filter mattered
    assert index.search("trade", k=3, where={"source": "*.pdf"}) == []


def test_metadata_filter() -> None:
    index = SemanticIndex.from_texts(
        ["a cat", "a dog", "cat food"],
        metadata=[{"lang": "en"}, {"lang": "fr"}, {"lang": "fr"}],
        embedder=FakeEmbedder(),
    )
    assert [h.text for h in index.search("cat", k=5, where={"lang": "fr"})] == ["cat food", "a dog"]


def test_readers_see_old_or_new_never_a_mix(tmp_path: Path) -> None:
    """Every result a reader gets is exactly what one whole published generation answers."""
    emb = FakeEmbedder()
    idx = tmp_path / "idx"
    a, b = tmp_path / "a", tmp_path / "b"
    _write_corpus(a, 30, "alpha")
    _write_corpus(b, 30, "beta")
    queries = ["topic 3 alpha", "topic 5 beta", "second sentence"]

    def answer(index: SemanticIndex) -> tuple[tuple[tuple[str, int, float], ...], ...]:
        return tuple(
            tuple((h.doc_id, h.chunk_id, round(h.score, 4)) for h in hits)
            for hits in index.search_batch(queries, 5)
        )

    index_paths([a], idx, embedder=emb, chunk_tokens=20)
    published = {answer(SemanticIndex.load(idx, embedder=emb))}
    stop = threading.Event()
    seen: list[tuple[tuple[tuple[str, int, float], ...], ...]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(answer(SemanticIndex.load(idx, embedder=emb)))
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(6):  # flip between two corpora, editing one file each time
            src = b if i % 2 == 0 else a
            index_paths([src], idx, embedder=emb, chunk_tokens=20)
            published.add(answer(SemanticIndex.load(idx, embedder=emb)))
            (src / "doc0000.txt").write_text(f"Edited {i}")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert len(published) >= 2  # the generations really did answer differently
    assert len(seen) > 0
    mixed = [s for s in seen if s not in published]
    assert mixed == [], f"{len(mixed)} of {len(seen)} reads matched no published generation"


_BUILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from tests.conftest import FakeEmbedder
    from semsearch import index_paths
    print("start", flush=True)
    index_paths([sys.argv[1]], sys.argv[2], embedder=FakeEmbedder(), chunk_tokens=20)
    print("done", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_at_random_points_never_damages_the_index(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    idx, old, new = tmp_path / "idx", tmp_path / "old", tmp_path / "new"
    _write_corpus(old, 50, "old")
    _write_corpus(new, 1500, "new")
    index_paths([old], idx, embedder=emb, chunk_tokens=20)
    queries = ["topic 5 old", "second sentence", "document 12"]
    before = SemanticIndex.load(idx, embedder=emb).search_batch(queries, 5)
    script = tmp_path / "build.py"
    script.write_text(_BUILD.format(repo=str(REPO)))
    # How long does an uninterrupted run take (after interpreter start)?
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(new), str(tmp_path / "probe")], check=True)
    span = time.perf_counter() - t0
    rng = random.Random(1234)
    points = sorted(rng.uniform(0.0, span) for _ in range(8))
    for delay in points:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(new), str(idx)], stdout=subprocess.PIPE
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = SemanticIndex.load(idx, embedder=emb)
        assert loaded.verify() == []
        got = loaded.search_batch(queries, 5)
        if got != before:  # the kill came after the new generation was published
            assert len(loaded) > 50
            before = got
    index_paths([old], idx, embedder=emb, chunk_tokens=20)  # and it keeps working
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]


class _Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {_MARK}",))


_MARK = "/tmp/semsearch-pickle-executed"


def test_loading_never_unpickles(tmp_path: Path) -> None:
    Path(_MARK).unlink(missing_ok=True)
    idx = tmp_path / "idx"
    index_paths([REPO / "seeds"], idx, embedder=FakeEmbedder())
    gen = IndexDir(idx).current()
    payload = pickle.dumps(np.array([_Exploit()], dtype=object))
    for name in ("vectors.npy", "index.faiss", "chunks.sqlite"):
        original = (gen / name).read_bytes()
        if name == "vectors.npy":
            np.save(gen / name, np.array([_Exploit()], dtype=object), allow_pickle=True)
        else:
            (gen / name).write_bytes(payload)
        if name == "index.faiss":  # derived: refused, and the intact vectors searched instead
            loaded = SemanticIndex.load(idx, embedder=FakeEmbedder())
            assert loaded.live.view.index.backend == "numpy"
        else:
            with pytest.raises(IndexFormatError):
                SemanticIndex.load(idx, embedder=FakeEmbedder())
        (gen / name).write_bytes(original)
    # Even past the size and checksum checks, the vector reader refuses object arrays.
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([_Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(IndexFormatError, match=r"evil\.npy"):
        load_vectors(evil, 64)
    assert not Path(_MARK).exists()
