"""The hybrid path's fast paths against brute-force oracles: the dense pool the feedback pass
ranks from (and the rows it brings), the candidates' vectors read once, the feedback
documents, the cached postings and the code signals' contenders (odd sizes, ties). Query
vectors: tests/test_query_vectors.py."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import semsearch.store.segmented_keyword as segmented_keyword
from semsearch import SemanticIndex
from semsearch.index import build_vector_index
from semsearch.index.base import merge_best
from semsearch.index.segmented import Part, SegmentedIndex, SegmentedVectors
from semsearch.search import filerank, fuse, retrieve
from semsearch.search.fuse import order
from semsearch.search.keyword import keyword_hits

from .conftest import FakeEmbedder
from .test_index import DIM, clustered, oracle, ties
from .test_query_vectors import WORDS, harbour_index

faiss = pytest.importorskip("faiss")


@pytest.fixture(autouse=True)
def _one_thread():
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


# --- search_pool: the best k as search gives them, then the next best, exactly scored --------


@pytest.mark.parametrize("kind", ["numpy", "flat", "ivf", "ivfpq"])
@pytest.mark.parametrize(("n", "k", "pool"), [(7, 3, 5), (301, 10, 64), (1001, 20, 250)])
@pytest.mark.parametrize("data", ["clustered", "ties"])
def test_a_pool_starts_with_search_and_is_exactly_scored(
    kind: str, n: int, k: int, pool: int, data: str
) -> None:
    vectors = clustered(n) if data == "clustered" else ties(n)
    if kind == "numpy":
        index = build_vector_index("numpy", DIM, vectors)
    else:
        index = build_vector_index("faiss", DIM, vectors, kind)
    q = clustered(5, seed=9) if data == "clustered" else ties(5)  # ties: exact products
    got = index.search_pool(q, k, pool)
    top = index.search(q, k)
    assert got.ids.shape[1] >= min(k, n)
    # (faiss's flat k-heap may keep a larger id of a tie at its cut)
    if index.index_type != "flat" or kind == "numpy":
        assert np.array_equal(got.ids[:, : top.ids.shape[1]], top.ids)
        assert np.array_equal(got.scores[:, : top.ids.shape[1]], top.scores)
    for s, i, qv in zip(got.scores, got.ids, q, strict=True):
        real = i >= 0
        assert len(set(i[real].tolist())) == real.sum()
        assert np.allclose(s[real], vectors[i[real]] @ qv, atol=1e-5)
        assert np.array_equal(order(i[real], s[real]), np.arange(real.sum()))  # sorted, ties
    if got.vectors is not None:  # the rows it read to re-score, aligned with the ids
        real = got.ids >= 0
        assert np.array_equal(got.vectors[real], vectors[got.ids[real]])
        assert not got.vectors[~real].any()
    else:
        assert index.index_type not in ("ivf", "ivfpq")  # they bring what they read
    if index.index_type == "flat":  # exact (numpy; faiss built small): the best max(k, pool)
        want_s, want_i = oracle(vectors, q, max(k, pool))
        assert np.allclose(got.scores, want_s, atol=1e-6)
        above = want_s > want_s[:, -1:]  # faiss flat: ties at the cut may keep larger ids
        assert np.array_equal(got.ids[above], want_i[above])
        if kind == "numpy":
            assert np.array_equal(got.ids, want_i)


@pytest.mark.parametrize("sizes", [(13, 1, 29), (40, 17)])
@pytest.mark.parametrize("data", ["clustered", "ties"])
def test_a_pool_over_segments_equals_one_index_over_the_live_rows(
    sizes: tuple[int, ...], data: str
) -> None:
    n = sum(sizes)
    vectors = clustered(n) if data == "clustered" else ties(n)
    dead = np.arange(3, n, 5)
    parts, offset = [], 0
    for size in sizes:
        block = vectors[offset : offset + size]
        mine = dead[(dead >= offset) & (dead < offset + size)] - offset
        parts.append(Part(build_vector_index("numpy", DIM, block), offset, size, mine))
        offset += size
    many = SegmentedIndex(DIM, parts)
    live = np.setdiff1d(np.arange(n), dead)
    q = clustered(4, seed=3) if data == "clustered" else ties(4)
    for k, pool in ((5, 11), (9, 9), (2, 1000)):
        got = many.search_pool(q, k, pool)
        want_s, want_i = oracle(vectors, q, max(k, pool), live)
        assert np.array_equal(got.ids, want_i)
        assert np.allclose(got.scores, want_s, atol=1e-6)
        assert np.array_equal(many.search(q, k).ids, want_i[:, :k])


@pytest.mark.parametrize("kinds", [("ivf", "ivf"), ("ivfpq", "ivf", "ivf"), ("ivf", "numpy")])
@pytest.mark.parametrize("data", ["clustered", "ties"])
def test_pools_merged_over_segments_keep_each_hits_vector(
    kinds: tuple[str, ...], data: str
) -> None:
    sizes = [301 + 97 * i for i in range(len(kinds))]
    n = sum(sizes)
    vectors = clustered(n) if data == "clustered" else ties(n)
    parts, offset = [], 0  # no tombstones: they make small segments answer exactly
    for size, kind in zip(sizes, kinds, strict=True):
        block = vectors[offset : offset + size]
        backend = "numpy" if kind == "numpy" else "faiss"
        searcher = build_vector_index(backend, DIM, block, "flat" if kind == "numpy" else kind)
        parts.append(Part(searcher, offset, size, np.zeros(0, np.int64)))
        offset += size
    many = SegmentedIndex(DIM, parts)
    q = clustered(3, seed=5) if data == "clustered" else ties(3)
    for k, pool in ((4, 50), (10, 1024)):
        got = many.search_pool(q, k, pool)
        alone = [p.searcher.search_pool(q, k, pool) for p in parts]
        real = got.ids >= 0
        want = merge_best(  # the rule every merge follows, from each segment's own pool
            [a.scores for a in alone],
            [np.where(a.ids >= 0, a.ids + p.offset, -1) for a, p in zip(alone, parts, strict=True)],
            max(k, pool),
            len(q),
        )
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.scores, want.scores)
        for s, i in zip(got.scores, got.ids, strict=True):  # sorted, ties to the smaller row
            assert np.array_equal(order(i[i >= 0], s[i >= 0]), np.arange((i >= 0).sum()))
        if "numpy" in kinds:
            assert got.vectors is None and alone[-1].vectors is None
        else:
            assert got.vectors is not None
            assert np.array_equal(got.vectors[real], vectors[got.ids[real]])


@pytest.mark.parametrize("seed", range(5))
def test_rows_read_from_the_pool_equal_rows_read_from_the_files(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(-2, 3, (83, 8)).astype(np.float32)
    vectors = SegmentedVectors(8, [data[:30], data[30:31], data[31:]])
    pool = rng.permutation(83)[: 1 + 13 * seed]  # any order, as a pool is (by score)
    rows = np.unique(rng.integers(0, 83, 1 + 9 * seed))
    brought = retrieve.Pooled(pool, np.zeros(len(pool)), data[pool])
    assert np.array_equal(retrieve._read(rows, brought, vectors), data[rows])
    bare = retrieve.Pooled(pool, np.zeros(len(pool)), None)
    assert np.array_equal(retrieve._read(rows, bare, vectors), data[rows])
    empty = retrieve.Pooled(pool[:0], np.zeros(0), data[:0])
    assert np.array_equal(retrieve._read(rows, empty, vectors), data[rows])


def test_hybrid_hits_are_the_same_whether_the_pool_brings_its_vectors_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = [*WORDS, "pier", "buoy", "hull", "cove"]
    index = harbour_index(
        tmp_path / "ix", 611, 11, (2, 9), words, backend="faiss", index_type="ivf"
    )
    assert index.live.require().index.index_type == "ivf"
    monkeypatch.setattr(retrieve, "CANDIDATES", 37)  # fewer than the pool: the pool matters
    queries = ["harbour gull", "tide tide anchor", "keel", "mast sail reef dock", "cove buoy"]
    real = retrieve._pooled
    seen: list[bool] = []
    monkeypatch.setattr(
        retrieve, "_pooled", lambda p: seen.append(p.vectors is not None) or real(p)
    )
    brought = [[(h.chunk_id, h.score) for h in index.search(q, k=15)] for q in queries]
    assert seen == [True] * len(queries)
    monkeypatch.setattr(retrieve, "_pooled", lambda p: real(p._replace(vectors=None)))
    for q, want in zip(queries, brought, strict=True):
        assert [(h.chunk_id, h.score) for h in index.search(q, k=15)] == want


# --- the hybrid pass: vectors read once, feedback documents, pool = a second search -------------


@pytest.mark.parametrize("seed", range(4))
def test_the_moved_querys_best_pool_rows_the_pool_read_in_one_gather(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(-2, 3, (97, 8)).astype(np.float32)  # small integers: many ties
    vectors = SegmentedVectors(8, [data[:50], data[50:]])
    reads: list[int] = []
    real_getitem = vectors.__getitem__

    class Counting(SegmentedVectors):
        def __getitem__(self, rows):  # type: ignore[no-untyped-def]
            reads.extend(np.asarray(rows).tolist())
            return real_getitem(rows)

    counted = Counting(8, vectors.blocks)

    class Docs:
        def doc_of(self, rows: np.ndarray) -> np.ndarray:
            return np.asarray(rows) // 3

    class Evidence:
        def evidence(self, rows: np.ndarray, docs: np.ndarray) -> np.ndarray:
            return np.asarray(rows) * 0.5 + np.asarray(docs)

    first_rows = np.unique(rng.integers(0, 97, 5 + 11 * seed))
    first_ev = Evidence().evidence(first_rows, first_rows // 3)
    first = retrieve.Candidates(first_rows, first_rows // 3, data[first_rows], first_ev)
    pool = rng.permutation(97)[: 20 + 17 * seed]
    moved = rng.integers(-2, 3, 8).astype(np.float32)
    for depth, brought in itertools.product((1, 7, 200), (False, True)):
        reads.clear()
        pooled = retrieve.Pooled(pool, np.zeros(len(pool)), data[pool] if brought else None)
        more, vecs, floor = retrieve._moved_best(pooled, first, moved, counted, depth)
        scores = data[pool] @ moved
        best = pool[np.lexsort((pool, -scores))[:depth]]  # brute force: ties to smaller row
        assert sorted(more.tolist()) == sorted(set(best.tolist()) - set(first_rows.tolist()))
        assert np.array_equal(vecs, data[more])
        assert floor == float((data[best] @ moved).min())
        # the pool's vectors: its own, or read in one gather (cheaper than a copy out of
        # the first pass's and a read of the rest)
        assert reads == ([] if brought else pool.tolist())
        got = first.extended(more, vecs, Docs(), Evidence())  # type: ignore[arg-type]
        rows = np.union1d(first_rows, more)
        assert np.array_equal(got.rows, rows)
        assert np.array_equal(got.docs, rows // 3)
        assert np.array_equal(got.vecs, data[rows])
        assert np.array_equal(got.evidence, rows * 0.5 + rows // 3)


def _best_documents_oracle(ranked_rows: list[int], doc_of: dict[int, int], m: int) -> list[int]:
    seen: set[int] = set()
    out = []
    for r in ranked_rows:
        if doc_of[r] not in seen:
            seen.add(doc_of[r])
            out.append(r)
    return out[:m]


@pytest.mark.parametrize("seed", range(12))
def test_best_documents_are_the_first_rows_of_distinct_documents(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = np.unique(rng.integers(0, 500, 1 + seed * 37))
    # few documents (many repeats: the whole list is ranked) or many (only the best are)
    docs = rng.integers(0, 1 + seed * 3 if seed < 6 else 10_000, len(rows))
    scores = rng.integers(0, 4, len(rows)).astype(float)  # many ties
    ranked = order(rows, scores)
    got = rows[retrieve._best_documents(rows, scores, docs, 3)].tolist()
    doc_of = dict(zip(rows.tolist(), docs.tolist(), strict=True))
    assert got == _best_documents_oracle(rows[ranked].tolist(), doc_of, 3)


def test_hybrid_from_a_pool_of_every_row_equals_a_second_exact_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a pool holding every row, the moved query's best rows from the pool are those a
    second exact search finds: the ranking equals the two-search reference (below)."""
    index = harbour_index(tmp_path / "ix", 151, 4, (3, 9), backend="numpy")
    monkeypatch.setattr(retrieve, "FEEDBACK_POOL", 10_000)
    monkeypatch.setattr(retrieve, "CANDIDATES", 23)  # fewer than the rows: the pool matters
    v = index.live.require()
    kw = v.store.keyword_index()
    for q in ("harbour gull", "tide tide anchor", "keel", "mast sail reef dock"):
        got = index.search(q, k=20, mode="hybrid", collapse=False)
        want = _two_search_reference(v, kw, q, 23)
        assert [h.chunk_id for h in got] == want[: len(got)]


def _two_search_reference(v, kw, text: str, depth: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The hybrid ranking as it was computed with a second exact vector search."""
    q = v.embedder.encode([text], kind="query")[0]
    data = np.asarray(v.vectors[np.arange(len(v.vectors))], np.float32)
    live = np.setdiff1d(np.arange(len(data)), v.store.dead_rows())
    s0, i0 = oracle(data, q[None], depth, live)
    h = keyword_hits(kw, text, depth)
    rows = np.union1d(i0[0], h.rows)
    docs = kw.doc_of(rows)
    s = fuse.blend(
        fuse.dense_part(data[rows] @ q, float(s0[0].min())),
        fuse.keyword_part(h.evidence(rows, docs), h.full_match),
        fuse.FEEDBACK_ALPHA,
    )
    ranked = order(rows, s)
    doc_of = dict(zip(rows.tolist(), docs.tolist(), strict=True))
    best = _best_documents_oracle(rows[ranked].tolist(), doc_of, fuse.FEEDBACK_DOCS)
    moved = fuse.feedback_query(q, data[best], fuse.FEEDBACK_WEIGHT)
    s1, i1 = oracle(data, moved[None], depth, live)
    rows = np.union1d(i1[0], rows)
    docs = kw.doc_of(rows)
    dp = fuse.dense_part(data[rows] @ moved, float(s1[0].min()))
    kp = fuse.keyword_part(h.evidence(rows, docs), h.full_match)
    final = fuse.blend(dp, kp, fuse.dense_weight(dp, kp))
    return rows[order(rows, final)].tolist()


# --- cached postings ----------------------------------------------------------


def test_cached_postings_score_as_fresh_ones_within_their_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = "harbour lighthouse tide anchor sail rope gull wave reef keel mast dock".split()
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(words, size=7)) for _ in range(61)]
    index = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "ix", backend="numpy")
    index.add_texts(texts[:40], ids=[f"d{i}" for i in range(40)])
    index.add_texts(texts[40:], ids=[f"d{i}" for i in range(40, 61)])
    index.delete(["d3", "d44"])
    kw = index.live.require().store.keyword_index()
    queries = [["harbour", "gull"], ["tide", "tide", "keel"], ["zzz"], ["dock"]]
    fresh = []
    for q in queries:
        kw.clear_cache()
        fresh.append([kw.score(q, level) for level in (0, 1)])
    monkeypatch.setattr(segmented_keyword, "POSTINGS_CACHE_BYTES", 700)  # a few terms at most
    for _ in range(2):
        for q, want in zip(queries, fresh, strict=True):
            for level, w in zip((0, 1), want, strict=True):
                got = kw.score(q, level)
                assert np.array_equal(got.ids, w.ids) and np.array_equal(got.scores, w.scores)
            assert kw._cache_bytes <= 700
    assert kw._cache  # something was kept


# --- BM25 sums and document membership over many postings ---------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_summed_postings_equal_the_unique_and_bincount_reference(seed: int) -> None:
    from semsearch.store.bm25 import summed

    rng = np.random.default_rng(seed)
    parts = [
        np.sort(rng.choice(300, int(rng.integers(1, 120)), replace=False)) for _ in range(1 + seed)
    ]
    if seed == 4:  # an unsorted part is still summed right
        parts.append(rng.permutation(50))
    contrib = [rng.random(len(p)) for p in parts]
    got = summed(parts, contrib)
    ids, c = np.concatenate(parts), np.concatenate(contrib)
    unique, inverse = np.unique(ids, return_inverse=True)
    assert np.array_equal(got.ids, unique)
    assert np.array_equal(got.scores, np.bincount(inverse, weights=c))  # same order of sums


@pytest.mark.parametrize("seed", range(4))
def test_member_equals_isin(seed: int) -> None:
    from semsearch.search.keyword import _member

    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 50 + 400 * seed, 1 + 997 * seed)
    few = np.unique(rng.integers(0, 60, seed * 3))
    assert np.array_equal(_member(keys, few), np.isin(keys, few))


# --- code signals only for the rows that can still reach the best k ------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("grouped", [False, True])
def test_signals_over_the_contenders_give_the_best_k_of_all_rows(seed: int, grouped: bool) -> None:
    """Whatever tiers and file factors the signals give, ranking only the contenders gives
    the best k (rows, scores and, grouped, each file's shown chunks) that ranking every
    row gives: odd sizes, ties, negative scores (dense cosines)."""
    from semsearch.search import group

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    rows = np.sort(rng.choice(5000, n, replace=False)).astype(np.int64)
    ties = seed % 3 == 0  # a few distinct scores
    scores = rng.integers(-2, 6, n) / 5.0 if ties else rng.normal(0.3, 0.3, n)
    docs = rng.integers(0, max(1, n // int(rng.integers(1, 6))), n)
    tiers = rng.choice([0, 0, 0, 1, 2], n).astype(np.int8)
    by_doc = np.where(rng.random(docs.max() + 1) < 0.3, group.DOWNWEIGHT, 1.0)
    factor = by_doc[docs]
    for k in (1, 3, 10, 40):
        keep = filerank.contenders(scores, docs if grouped else rows, k)
        if grouped:
            full = group.group_rows(rows, scores, docs, tiers, factor)
            part = group.group_rows(rows[keep], scores[keep], docs[keep], tiers[keep], factor[keep])
            assert np.array_equal(part.rows[:k], full.rows[:k])
            assert np.array_equal(part.scores[:k], full.scores[:k])
            assert list(part.further[:k]) == list(full.further[:k])
        else:
            full_r = group.rescore_rows(rows, scores, tiers, factor)
            part_r = group.rescore_rows(rows[keep], scores[keep], tiers[keep], factor[keep])
            assert full_r is not None and part_r is not None
            assert np.array_equal(rows[keep][part_r.positions][:k], rows[full_r.positions][:k])
            assert np.array_equal(part_r.scores[:k], full_r.scores[:k])

    tail = 1.0 / (1.0 + np.arange(300))  # a long tail: most rows cannot get in
    kept = filerank.contenders(tail, np.arange(300), 10)  # 3 / (1 + i) >= 0.8 / 10: i <= 36
    assert kept.tolist() == list(range(37))


# --- the best few of many re-scored candidates, and the float rows mapped ahead -------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kk", [1, 7, 20, 63])
def test_best_order_picks_the_few_as_a_full_sort_does(seed: int, kk: int) -> None:
    """Partition-then-sort (a few of ~1,000) against lexsort of the whole row: ties at the
    cut, ``-1`` pads, NaN scores and batches of several queries."""
    from semsearch.index import base

    rng = np.random.default_rng(seed)
    n = int(rng.integers(kk * base.PARTIAL_SORT + 1, 700))
    scores = rng.integers(0, 9, (3, n)).astype(np.float32) / 8  # many ties
    ids = np.stack([rng.permutation(10 * n)[:n] for _ in range(3)]).astype(np.int64)
    ids[:, rng.choice(n, n // 5, replace=False)] = -1
    if seed % 2:
        scores[1, rng.choice(n, n - kk // 2, replace=False)] = np.nan
    valid = ids >= 0
    s = np.where(valid, scores, -np.inf).astype(np.float32)
    i = np.where(valid, ids, np.iinfo(np.int64).max)
    want = np.lexsort((i, -s), axis=1)[:, :kk]
    got_s, got_i, short, at = base.best_order(scores, ids, kk)
    np.testing.assert_array_equal(at, want)
    np.testing.assert_array_equal(got_i, np.take_along_axis(i, want, 1))
    np.testing.assert_array_equal(got_s, np.take_along_axis(s, want, 1))  # (NaN equals NaN)
    np.testing.assert_array_equal(short, valid.sum(axis=1) < kk)


def test_vector_maps_are_shared_while_alive_and_warmed_once(tmp_path: Path) -> None:
    """A segment's vectors opened again while a map of them is alive come back as that map
    (its pages already mapped); a rewritten file gets a map of its own; warming maps the
    pages in a thread once per map, leaving the rows as they are."""
    import gc

    from semsearch.store.npy import load_vectors, warm

    data = clustered(3001)
    path = tmp_path / "vectors.npy"
    np.save(path, data)
    first = load_vectors(path, DIM, shared=True)
    assert load_vectors(path, DIM, shared=True) is first
    assert load_vectors(path, DIM) is not first  # not shared: a map of its own
    thread = warm(first)
    if thread is not None:  # Linux: populated in the background
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert warm(first) is None  # once per map
    np.testing.assert_array_equal(np.asarray(first), data)
    assert warm(data.copy()) is None  # in memory: nothing to map
    del first
    gc.collect()
    np.save(path.with_name("new.npy"), data[:2000])
    path.with_name("new.npy").replace(path)  # a new file at the same path
    again = load_vectors(path, DIM, shared=True)
    assert again.shape == (2000, DIM)
    np.testing.assert_array_equal(np.asarray(again), data[:2000])


def test_a_rescoring_index_warms_its_rows_at_its_second_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at the first search (a one-query process), once at the second; hits unchanged."""
    from semsearch.index import faiss_index

    warmed: list[object] = []
    monkeypatch.setattr(faiss_index, "warm", warmed.append)
    data = clustered(3000)
    index = build_vector_index("faiss", DIM, data, "ivf")
    q = data[:3] + 0.01
    first = index.search(q, 5)
    assert warmed == []
    second = index.search_pool(q, 5, 64)
    assert len(warmed) == 1
    index.search(q, 5)
    assert len(warmed) == 1
    np.testing.assert_array_equal(first.ids, second.ids[:, :5])


def test_a_write_reopens_unchanged_segments_through_their_live_maps(tmp_path: Path) -> None:
    """After a write the index opens its new generation while the old one still answers, so
    the unchanged segment's vectors come back as the same (already warmed) map; the new
    segment gets its own, and hits are those of a freshly opened index."""
    index = harbour_index(tmp_path / "ix", 400, 3, (3, 9), index_type="ivf")
    before = index.live.require().vectors.blocks[0]
    index.search("harbour gull", k=5, mode="dense")
    index.add_texts(["gull keel tide"], ids=["new"])
    blocks = index.live.require().vectors.blocks
    assert len(blocks) == 2 and blocks[0] is before and blocks[1] is not before
    fresh = SemanticIndex.load(tmp_path / "ix", embedder=FakeEmbedder())  # type: ignore[arg-type]
    for mode in ("dense", "hybrid"):
        got = index.search("gull keel", k=5, mode=mode)  # type: ignore[arg-type]
        want = fresh.search("gull keel", k=5, mode=mode)  # type: ignore[arg-type]
        assert [h.chunk_id for h in got] == [h.chunk_id for h in want]


# --- stop 32: the rows a re-score read, taken once; pools as views; mapped chunk databases ---


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("width", [1, 7, 64])
def test_gathered_rows_taken_in_any_order_equal_a_gather_from_the_source(
    seed: int, width: int
) -> None:
    """The rows a re-score read (each query's in the order read, no copy in the candidates'
    order), taken at any positions, equal the source rows of those candidates, zeros at
    ``-1`` pads; a query with no candidate at all gives zeros."""
    from semsearch.index.rescore import Rows

    rng = np.random.default_rng(seed)
    source = clustered(97, seed=seed)
    found = rng.integers(0, len(source), size=(4, width))
    found[rng.random(found.shape) < 0.3] = -1  # pads anywhere
    found[3] = -1  # one query found nothing
    q = clustered(4, seed=seed + 1)
    scores, gathered = Rows(source).scores(q, found, keep=True)
    assert gathered is not None
    plain, none = Rows(source).scores(q, found)
    assert none is None and np.array_equal(scores, plain)
    at = np.stack([rng.permutation(width) for _ in range(4)])  # any order, pads included
    got = gathered.take(at)
    picked = np.take_along_axis(found, at, 1)
    want = np.where((picked >= 0)[..., None], source[np.maximum(picked, 0)], 0.0)
    assert np.array_equal(got, want.astype(np.float32))
    real = found >= 0
    assert np.allclose(scores[real], np.einsum("qd,qkd->qk", q, source[np.maximum(found, 0)])[real])
    assert np.all(scores[~real] == -np.inf)


@pytest.mark.parametrize("pads", ["none", "end", "middle", "all"])
def test_pooled_drops_pads_as_a_mask_does(pads: str) -> None:
    """Each query's pool without its ``-1`` rows: a view of the leading rows when the pads
    come last (as a sorted pool's do), the same rows as masking them out wherever they are."""
    from semsearch.index.base import Pool

    rng = np.random.default_rng(3)
    ids = np.arange(12, dtype=np.int64).reshape(2, 6) * 7
    if pads == "end":
        ids[:, 4:] = -1
    elif pads == "middle":
        ids[0, 2] = ids[1, 0] = -1
    elif pads == "all":
        ids[:] = -1
    scores = rng.random(ids.shape).astype(np.float32)
    vecs = rng.random((*ids.shape, 5)).astype(np.float32)
    for given in (vecs, None):
        got = retrieve._pooled(Pool(scores, ids, given))
        for n, p in enumerate(got):
            real = ids[n] >= 0
            assert np.array_equal(p.rows, ids[n][real])
            assert np.array_equal(p.cosines, scores[n][real])
            if given is None:
                assert p.vecs is None
            else:
                assert p.vecs is not None and np.array_equal(p.vecs, vecs[n][real])


def test_a_searching_view_maps_its_chunk_databases(tmp_path: Path) -> None:
    """The view a search reads maps each segment's chunk database (SQLite's mmap_size); a
    store opened otherwise (a build reading old segments) does not; both read the same
    records and hits."""
    import sqlite3

    from semsearch.store.segments import SegmentedStore

    probe = sqlite3.connect(tmp_path / "probe.sqlite")
    probe.execute("PRAGMA mmap_size=1048576")
    if not probe.execute("PRAGMA mmap_size").fetchone()[0]:
        pytest.skip("this SQLite is built without memory maps")
    probe.close()
    index = harbour_index(tmp_path / "ix", 300, 5, (3, 9))
    index.add_texts(["gull keel tide"], ids=["new"])  # a second segment
    view = index.live.require()
    assert len(view.store.segments) == 2
    for seg in view.store.segments:
        assert seg.store.conn.execute("PRAGMA mmap_size").fetchone()[0] > 0
    plain = SegmentedStore.open(view.gen, view.manifest)
    try:
        for seg in plain.segments:
            assert seg.store.conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
        rows = np.arange(0, 301, 7)
        assert plain.fetch(rows) == view.store.fetch(rows)
    finally:
        plain.close()
    fresh = SemanticIndex.load(tmp_path / "ix", embedder=FakeEmbedder())  # type: ignore[arg-type]
    for mode in ("dense", "keyword", "hybrid"):
        got = index.search("harbour keel", k=5, mode=mode)  # type: ignore[arg-type]
        assert got == fresh.search("harbour keel", k=5, mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(3))
def test_texts_unless_a_kind_equal_the_records_texts(tmp_path: Path, seed: int) -> None:
    """The code gate's light read: each row's text, "" for a chunk of a code document,
    over segments (global rows), as the full records give them; rows in any order and
    repeated."""
    from semsearch.ingest.readers.text import CodeReader

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(int(rng.integers(2, 5))):
        code = f"def f{i}(x):\n    return x + {i}\n"
        (src / f"m{i}.py").write_text(code * int(rng.integers(1, 4)))
        (src / f"n{i}.md").write_text(" ".join(rng.choice(WORDS, size=12)) + "\n")
    index = harbour_index(tmp_path / "ix", 300, seed, (3, 9))
    index.add_paths([src])  # a second segment
    store = index.live.require().store
    assert len(store.segments) >= 2 and store.holds_kind(CodeReader.kind)
    rows = np.concatenate([rng.permutation(300)[:20], 300 + rng.permutation(len(index) - 300)])
    rows = np.concatenate([rows, rows[:3]])
    records = store.fetch(rows)
    want = {r: ("" if c.kind == CodeReader.kind else c.text) for r, c in records.items()}
    assert store.texts_unless(rows, CodeReader.kind) == want
    assert any(t == "" for t in want.values()) or not any(
        c.kind == CodeReader.kind for c in records.values()
    )
    assert store.texts_unless(rows, "no such kind") == {r: c.text for r, c in records.items()}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("n", "kk"), [(0, 0), (5, 9), (1024, 200), (1023, 1), (301, 75), (64, 64)])
def test_first_positions_of_one_row_are_the_head_of_fuses_order(seed: int, n: int, kk: int) -> None:
    """The moved query's best pool rows: a partition, then a sort of the few, gives the
    first ``kk`` of :func:`fuse.order` (score desc, ties to the smaller row), ties at the
    cut, repeated scores and NaN included, rows in any order."""
    from semsearch.index.base import first_positions

    rng = np.random.default_rng(seed)
    rows = rng.permutation(5 * n)[:n].astype(np.int64)
    scores = rng.integers(0, 9, n).astype(np.float32) / 8  # many ties
    if n and seed % 2:
        scores[rng.integers(0, n, 3)] = np.nan
    got = first_positions(scores[None], rows[None], min(kk, n))[0]
    assert np.array_equal(got, order(rows, scores)[: min(kk, n)])
