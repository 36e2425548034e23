"""Vector indexes against a brute-force oracle: every backend and index type, odd sizes, k past
the end, exact ties, empty indexes, subset filters, save/load, tuned recall, bad input and
damaged files."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from semsearch.errors import IndexFormatError, UsageError
from semsearch.index import (
    FaissIndex,
    NumpyIndex,
    SearchResult,
    VectorIndex,
    ann,
    build_vector_index,
    index_class,
    resolve_index_type,
    top_k,
)

faiss = pytest.importorskip("faiss")

DIM = 32
SIZES = (0, 1, 7, 300, 1001)
APPROX = ("hnsw", "ivf", "ivfpq")
KINDS = ("numpy", "flat", *APPROX)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny problems: OpenMP barriers cost more than they save, a lot more on a busy machine."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, seed: int = 0, stream: int = 0, dim: int = DIM) -> np.ndarray:
    """Unit vectors from a Gaussian mixture (fixed by ``seed``; ``stream`` = independent draws)."""
    mix = np.random.default_rng(seed)
    centres = mix.standard_normal((max(1, n // 40 or 1), dim)).astype(np.float32)
    rng = np.random.default_rng([seed, stream])
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ties(n: int) -> np.ndarray:
    """Rows from a handful of distinct vectors whose scores are exact in float32: every query
    meets long runs of equal scores, so only the tie rule decides the order."""
    base = np.zeros((5, DIM), dtype=np.float32)
    for i in range(4):
        base[i, [i, i + 5, i + 10, i + 15]] = 0.5
    base[4, [0, 5, 20, 25]] = 0.5  # half of row 0: more distinct score levels
    return base[np.random.default_rng(n).integers(0, 5, n)]


def oracle(data: np.ndarray, q: np.ndarray, k: int, subset: np.ndarray | None = None):
    """Score every candidate, sort by (score desc, id asc), keep k. No shortcuts."""
    ids = np.arange(len(data)) if subset is None else np.unique(subset)
    scores = q @ data[ids].T
    out_s, out_i = [], []
    for row in scores:
        order = np.lexsort((ids, -row))[:k]
        out_s.append(row[order])
        out_i.append(ids[order])
    kk = min(k, len(ids))
    return (
        np.array(out_s, dtype=np.float32).reshape(len(q), kk),
        np.array(out_i, dtype=np.int64).reshape(len(q), kk),
    )


@functools.cache
def built(kind: str, n: int, data: str = "clustered") -> VectorIndex:
    """Shared, read-only builds (tests that change an index build their own)."""
    vectors = clustered(n) if data == "clustered" else ties(n)
    if kind == "numpy":
        return build_vector_index("numpy", DIM, vectors)
    return build_vector_index("faiss", DIM, vectors, kind)


def exhaustive(index: VectorIndex) -> VectorIndex:
    """Widen an approximate index's search until it is exact (a copy; the cache stays tuned)."""
    if not isinstance(index, FaissIndex) or index.index_type == "flat":
        return index
    copy = FaissIndex(index.dim, faiss.clone_index(index._index), vectors=_rows_of(index))
    copy.set_search_params(max(len(index), 2048) if index.index_type == "hnsw" else 1 << 20)
    return copy


def _rows_of(index: FaissIndex) -> np.ndarray | None:
    return None if index._rows is None else index._rows.all()


def check_valid(res: SearchResult, nq: int, kk: int, n: int) -> None:
    """Shape, dtypes, distinct in-range ids, sorted by (score desc, id asc)."""
    assert res.scores.dtype == np.float32 and res.ids.dtype == np.int64
    assert res.scores.shape == res.ids.shape == (nq, kk)
    assert ((res.ids >= 0) & (res.ids < max(n, 1))).all()
    for s, i in zip(res.scores, res.ids, strict=True):
        assert len(set(i.tolist())) == len(i)
        assert all((s[j], -i[j]) >= (s[j + 1], -i[j + 1]) for j in range(len(s) - 1))


def assert_matches(res: SearchResult, data: np.ndarray, q: np.ndarray, k: int, subset=None):
    """Equal to the oracle, allowing only a swap of candidates whose scores differ by rounding."""
    exp_s, exp_i = oracle(data, q, k, subset)
    check_valid(res, len(q), exp_i.shape[1], len(data))
    np.testing.assert_allclose(res.scores, exp_s, atol=2e-5)
    for row, (got, want) in enumerate(zip(res.ids, exp_i, strict=True)):
        if not np.array_equal(got, want):
            true = q[row] @ data[got].T  # the hits we got, scored by the oracle's arithmetic
            np.testing.assert_allclose(true, exp_s[row], atol=2e-5)


# -- the brute-force rule ---------------------------------------------------------------------


def test_top_k_is_lexsort_on_heavy_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (50, 300)).astype(np.float32)
    ids = np.broadcast_to(rng.permutation(300), scores.shape)
    for k in (1, 7, 299, 300):
        s, i = top_k(scores, ids, k)
        order = np.lexsort((ids, -scores), axis=1)[:, :k]
        np.testing.assert_array_equal(i, np.take_along_axis(ids, order, 1))
        np.testing.assert_array_equal(s, np.take_along_axis(scores, order, 1))


# -- every backend and type against the oracle ---------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_oracle(kind: str, n: int) -> None:
    data, q = clustered(n), clustered(9, stream=1)
    index = built(kind, n)
    assert len(index) == n
    if kind in APPROX and n < ann.MIN_APPROX_ROWS:
        assert index.index_type == "flat"  # nothing to approximate
    elif kind != "numpy":
        assert index.index_type == kind
    index = exhaustive(index)
    for k in (1, 10, n + 5):
        assert_matches(index.search(q, k), data, q, k)


@pytest.mark.parametrize("kind", KINDS)
def test_ties_go_to_the_smaller_id(kind: str) -> None:
    n = 1001
    data, q = ties(n), ties(7)
    index = exhaustive(built(kind, n, "ties"))
    for k in (1, 5, 40, n + 1):
        res = index.search(q, k)
        exp_s, exp_i = oracle(data, q, k)
        np.testing.assert_array_equal(res.scores, exp_s)
        if kind == "hnsw" and k < n:
            # A graph walk meets hundreds of equal scores in no particular order; only the
            # ones it returned (k + TIE_MARGIN) are ordered by id.
            check_valid(res, len(q), k, n)
        else:
            np.testing.assert_array_equal(res.ids, exp_i)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index(kind: str, tmp_path: Path) -> None:
    index = built(kind, 0)
    res = index.search(clustered(3, stream=1), 5)
    check_valid(res, 3, 0, 0)
    res = index.search(clustered(3, stream=1), 5, subset=np.array([], dtype=np.int64))
    assert res.ids.shape == (3, 0)
    if isinstance(index, FaissIndex):
        index.save(tmp_path / "index.faiss")
        again = FaissIndex.load(tmp_path / "index.faiss", DIM)
        assert len(again) == 0 and again.search(clustered(1, stream=1), 3).ids.shape == (1, 0)


def test_added_rows_match_a_fresh_build() -> None:
    """The plain ``cls(dim).add`` path (used before build_vector_index) stays exact."""
    data, q = clustered(1001), clustered(5, stream=1)
    for cls in (NumpyIndex, FaissIndex):
        index = cls(DIM)
        for start in range(0, 1001, 333):
            index.add(data[start : start + 333])
        assert_matches(index.search(q, 10), data, q, 10)


# -- subset filters ---------------------------------------------------------------------------


@pytest.mark.parametrize("via_ann", [False, True], ids=["small-exact", "ann-selector"])
@pytest.mark.parametrize("kind", KINDS)
def test_subset_filters(kind: str, via_ann: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if via_ann:  # pretend the corpus is big, so filters go through faiss selectors
        monkeypatch.setattr(ann, "FLAT_MAX_ROWS", 5)
    n = 1001
    data, q = clustered(n), clustered(6, stream=1)
    tuned = built(kind, n)
    index = exhaustive(tuned)
    rng = np.random.default_rng(1)
    for subset in (
        np.array([17]),
        np.sort(rng.choice(n, 12, replace=False)),
        np.arange(0, n, 3),
        rng.permutation(n)[:600],  # unsorted is accepted
        np.array([5, 5, 9]),  # duplicates count once
    ):
        for k in (1, 10, 700):
            assert_matches(index.search(q, k, subset=subset), data, q, k, subset)
        res = tuned.search(q, 10, subset=subset)  # tuned: approximate but only from the subset
        check_valid(res, len(q), min(10, len(np.unique(subset))), n)
        assert np.isin(res.ids, subset).all()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_subsets_raise(kind: str) -> None:
    index = built(kind, 300)
    q = clustered(1, stream=1)
    for bad in (np.array([300]), np.array([-1]), np.array([[1, 2]]), np.array([0.5])):
        with pytest.raises(UsageError):
            index.search(q, 3, subset=bad)


# -- persistence ------------------------------------------------------------------------------


def _save_load(index: VectorIndex, tmp_path: Path, data: np.ndarray) -> VectorIndex:
    np.save(tmp_path / "vectors.npy", data)  # the store always keeps it beside the index
    if isinstance(index, NumpyIndex):
        return NumpyIndex.load(tmp_path / "vectors.npy", DIM)
    index.save(tmp_path / "index.faiss")
    return index_class("faiss").load(tmp_path / "index.faiss", DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_results(kind: str, tmp_path: Path) -> None:
    data, q = clustered(1001), clustered(20, stream=1)
    index = built(kind, 1001)
    again = _save_load(index, tmp_path, data)
    assert again.params == index.params  # the tuned breadth lives in the file
    for k, subset in ((10, None), (1001, None), (10, np.arange(0, 1001, 7))):
        a, b = index.search(q, k, subset), again.search(q, k, subset)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("kind", ("flat", *APPROX))
def test_loaded_index_can_change(kind: str, tmp_path: Path) -> None:
    """A loaded index is a read-only map; adding or retuning must copy, not crash faiss."""
    data = clustered(1001)
    loaded = _save_load(build_vector_index("faiss", DIM, data, kind), tmp_path, data)
    assert isinstance(loaded, FaissIndex)
    if kind != "flat":
        loaded.set_search_params(3)
        loaded.save(tmp_path / "retuned.faiss")
        (tmp_path / "retuned.faiss").replace(tmp_path / "index.faiss")
        assert FaissIndex.load(tmp_path / "index.faiss", DIM).params == loaded.params
    extra = clustered(10, stream=2)
    loaded.add(extra)
    assert len(loaded) == 1011
    res = exhaustive(loaded).search(extra, 1)
    np.testing.assert_array_equal(res.ids[:, 0], np.arange(1001, 1011))


# -- tuning and auto --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", APPROX)
def test_approximate_recall(kind: str) -> None:
    n = 3000
    data, q = clustered(n), clustered(200, stream=1)
    index = built(kind, n)
    assert index.recall is not None and index.recall >= ann.TARGET_RECALL
    _, truth = oracle(data, q, 10)
    found = index.search(q, 10).ids
    recall = np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= ann.TARGET_RECALL
    name = ann.param_name(kind) or ""
    assert index.params[name] < (2048 if kind == "hnsw" else index.params["nlist"])


def test_tuning_picks_the_cheapest_breadth() -> None:
    data = clustered(3000)
    index = build_vector_index("faiss", DIM, data, "ivf")
    assert isinstance(index, FaissIndex)
    truth = ann.ExactNeighbours(data, 200, 10, np.random.default_rng(5))
    truth.update(data, 0)
    search = index._tune_search
    value, recall = ann.tune(index._index, truth, search)
    assert value is not None and recall is not None and recall >= ann.TARGET_RECALL
    options = ann.param_candidates(index._index)
    cheaper = options[: options.index(value)]
    for v in cheaper:
        assert truth.recall(functools.partial(_breadth, search, v)) < ann.TARGET_RECALL


def _breadth(search: Callable[..., np.ndarray], value: int, q: np.ndarray, k: int) -> np.ndarray:
    return search(q, k, value)


def test_ground_truth_leaves_the_query_row_out() -> None:
    data = np.vstack([clustered(500), clustered(500)[:20]])  # rows 500.. duplicate rows 0..19
    truth = ann.ExactNeighbours(data, 50, 10, np.random.default_rng(0))
    for start in range(0, len(data), 77):  # odd blocks
        truth.update(data[start : start + 77], start)
    for row, ids in zip(truth.rows, truth._ids, strict=True):
        scores = data @ data[row]
        scores[row] = -np.inf
        assert set(ids.tolist()) == set(np.argsort(-scores, kind="stable")[:10].tolist())


def test_auto_is_flat_until_the_crossover(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ann.choose_type("auto", ann.FLAT_MAX_ROWS) == "flat"
    assert ann.choose_type("auto", ann.FLAT_MAX_ROWS + 1) == ann.AUTO_APPROX
    data = clustered(2000)
    assert build_vector_index("faiss", DIM, data).index_type == "flat"
    monkeypatch.setattr(ann, "FLAT_MAX_ROWS", 1000)
    monkeypatch.setattr(ann, "BLOCK_ROWS", 333)  # stream in odd blocks
    seen: list[tuple[int, int]] = []
    index = build_vector_index("auto", DIM, data, progress=lambda d, t: seen.append((d, t)))
    assert index.index_type == ann.AUTO_APPROX and index.recall is not None
    assert index.recall >= ann.TARGET_RECALL
    assert ann.param_name(ann.AUTO_APPROX) in index.params
    assert seen[-1] == (2000, 2000) and len(seen) == 7


def test_numpy_backend_only_does_flat() -> None:
    assert resolve_index_type("numpy", "auto") == "flat"
    for kind in APPROX:
        with pytest.raises(UsageError, match="faiss"):
            build_vector_index("numpy", DIM, clustered(10), kind)
    with pytest.raises(UsageError, match="index type"):
        build_vector_index("faiss", DIM, clustered(10), "annoy")


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_k_and_shapes_raise(kind: str) -> None:
    index = built(kind, 300)
    q = clustered(2, stream=1)
    for k in (0, -1, 1.5, "3", None, True):
        with pytest.raises(UsageError):
            index.search(q, k)  # type: ignore[arg-type]
    for bad in (q[0], q[:, :-1], q[None], np.zeros((2, DIM + 1), np.float32)):
        with pytest.raises(UsageError):
            index.search(bad, 3)
    with pytest.raises(UsageError):
        index.add(np.zeros((2, DIM - 1), np.float32))


def test_build_checks_its_input() -> None:
    with pytest.raises(UsageError):
        build_vector_index("faiss", DIM, np.zeros((5, DIM + 1), np.float32))
    with pytest.raises(UsageError):
        build_vector_index("faiss", 0, np.zeros((5, 0), np.float32))
    with pytest.raises(UsageError):
        FaissIndex(DIM).set_search_params(4)  # flat has nothing to tune
    with pytest.raises(UsageError):
        built("ivf", 1001).set_search_params(0)  # type: ignore[attr-defined]


# -- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("flat", *APPROX))
def test_damaged_faiss_files_raise(kind: str, tmp_path: Path) -> None:
    data = clustered(1001)
    np.save(tmp_path / "vectors.npy", data)
    good = tmp_path / "good.faiss"
    built(kind, 1001).save(good)
    blob = good.read_bytes()
    path = tmp_path / "index.faiss"
    for cut in (0, 3, 40, len(blob) // 3, len(blob) - 8):
        path.write_bytes(blob[:cut])
        with pytest.raises(IndexFormatError):
            FaissIndex.load(path, DIM)
    path.write_bytes(b"not a faiss index at all" * 10)
    with pytest.raises(IndexFormatError):
        FaissIndex.load(path, DIM)
    with pytest.raises(IndexFormatError):
        FaissIndex.load(tmp_path / "missing.faiss", DIM)
    with pytest.raises(IndexFormatError, match="dimension"):
        FaissIndex.load(good, DIM + 1)


def test_ivfpq_needs_matching_vectors(tmp_path: Path) -> None:
    path = tmp_path / "index.faiss"
    built("ivfpq", 1001).save(path)
    with pytest.raises(IndexFormatError, match=r"vectors\.npy"):
        FaissIndex.load(path, DIM)  # no vectors.npy beside it
    np.save(tmp_path / "vectors.npy", clustered(1000))
    with pytest.raises(IndexFormatError, match="rows"):
        FaissIndex.load(path, DIM)


def test_damaged_vector_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "vectors.npy"
    np.save(path, clustered(50))
    blob = path.read_bytes()
    for cut in (0, 20, len(blob) - 4):
        path.write_bytes(blob[:cut])
        with pytest.raises(IndexFormatError):
            NumpyIndex.load(path, DIM)
    np.save(path, clustered(50).astype(np.float64))
    with pytest.raises(IndexFormatError):
        NumpyIndex.load(path, DIM)


# -- ivf: row lists, no second copy of the vectors ---------------------------------------------


def test_ivf_file_holds_no_copy_of_the_vectors(tmp_path: Path) -> None:
    """``ivf`` keeps 4-bit codes (half a byte per 4 dimensions) and row ids in its lists, not
    the float rows: those are read from vectors.npy to re-score candidates."""
    n = 3001  # odd: lists of uneven length
    data = clustered(n)
    index = built("ivf", n)
    assert isinstance(index, FaissIndex) and index.needs_rows and not index.legacy
    index.save(tmp_path / "index.faiss")
    codes = n * (ann.fastscan_m(DIM) // 2 + 8)  # codes + int64 ids
    assert (tmp_path / "index.faiss").stat().st_size < codes + 4 * DIM * 64 + 2**16
    assert (tmp_path / "index.faiss").stat().st_size < data.nbytes / 3


@pytest.mark.parametrize("dead_every", [3, 10])
def test_ivf_recall_among_live_rows(dead_every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tombstoned rows arrive as a subset of live rows: the tuned index keeps its recall among
    them, never returns a dead row, and every score it returns is the exact one."""
    monkeypatch.setattr(ann, "FLAT_MAX_ROWS", 5)  # the subset goes through the lists
    n = 3001
    data, q = clustered(n), clustered(200, stream=1)
    alive = np.setdiff1d(np.arange(n), np.arange(0, n, dead_every))
    res = built("ivf", n).search(q, 10, subset=alive)
    assert np.isin(res.ids, alive).all()
    np.testing.assert_allclose(res.scores, np.einsum("qd,qkd->qk", q, data[res.ids]), atol=2e-5)
    _, truth = oracle(data, q, 10, alive)
    recall = np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(res.ids, truth, strict=True)])
    assert recall >= ann.TARGET_RECALL


def test_released_pages_read_back_and_memory_arrays_are_untouched(
    tmp_path: Path,
) -> None:
    """``release`` drops a memory map's pages from the process (the build streams vectors.npy
    through it); the rows read back unchanged, and an array held in memory is never touched
    (MADV_DONTNEED on anonymous memory would zero it)."""
    from semsearch.store.npy import load_vectors, release

    data = clustered(5000)
    np.save(tmp_path / "vectors.npy", data)
    mapped = load_vectors(tmp_path / "vectors.npy", DIM)
    assert float(np.asarray(mapped).sum()) == pytest.approx(float(data.sum()), rel=1e-6)
    release(mapped)
    np.testing.assert_array_equal(np.asarray(mapped), data)
    copy = data.copy()
    release(copy)
    release(mapped[10:20])
    np.testing.assert_array_equal(copy, data)
    np.testing.assert_array_equal(np.asarray(mapped[10:20]), data[10:20])
