"""Segments and tombstones: a write costs O(change), old segments are never touched, deletes
are tombstones, unreferenced segments are collected, and old single-file indexes convert."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import semsearch.indexing.merge as merge
import semsearch.store.layout as layout
from semsearch import SemanticIndex
from semsearch.indexing.merge import choose_merges
from semsearch.store import IndexDir
from semsearch.store.manifest import FORMAT_VERSION, segment_refs

from .conftest import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
WORDS = "harbour lighthouse tide anchor sail rope gull wave reef keel mast dock".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=8)) + f" item{i}" for i in range(n)]


@pytest.fixture
def no_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write keeps every old segment (the policy is tested on its own)."""
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)


def _segments(path: Path) -> list[str]:
    gen, m = IndexDir(path).manifest()
    return [s.name for s in segment_refs(gen, m)]


def _snapshot(path: Path, seg: str) -> dict[str, tuple[int, int, int]]:
    """Inode, size and mtime of each file of a segment: unchanged means untouched."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in (path / seg).iterdir()
        if p.name != "manifest.json"
    }


def test_an_upsert_writes_one_small_segment_and_leaves_the_old_untouched(
    tmp_path: Path, no_merges: None
) -> None:
    path = tmp_path / "ix"
    ix = SemanticIndex(embedder=FakeEmbedder(), path=path, backend="numpy")
    ix.add_texts(_texts(40), ids=[f"d{i}" for i in range(40)])
    first = _segments(path)
    before = _snapshot(path, first[0])
    ix.upsert(["a brand new text about the reef"], ids=["d3"])
    segs = _segments(path)
    assert segs[:-1] == first and len(segs) == 2
    assert _snapshot(path, first[0]) == before
    gen, m = IndexDir(path).manifest()
    own = segment_refs(gen, m)[-1]
    assert own.name == gen.name and own.rows == 1  # only the changed document was written
    assert json.loads((gen / "tombstones.json").read_text()) == {first[0]: ["d3"]}
    assert m.documents == 40 and m.chunks == 40 and len(ix) == 40
    hits = ix.search("brand new reef", k=3, mode="keyword")
    assert hits[0].doc_id == "d3" and "brand new" in hits[0].text
    assert all("item3" not in h.text for h in ix.search("item3", k=40, mode="keyword"))


def test_a_delete_is_a_tombstone_and_hides_the_document_everywhere(
    tmp_path: Path, no_merges: None
) -> None:
    path = tmp_path / "ix"
    ix = SemanticIndex(embedder=FakeEmbedder(), path=path, backend="numpy")
    ix.add_texts(_texts(30), ids=[f"d{i}" for i in range(30)])
    seg = _segments(path)[0]
    before = _snapshot(path, seg)
    chunk_id = ix.search("item7", k=1, mode="keyword")[0].chunk_id
    assert ix.delete(["d7"]) == 1
    gen, m = IndexDir(path).manifest()
    assert _segments(path) == [seg] and _snapshot(path, seg) == before
    assert not (gen / "chunks.sqlite").exists()  # nothing of its own: only a tombstone
    assert m.documents == 29 and m.chunks == 29 and len(ix) == 29
    for mode in ("dense", "keyword", "hybrid"):
        assert all(h.doc_id != "d7" for h in ix.search("item7", k=30, mode=mode))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="no document"):
        ix.document("d7")
    with pytest.raises(Exception, match="no chunk"):
        ix.chunk(chunk_id)
    again = SemanticIndex.load(path, embedder=FakeEmbedder())
    assert "d7" not in {d.doc_id for d in again.live.require().store.documents()}


def test_dense_search_over_segments_equals_one_segment(tmp_path: Path, no_merges: None) -> None:
    """Exact merging: the same live documents written in one go and in many writes with
    deletes and updates between rank identically, scores included."""
    texts = _texts(60, seed=3)
    ids = [f"d{i}" for i in range(60)]
    one = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "one", backend="numpy")
    many = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "many", backend="numpy")
    final = dict(zip(ids, texts, strict=True))
    final["d5"] = "an updated text about gulls and keels"
    del final["d9"]
    one.add_texts(list(final.values()), ids=list(final))
    for start in range(0, 60, 13):
        many.add_texts(texts[start : start + 13], ids=ids[start : start + 13])
    many.upsert([final["d5"]], ids=["d5"])
    many.delete(["d9"])
    assert len(_segments(tmp_path / "many")) > 3
    for q in ["harbour gull", "keel reef item5", "wave"]:
        a, b = one.search(q, k=20, mode="dense"), many.search(q, k=20, mode="dense")
        assert [h.chunk_id for h in a] != [] and [h.doc_id for h in a] == [h.doc_id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-6)


def test_unreferenced_segments_are_collected_and_referenced_ones_kept(
    tmp_path: Path, no_merges: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "_GRACE_SECONDS", 0.0)
    path = tmp_path / "ix"
    ix = SemanticIndex(embedder=FakeEmbedder(), path=path, backend="numpy")
    ix.add_texts(_texts(10), ids=[f"d{i}" for i in range(10)])
    for n in range(4):
        time.sleep(0.01)
        ix.upsert([f"replacement {n}"], ids=["d1"])
    present = {p.name for p in path.iterdir() if p.name.startswith("gen-")}
    live = set(_segments(path))
    # The first segment is still searched; the replaced copies of d1 (fully dead segments
    # are merged away) and superseded generations beyond the last one are gone.
    assert "gen-000001" in live and live <= present
    assert len(present - live) <= 1  # the previous generation, kept for readers
    monkeypatch.setattr(merge, "TIER_FACTOR", 4)
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 64)
    ix.upsert(["one more"], ids=["d2"])  # the policy merges everything small into one
    assert len(_segments(path)) == 1
    ix.upsert(["and another"], ids=["d3"])
    assert "gen-000001" not in {p.name for p in path.iterdir()}


def test_an_index_written_by_format_2_opens_and_converts_on_the_next_write(
    tmp_path: Path, no_merges: None
) -> None:
    path = tmp_path / "old"
    shutil.copytree(FIXTURES / "index-v2", path)
    ix = SemanticIndex.load(path, embedder=FakeEmbedder())
    assert ix.info().documents == 6 and ix.settings.backend == "numpy"
    before = {h.doc_id: h.score for h in ix.search("harbour lighthouse", k=6, mode="dense")}
    assert len(before) == 6
    ix.upsert(["Document 2 now talks about reefs only."], ids=["doc-2"])
    gen, m = IndexDir(path).manifest()
    assert m.format_version == FORMAT_VERSION  # rewritten once, with postings: one segment
    assert [s.name for s in segment_refs(gen, m)] == [gen.name]
    assert m.documents == 6 and m.chunks == 6
    again = SemanticIndex.load(path, embedder=FakeEmbedder())
    after = {h.doc_id: h.score for h in again.search("harbour lighthouse", k=6, mode="dense")}
    assert set(after) == set(before)
    for doc_id, score in before.items():
        if doc_id != "doc-2":
            assert after[doc_id] == pytest.approx(score, abs=1e-6)
    assert again.document("doc-4").metadata == {"n": 4}
    assert "reefs" in again.document("doc-2").text


def test_save_copies_every_segment_and_the_tombstones(tmp_path: Path, no_merges: None) -> None:
    ix = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "ix", backend="numpy")
    ix.add_texts(_texts(10), ids=[f"d{i}" for i in range(10)])
    ix.add_texts(_texts(5, seed=2), ids=[f"e{i}" for i in range(5)])
    ix.delete(["d4", "e1"])
    ix.save(tmp_path / "copy")
    copy = SemanticIndex.load(tmp_path / "copy", embedder=FakeEmbedder())
    assert copy.verify() == []
    docs = {d.doc_id for d in copy.live.require().store.documents()}
    assert len(docs) == 13 and "d4" not in docs and "e1" not in docs
    a = [h.doc_id for h in ix.search("harbour", k=13, mode="hybrid")]
    assert a == [h.doc_id for h in copy.search("harbour", k=13, mode="hybrid")]


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([("a", 100_000, 100_000), ("b", 10, 10)], {"b"}),  # small ones fold, big one stays
        ([("a", 10_000, 10_000), ("b", 250, 250), ("c", 10, 10)], {"b", "c"}),
        ([("a", 100_000, 40_000), ("b", 10, 10)], {"a", "b"}),  # mostly dead: rewritten
        ([("a", 10_000, 10_000)], set()),
    ],
)
def test_the_tiered_policy(segments: list[tuple[str, int, int]], expected: set[str]) -> None:
    assert choose_merges(segments) == expected


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        (0, set()),  # a small write leaves two 25k segments alone
        (25_000, {"a", "b"}),  # a third write of the same size folds the tier
        (5_000, set()),  # a write much smaller than them does not
    ],
)
def test_the_policy_counts_the_rows_a_write_brings(incoming: int, expected: set[str]) -> None:
    segments = [("a", 25_000, 25_000), ("b", 25_000, 25_000)]
    assert choose_merges(segments, incoming=incoming) == expected


def test_equal_writes_fold_as_they_go(tmp_path: Path) -> None:
    """Writes of the same size, one after another, keep the segment count logarithmic
    rather than one segment per write."""
    ix = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "ix", backend="numpy")
    counts = []
    for w in range(6):
        ix.add_texts(_texts(300, seed=w), ids=[f"w{w}-{i}" for i in range(300)])
        counts.append(len(_segments(tmp_path / "ix")))
    assert counts[1] == 1 and max(counts) <= 2  # 300 rows is more than 4 × 64
    assert ix.info().chunks == 1800


def test_the_policy_bounds_the_segment_count() -> None:
    many = [(f"s{i}", 10**6 // (i + 1), 10**6 // (i + 1)) for i in range(40)]
    kept = len(many) - len(choose_merges(many))
    assert kept + 1 <= merge.MAX_SEGMENTS
    assert choose_merges(many, everything=True) == {n for n, _, _ in many}


# --- the oracle: many segments answer exactly as the same documents in one ----------------

ORACLE_QUERIES = ["harbour gull", "keel reef item5", "wave", "tide tide anchor", "sial", "zzz"]


def _many_segments(path: Path, n: int) -> SemanticIndex:
    """``n`` documents written in odd-sized batches with updates and deletes between, some
    texts repeated in several documents (ties), some documents of several chunks."""
    ix = SemanticIndex(embedder=FakeEmbedder(), path=path, backend="numpy", chunk_tokens=16)
    texts = _texts(n, seed=n)
    texts[1] = texts[2] = texts[4]  # identical texts: equal scores, ties broken by row
    texts[3] = " ".join(_texts(6, seed=99))  # several chunks
    ids = [f"d{i}" for i in range(n)]
    start = 0
    for size in [7, 3, 11, 1, 5, 13, 2, 9] * n:
        if start >= n:
            break
        ix.add_texts(texts[start : start + size], ids=ids[start : start + size])
        start = min(start + size, n)
        if start > 7:
            ix.upsert([f"updated {texts[start - 3]} keel"], ids=[ids[start - 3]])
        if start > 14 and _present(ix, [ids[start - 11]]):
            ix.delete([ids[start - 11]])
    assert len(_present(ix, ids)) < n and len(_segments(path)) > 3
    return ix


def _present(ix: SemanticIndex, ids: list[str]) -> list[str]:
    store = ix.live.require().store
    return [i for i in ids if store.documents_named(i)]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
@pytest.mark.parametrize("n", [23, 41])
def test_many_segments_rank_exactly_as_one(
    tmp_path: Path, no_merges: None, mode: str, n: int
) -> None:
    many = _many_segments(tmp_path / "many", n)
    shutil.copytree(tmp_path / "many", tmp_path / "one")
    one = SemanticIndex.load(tmp_path / "one", embedder=FakeEmbedder())
    one.optimize()
    assert len(_segments(tmp_path / "one")) == 1
    assert not (IndexDir(tmp_path / "one").current() / "tombstones.json").exists()
    assert len(one) == len(many)
    for q in ORACLE_QUERIES:
        for where in (None, {"source": "d1*"}):
            a = one.search(q, k=15, mode=mode, where=where)  # type: ignore[arg-type]
            b = many.search(q, k=15, mode=mode, where=where)  # type: ignore[arg-type]
            assert [h.chunk_id for h in a] == [h.chunk_id for h in b], (q, where)
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-6, rtol=0)
            if mode != "dense" and q != "zzz" and where is None:
                assert a, q  # the query matches something: the comparison is not empty


# --- backend and index type are the index's own -------------------------------------------


def test_a_numpy_index_stays_numpy_through_upsert_and_refresh(tmp_path: Path) -> None:
    """Regression: ``update``, ``watch``, ``query --refresh`` and ``load().upsert()`` used to
    resolve the backend "auto" afresh and switch an index built with numpy to faiss."""
    from semsearch import index_paths
    from semsearch.indexing import LocalEngine
    from semsearch.watch.delta import refresh

    pytest.importorskip("faiss")  # without faiss, "auto" is numpy anyway: nothing to test
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"f{i}.txt").write_text(f"file {i} about harbour and tide number {i}")
    path = tmp_path / "ix"
    index_paths([docs], path, embedder=FakeEmbedder(), backend="numpy")
    ix = SemanticIndex.load(path, embedder=FakeEmbedder())
    assert ix.settings.backend == "numpy"
    ix.upsert(["a text of its own"], ids=["t1"])
    (docs / "f1.txt").write_text("file 1 now speaks of gulls")
    refresh(IndexDir(path), lambda _m: LocalEngine(FakeEmbedder()))
    gen, m = IndexDir(path).manifest()
    assert m.backend == "numpy" and m.index_type == "flat"
    for ref in segment_refs(gen, m):
        assert "index.faiss" not in ref.files, ref.name
    assert SemanticIndex.load(path, embedder=FakeEmbedder()).live.view.index.backend == "numpy"  # type: ignore[union-attr]


# --- optimize: merges, and recovers from a damaged segment ---------------------------------


def test_optimize_recovers_from_a_damaged_segment(
    tmp_path: Path, no_merges: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from semsearch.cli import main
    from semsearch.errors import IndexFormatError

    path = tmp_path / "ix"
    ix = SemanticIndex(embedder=FakeEmbedder(), path=path, backend="numpy")
    for batch in range(3):
        ix.add_texts(_texts(5, seed=batch), ids=[f"b{batch}-{i}" for i in range(5)])
    ix.delete(["b2-0"])
    damaged = _segments(path)[1]
    sqlite = path / damaged / "chunks.sqlite"
    data = bytearray(sqlite.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    sqlite.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=f"{damaged}/chunks.sqlite") as err:
        SemanticIndex.load(path, embedder=FakeEmbedder())
    assert "\n" not in str(err.value)
    with pytest.raises(IndexFormatError, match="optimize") as err:
        ix.upsert(["new"], ids=["n1"])
    assert "\n" not in str(err.value)
    assert main(["optimize", "--index", str(path)]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and damaged in lines[0] and "left out" in lines[0]
    assert lines[1].startswith("Merged 9 documents")
    again = SemanticIndex.load(path, embedder=FakeEmbedder())
    assert again.verify() == [] and len(_segments(path)) == 1
    kept = {d.doc_id for d in again.live.require().store.documents()}
    assert kept == {f"b{b}-{i}" for b in (0, 2) for i in range(5)} - {"b2-0"}
    assert main(["optimize", "--index", str(path)]) == 0
    assert "Already one segment" in capsys.readouterr().err
