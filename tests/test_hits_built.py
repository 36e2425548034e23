"""Hits built from ranked rows (api/ranked.py) against how they were built before stop 33,
kept here as the oracle: every ranked row's hit built, then copies folded, then the best k
cut; now copies are folded on the records' texts and only the hits shown are built. Also
records read with their global rows against the full records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.api.hits import FileStates, Hit, Parts, fold_copies, folded, staleness, to_hit
from semsearch.api.ranked import ranked_hits
from semsearch.search import collapse, filerank
from semsearch.search.request import SearchOptions
from semsearch.search.retrieve import Ranked
from semsearch.store.segments import SegmentedStore

from .test_filerank import mixed  # noqa: F401  (the fixture: code, prose, two segments)


def _old_ranked_hits(
    ranked: list[Ranked], store: SegmentedStore, opts: SearchOptions, dense_model: str | None
) -> list[list[Hit]]:
    """api/ranked.py's ranked_hits as it was (e6796ab), word for word but the damage check."""
    further_rows = [
        np.asarray([m for more in r.further for m in more], dtype=np.int64)
        for r in ranked
        if r.further is not None
    ]
    wanted = np.unique(np.concatenate([r.rows for r in ranked] + further_rows))
    records = store.fetch(wanted)
    out = []
    for r in ranked:
        none = [None] * len(r.rows)
        measured = (r.cosine, r.bm25, r.dense_part, r.keyword_part)
        parts = [none if a is None else a.tolist() for a in measured]
        further = r.further if r.further is not None else [()] * len(r.rows)
        hits = [
            to_hit(
                records[int(i)],
                float(s),
                Parts(cos, bm, dp, kp, r.dense_weight),
                [records[int(m)] for m in more],
                dense_model,
            )
            for i, s, more, cos, bm, dp, kp in zip(
                r.rows.tolist(), r.scores.tolist(), further, *parts, strict=True
            )
        ]
        if opts.collapse:
            hits = fold_copies(hits)
        out.append(hits[: opts.k])
    return out


def _rankings(store: SegmentedStore, seed: int) -> list[Ranked]:
    """Random rankings of the index's live rows (odd sizes, ties), one grouped by file."""
    rng = np.random.default_rng(seed)
    live = np.setdiff1d(np.arange(store.rows), store.dead_rows())  # (their records are kept)
    out = []
    for grouped in (False, True):
        n = int(rng.integers(1, len(live) + 1))
        rows = rng.choice(live, n, replace=False).astype(np.int64)
        scores = (rng.integers(0, 5, n) / 4.0).astype(np.float32)
        ranked = Ranked(rows, scores, cosine=scores * 2, bm25=None, dense_part=scores,
                        keyword_part=scores / 2, dense_weight=0.45)  # fmt: skip
        if grouped:
            ranked = filerank.by_file(ranked, store, "Worker2.run", None)
        out.append(ranked)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_hits_equal_building_all_then_folding(mixed: SemanticIndex, seed: int) -> None:  # noqa: F811
    view = mixed.live.view
    assert view is not None
    store = view.store
    folds = 0
    for ranked in _rankings(store, seed):
        for folding in (True, False):
            for k in (1, 3, 7, 20, 1000):
                opts = SearchOptions(k=k, collapse=folding)
                got = ranked_hits([ranked, ranked], store, opts, "m", where=Path("/"))
                want = _old_ranked_hits([ranked, ranked], store, opts, "m")
                assert got == want, (folding, k)
                folds += sum(bool(h.also_in) for h in got[0])
    if seed == 0:
        assert folds  # the fixture holds copies: folding was exercised


def _hit(n: int, text: str, source: str) -> Hit:
    return Hit(1.0, text, source, source, n, start=0, end=1, line_start=1, line_end=1)


def test_folded_equals_fold_copies() -> None:
    texts = ["a b", "A  b!", "c", "a b", "c.", "d", "a-b"]
    sources = ["x", "y", "x", "x", "z", "x", "z"]
    pairs = enumerate(zip(texts, sources, strict=True))
    hits = [_hit(n, t, s) for n, (t, s) in pairs]
    whole = fold_copies(hits)
    assert [h.chunk_id for h in whole] == [0, 2, 3, 5]  # (3: a copy in its own file)
    assert whole[0].also_in == ("y", "z") and whole[1].also_in == ("z",)
    for k in (None, 0, 1, 2, 3, 5):
        assert [(h.chunk_id, h.also_in) for h in whole[:k]] == [
            (n, also) for n, also in folded(texts, sources, k)
        ]


def test_file_states_judge_each_file_once(mixed: SemanticIndex, tmp_path: Path) -> None:  # noqa: F811
    view = mixed.live.view
    assert view is not None
    records = list(view.store.fetch(np.arange(view.store.rows)).values())
    states = FileStates()
    assert [states.of(r) for r in records] == [staleness(r) for r in records]
    some = next(r for r in records if r.doc_stat is not None)
    Path(some.source).write_text("changed\n")
    assert staleness(some) == "changed"
    assert states.of(some) is None  # as judged earlier in the same search
    assert FileStates().of(some) == "changed"


@pytest.mark.parametrize("size", [0, 1, 7, 33, 10_000])
def test_global_rows_equal_the_records(mixed: SemanticIndex, size: int) -> None:  # noqa: F811
    view = mixed.live.view
    assert view is not None
    store = view.store
    every = store.fetch(np.arange(store.rows))
    assert all(rec.row == r for r, rec in every.items())
    assert {r for r in every if r >= store.segments[-1].offset}  # rows of a later segment
    rng = np.random.default_rng(size)
    rows = rng.choice(store.rows, min(size, store.rows), replace=False)
    assert store.fetch(rows) == {int(r): every[int(r)] for r in rows if r in every}
    first = store.segments[-1]
    local = first.store.fetch([0, 1], first.offset)
    assert local == {first.offset + r: every[first.offset + r] for r in (0, 1)}


def _old_copies(texts: list[str], sources: list[str]) -> list[int]:
    """search/collapse.copies as it was (e6796ab): keyed by the hashed text_key."""
    first: dict[str, int] = {}
    out = []
    for n, text in enumerate(texts):
        m = first.setdefault(collapse.text_key(text), n)
        out.append(m if m != n and sources[m] != sources[n] else -1)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_copies_equal_keying_by_the_hash(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pieces = ["def run", "Def  RUN!", "déf run", "x_y", "X-Y", "", " ", "ﬁle", "FILE", "1 2"]
    n = int(rng.integers(0, 40))
    texts = [" ".join(rng.choice(pieces, int(rng.integers(1, 4)))) for _ in range(n)]
    sources = [str(s) for s in rng.integers(0, 3, n)]
    assert collapse.copies(texts, sources) == _old_copies(texts, sources)
