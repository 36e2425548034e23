"""A sharded generation answers exactly as the local searcher: same hits, same order, scores
within 1e-6, in every mode, with segments and tombstones spread over 1-4 groups (replicas in
this process; tests/test_shard_ray.py runs them as Ray actors)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import semsearch.indexing.merge as merge
import semsearch.shard.remote as remote_module
from semsearch import SemanticIndex
from semsearch.api.hits import Hit
from semsearch.search.keyword import query_terms
from semsearch.search.request import SearchOptions
from semsearch.shard.groups import LocalGroups, ShardUnavailable
from semsearch.shard.placement import Sharding, plan_segments
from semsearch.shard.remote import NEAR_CACHE, ShardedKeyword, ShardedSemanticIndex
from semsearch.store import IndexDir
from semsearch.store.manifest import SegmentRef, segment_refs

from .conftest import FakeEmbedder

WORDS = "harbour lighthouse tide anchor sail rope gull wave reef keel mast dock".split()
QUERIES = ["reef anchor", "lighthouse", "harbr tide", "gull gull wave", "item7 keel", "nothing"]
OPTIONS = [
    SearchOptions(k=5, mode="dense"),
    SearchOptions(k=5, mode="keyword"),
    SearchOptions(k=5, mode="hybrid"),
    SearchOptions(k=12, mode="hybrid", group="file"),
    SearchOptions(k=7, mode="hybrid", diverse=True),
    SearchOptions(k=6, mode="keyword", per_source=1),
    SearchOptions(k=9, mode="dense", where={"lang": "en"}),
    SearchOptions(k=9, mode="hybrid", where={"lang": "de"}),
    SearchOptions(k=40, mode="keyword", collapse=False),
]


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 40))))
        out.append(f"{words} item{i}. " + ("Second part. " + words) * int(rng.integers(0, 3)))
    return out


def build(path: Path, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> SemanticIndex:
    """Five segments (no merges), with upserts and deletes leaving tombstones in older ones,
    and a few exact copies of one text (ties)."""
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)
    ix = SemanticIndex(embedder=embedder, path=path, backend="numpy", chunk_tokens=32, overlap=0)
    for batch in range(3):
        t = texts(17 + batch, seed=batch)
        ids = [f"b{batch}-{i}" for i in range(len(t))]
        meta = [{"lang": "en" if i % 3 else "de"} for i in range(len(t))]
        ix.add_texts(t, ids=ids, metadata=meta)
    ix.upsert(
        ["reef anchor reef", "reef anchor reef", "a new lighthouse keel"],
        ids=["b0-3", "b1-4", "b2-5"],
    )
    ix.delete(["b0-7", "b1-1", "b2-11"])
    return ix


@pytest.fixture
def built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, FakeEmbedder, SemanticIndex]:
    emb = FakeEmbedder()
    path = tmp_path / "ix"
    ix = build(path, emb, monkeypatch)
    gen, m = IndexDir(path).manifest()
    assert len(segment_refs(gen, m)) >= 4
    assert (gen / "tombstones.json").is_file()
    return path, emb, ix


def sharded(
    path: Path, emb: FakeEmbedder, groups: int, replicas: int = 1
) -> tuple[SemanticIndex, LocalGroups, Sharding]:
    g = LocalGroups(str(path), groups, replicas)
    sharding = Sharding(g)
    return ShardedSemanticIndex.bound(sharding).load(path, embedder=emb), g, sharding


def same(a: list[Hit], b: list[Hit]) -> None:
    assert [(h.chunk_id, h.doc_id) for h in a] == [(h.chunk_id, h.doc_id) for h in b]
    for x, y in zip(a, b, strict=True):
        for name in ("score", "dense_score", "keyword_score", "cosine", "bm25", "dense_weight"):
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:
                assert abs(u - v) <= 1e-6, (name, u, v)
        assert [p.chunk_id for p in x.more] == [p.chunk_id for p in y.more]
        assert x.also_in == y.also_in


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 7])  # 7: more groups than segments
def test_every_mode_answers_as_the_local_searcher(built: Any, groups: int) -> None:
    path, emb, local = built
    remote, _, _ = sharded(path, emb, groups)
    assert remote.generation == local.generation
    for opts in OPTIONS:
        want = local.search_with(QUERIES, opts)
        got = remote.search_with(QUERIES, opts)
        assert any(want), opts
        for w, g in zip(want, got, strict=True):
            same(w, g)


def test_keyword_statistics_are_global(built: Any) -> None:
    """BM25 of a term equals the one-index value although no group holds every segment."""
    path, emb, local = built
    remote, _, _ = sharded(path, emb, 3)
    lkw = local.live.view.store.keyword_index()  # type: ignore[union-attr]
    rkw = remote.live.view.store.keyword_index()  # type: ignore[union-attr]
    assert isinstance(rkw, ShardedKeyword) and not isinstance(lkw, ShardedKeyword)
    assert (rkw.n_chunks, rkw.n_docs) == (lkw.n_chunks, lkw.n_docs)
    for level in (0, 1):
        terms = ["reef", "anchor", "reef", "item7", "absent"]
        a, b = lkw.score(terms, level), rkw.score(terms, level)
        assert np.array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-9)
    assert rkw.document_frequencies(["reef", "gull", "zzz"]) == lkw.document_frequencies(
        ["reef", "gull", "zzz"]
    )
    assert rkw.near("l", 5, 12) == lkw.near("l", 5, 12)
    rows = np.arange(0, local.live.view.store.rows, 3)  # type: ignore[union-attr]
    assert np.array_equal(rkw.doc_of(rows), lkw.doc_of(rows))
    keys = lkw.doc_of(rows)[:10].tolist()
    assert rkw.doc_ids(keys) == lkw.doc_ids(keys)


def test_a_new_generation_is_loaded_everywhere_before_it_answers(built: Any) -> None:
    path, emb, local = built
    remote, groups, _ = sharded(path, emb, 2)
    old = remote.generation
    local.upsert(["gull lighthouse brand new text"], ids=["fresh"])
    assert remote.reload_if_changed()
    new = remote.generation
    assert new != old
    for member in groups.members:
        assert new in member[0].generations()  # every group holds it before the switch
    gc.collect()
    assert all(old not in m[0].generations() for m in groups.members)  # old view gone: freed
    hits = remote.search("brand new gull", k=3, mode="keyword")
    assert hits[0].doc_id == "fresh"
    same(local.search("brand new gull", k=3), remote.search("brand new gull", k=3))


class Dying:
    """A replica that has died: every call fails."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            raise ConnectionError("actor died")

        return fail


def test_a_lost_replica_is_replaced_by_another_and_a_lost_group_is_a_clear_error(
    built: Any,
) -> None:
    path, emb, local = built
    remote, groups, _ = sharded(path, emb, 2, replicas=2)
    groups.members[1][0] = Dying()  # type: ignore[call-overload]
    groups.members[1][1].ping()
    for _ in range(3):  # whichever replica the turn picks, the answer is whole
        same(local.search("reef anchor", k=5), remote.search("reef anchor", k=5))
    assert (1, 0) in groups.lost and groups.unavailable() is None
    groups.members[1][1] = Dying()  # type: ignore[call-overload]
    with pytest.raises(ShardUnavailable, match="shard 1 of 2 has no live replica"):
        remote.search("reef anchor", k=5)
    assert groups.unavailable() is not None


def ref(name: str, rows: int) -> SegmentRef:
    return SegmentRef(name, rows, {})


@pytest.mark.parametrize("groups", [1, 2, 3, 5])
def test_segments_are_balanced_by_rows_and_stay_where_they_were(groups: int) -> None:
    rng = np.random.default_rng(groups)
    refs = [ref(f"gen-{i:06d}", int(r)) for i, r in enumerate(rng.integers(1, 1000, 11))]
    at = plan_segments(refs, groups, {})
    load = [sum(r.rows for r, g in zip(refs, at, strict=True) if g == x) for x in range(groups)]
    biggest = max(r.rows for r in refs)
    assert max(load) - min(load) <= biggest  # greedy: no group ahead by more than one segment
    sticky = {r.name: g for r, g in zip(refs, at, strict=True)}
    more = [*refs[2:], ref("gen-000099", 5)]
    again = plan_segments(more, groups, sticky)
    assert again[:-1] == at[2:]


def count_rounds(groups: Any) -> list[str]:
    """The method of each fan-out round ``groups`` makes from now on, in order."""
    calls: list[str] = []
    fan_out = groups.fan_out

    def counted(c: Any) -> Any:
        calls.append(next(iter(c.values())).method)
        return fan_out(c)

    groups.fan_out = counted
    return calls


def test_a_hybrid_query_takes_few_rounds(built: Any) -> None:
    """One vector search (its pool also serves the feedback pass), one scoring round and
    (for new terms) one frequency round; the documents of rows come with them, so no round
    of its own."""
    path, emb, local = built
    remote, groups, _ = sharded(path, emb, 3)
    calls = count_rounds(groups)
    same(local.search("reef anchor gull", k=5), remote.search("reef anchor gull", k=5))
    assert sorted(calls) == ["score", "search", "terms"]
    calls.clear()
    remote.search("anchor reef", k=5)  # the terms' frequencies are known by now
    assert sorted(calls) == ["score", "search"]


def test_a_typo_costs_no_round_of_its_own_and_is_corrected_as_locally(built: Any) -> None:
    path, emb, local = built
    remote, groups, _ = sharded(path, emb, 2)
    remote.search("warmup", k=1, mode="keyword")
    calls = count_rounds(groups)
    for q in ("lighthuose", "anchr harbuor reef", "lighthuose"):
        same(local.search(q, k=5, mode="keyword"), remote.search(q, k=5, mode="keyword"))
    # lighthuose: terms (its frequencies, and as no group holds it, its close spellings
    # with theirs), score; two typos: the same two rounds; the repeat: score only
    # (frequencies and candidates are kept for the generation).
    assert calls == ["terms", "score", "terms", "score", "score"]


@pytest.mark.parametrize("memo", [NEAR_CACHE, 1])  # 1: the thread forgets typos at once
def test_typos_sharing_a_range_are_each_corrected_as_locally(
    built: Any, memo: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``near`` answers a range from the close spellings of every typo of it the thread has
    met; each caller's own are among them, and a forgotten range takes the full round."""
    monkeypatch.setattr(remote_module, "NEAR_CACHE", memo)
    path, emb, local = built
    remote, _, _ = sharded(path, emb, 3)
    lkw = local.live.view.store.keyword_index()  # type: ignore[union-attr]
    rkw = remote.live.view.store.keyword_index()  # type: ignore[union-attr]
    # anchr, ancor, achor: one range ('a', 4, 6), different close spellings
    for q in ("anchr ancor achor", "ancor reef", "achor", "anchr harbuor", "lighthuose anchr"):
        for mode in ("keyword", "hybrid"):
            same(local.search(q, k=5, mode=mode), remote.search(q, k=5, mode=mode))
        assert query_terms(rkw, q) == query_terms(lkw, q)


def test_frequency_caches_cleared_mid_query_answer_as_locally(
    built: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches of size 0 are cleared by every lookup, including one the same query makes for
    its typos' close spellings after its own terms were fetched: answers stay the local ones."""
    monkeypatch.setattr(remote_module, "DF_CACHE", 0)
    monkeypatch.setattr(remote_module, "NEAR_CACHE", 0)
    path, emb, local = built
    remote, _, _ = sharded(path, emb, 2)
    for q in ("anchr reef harbour", "lighthuose anchr", "anchr reef harbour", "reef"):
        for mode in ("keyword", "hybrid"):
            same(local.search(q, k=5, mode=mode), remote.search(q, k=5, mode=mode))


@pytest.mark.parametrize("command", ["serve", "mcp"])
def test_an_unknown_engine_is_one_usage_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semsearch.cli import main

    code = main([command, "--index", str(tmp_path), "--engine", "spark"])
    err = capsys.readouterr().err
    assert code == 2 and "must be local or ray" in err and "Traceback" not in err


def test_code_signals_on_chunk_hits_are_the_same_sharded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ungrouped hits in code take the definition and test-file signals; a sharded index
    applies them too, so its answers stay the local ones."""
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)
    src = tmp_path / "src"
    (src / "tests").mkdir(parents=True)
    (src / "retry.py").write_text(
        "def backoff_delay(attempt):\n    return min(60, 2 ** attempt)\n\n\n"
        "class Retry:\n    def wait(self, attempt):\n        return backoff_delay(attempt)\n"
    )
    (src / "client.py").write_text(
        "from retry import backoff_delay\n\n\ndef call(n):\n    return backoff_delay(n) + 1\n"
    )
    (src / "tests" / "test_retry.py").write_text(
        "from retry import backoff_delay\n\n\ndef test_backoff_delay():\n"
        "    assert backoff_delay(1) == 2\n"
    )
    emb = FakeEmbedder()
    path = tmp_path / "ix"
    ix = SemanticIndex(embedder=emb, path=path, backend="numpy", chunk_tokens=32, overlap=0)
    ix.add_paths([src / "retry.py"])
    ix.add_paths([src / "client.py", src / "tests"])
    local = SemanticIndex.load(path, embedder=emb)
    remote, _, _ = sharded(path, emb, 2)
    plain = SearchOptions(k=5, mode="keyword")
    hits = local.search_with(["backoff_delay"], plain)[0]
    assert hits and hits[0].doc_id.endswith("retry.py")  # the definition, not a caller
    for mode in ("dense", "keyword", "hybrid"):
        opts = SearchOptions(k=5, mode=mode)
        q = ["backoff_delay"]
        same(local.search_with(q, opts)[0], remote.search_with(q, opts)[0])
