"""The file-level ranking (search/filerank.py) against what it was before its cuts (stop 32),
kept here as the oracle: the same hits, scores, order and further chunks, on indexes of code,
prose and both, in every mode, grouped or not; each cut's parts against brute force."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.indexing import merge
from semsearch.search import collapse, filerank
from semsearch.search import retrieve as retrieving
from semsearch.search.group import (
    DOWNWEIGHT,
    EXACT_DEFINITION_BONUS,
    definition_tiers,
    group_rows,
    path_factor,
    query_names,
    rescore_rows,
)
from semsearch.search.request import SearchOptions
from semsearch.search.retrieve import Ranked, retrieve
from semsearch.store.segments import SegmentedStore
from semsearch.util import unique_sorted

from .conftest import FakeEmbedder
from .test_group_oracle import _module as python_module

# --- the oracle: search/filerank.py as it was (fd2e3ed), word for word -------------------


def _old_by_file(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """One row per document (its best chunk), scored by :mod:`.group`; with ``k``, only
    documents that can be among the best ``k`` (:func:`_old_contenders`)."""
    if k is not None:
        ranked = ranked.take(
            _old_contenders(ranked.scores, store.keyword_index().doc_of(ranked.rows), k)
        )
    docs, defining, factor = _old_signals(ranked.rows, store, query)
    grouped = group_rows(ranked.rows, ranked.scores, docs, defining, factor)
    pos = {int(r): i for i, r in enumerate(ranked.rows.tolist())}
    at = np.array([pos[int(r)] for r in grouped.rows], dtype=np.int64)
    return replace(ranked.take(at), rows=grouped.rows, scores=grouped.scores,
                   further=grouped.further)  # fmt: skip


def _old_rescored(ranked: Ranked, store: SegmentedStore, query: str, k: int | None) -> Ranked:
    """Chunk hits re-scored by the signals of :mod:`.group` (unchanged where none fires,
    and at no cost in an index without code); with ``k``, only the rows that can be among
    the best ``k`` are looked at (:func:`_old_contenders`)."""
    from semsearch.ingest.readers.text import CodeReader

    if not store.holds_kind(CodeReader.kind):
        return ranked
    few = ranked if k is None else ranked.take(_old_contenders(ranked.scores, ranked.rows, k))
    _, defining, factor = _old_signals(few.rows, store, query)
    found = rescore_rows(few.rows, few.scores, defining, factor)
    if found is None:
        return ranked
    return replace(few.take(found.positions), scores=found.scores)


def _old_contenders(scores: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the rows whose key (the row itself, or its document when grouping) can
    still be among the best ``k`` keys once :mod:`.group`'s signals apply. A key scores its
    best row's score times a tier factor (1 to ``1 + EXACT_DEFINITION_BONUS``) and a file
    factor (``DOWNWEIGHT`` to 1): a key whose highest possible score is below the k-th best
    of the lowest possible ones cannot get in (equal ones stay: ties go by row)."""
    s = np.asarray(scores, np.float64)
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = np.asarray(keys)[by_key]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    if len(starts) <= k:
        return np.arange(len(s))
    best = np.maximum.reduceat(s[by_key], starts)
    gains = np.array([DOWNWEIGHT, 1.0 + EXACT_DEFINITION_BONUS])
    highest, lowest = (best[:, None] * gains).max(axis=1), (best[:, None] * gains).min(axis=1)
    floor = np.partition(lowest, len(lowest) - k)[len(lowest) - k]
    keep = highest >= floor - 1e-9 * abs(floor)  # (rounding in the factors' products)
    row_keep = np.empty(len(s), bool)
    row_keep[by_key] = np.repeat(keep, np.diff(np.r_[starts, len(s)]))
    return np.flatnonzero(row_keep)


def _old_signals(
    rows: np.ndarray, store: SegmentedStore, query: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's document key, definition tier and file factor (:mod:`.group`), the
    signals only in code (a document the code reader made; 0 and 1 elsewhere). No text is
    read but of code chunks that name what the query asks for (the others cannot define
    it)."""
    from semsearch.ingest.readers.text import CodeReader

    kw = store.keyword_index()
    docs = kw.doc_of(rows)
    defining = np.zeros(len(rows), np.int8)
    factor = np.ones(len(rows), np.float64)
    keys = unique_sorted(docs)
    kinds = kw.doc_ids(keys.tolist(), "kind")
    code_keys = keys[np.array([kinds[int(d)] == CodeReader.kind for d in keys], bool)]
    if not len(code_keys):
        return docs, defining, factor
    sources = kw.doc_ids(code_keys.tolist(), "source")
    code = np.isin(docs, code_keys)
    of_doc = {d: path_factor(source) for d, source in sources.items()}
    factor[code] = [of_doc[d] for d in docs[code].tolist()]
    names = query_names(query)
    if names:
        pairs = zip(rows[code].tolist(), docs[code].tolist(), strict=True)
        source_of = {int(r): sources[int(d)] for r, d in pairs}
        defining = definition_tiers(rows, store.mentions(rows[code], names), query, source_of)
    return docs, defining, factor


# --- fixtures ------------------------------------------------------------------------------


def _module(i: int) -> str:
    """test_group_oracle's module, and a C-style function head after it."""
    return (
        python_module(i)
        + f"int parse_config_{i % 2}(const char *path)\n{{\n    return retry({i});\n}}\n"
    )


PROSE = [
    "Retry with backoff: compute the delay, then run the worker again.",
    "The Worker2 class runs jobs; parse_config reads the settings file.",
    "Notes on helper functions and how the retry loop is computed.",
]


@pytest.fixture(params=["down-weighted files", "none"])
def mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> SemanticIndex:
    """Code in plain, tests/ and vendor/ folders (or plain ones only: no file factor
    fires) over two segments with a tombstone, and prose (Markdown and plain texts)."""
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)  # keep every segment
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)
    root = tmp_path / "repo"
    subs = ("", "tests", "vendor/dep", "pkg") if request.param != "none" else ("", "pkg") * 2
    for sub in subs:
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(24):
        sub = subs[i % 4]
        name = f"test_mod{i}.py" if sub == "tests" else f"mod{i}.py"
        (root / sub / name).write_text(_module(i))
    (root / "notes.md").write_text("\n\n".join(PROSE * 3))
    index = SemanticIndex.from_paths(
        [root], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )
    (root / "pkg" / "late.py").write_text(_module(30))  # a second segment
    (root / "mod0.py").write_text(_module(31))  # a tombstone in the first
    index.add_paths([root])
    index.add_texts(PROSE, ids=[f"prose{i}" for i in range(len(PROSE))])
    view = index.live.view
    assert view is not None and len(view.store.segments) >= 2
    return index


QUERIES = [
    "compute_backoff_1", "Worker2.run", "Worker3.run", "where is the retry backoff computed",
    "parse_config", "parse_config_1", "helper_3_1 retry", "run", "retry", "Worker1",
    "how does parse_config read settings", "nowhere_at_all",
]  # fmt: skip


def _common(index: SemanticIndex) -> dict[str, object]:
    view = index.live.view
    assert view is not None
    return dict(embedder=index.embedder, index=view.index, store=view.store, vectors=view.vectors)


def _fields(r: Ranked) -> list[object]:
    parts = (r.cosine, r.bm25, r.dense_part, r.keyword_part)
    further = None if r.further is None else list(r.further)
    return [r.rows.tolist(), r.scores.tolist(), *[None if a is None else a.tolist() for a in parts],
            further, r.dense_weight]  # fmt: skip


# --- the whole path: new against old ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
@pytest.mark.parametrize("grouping", [None, "file"])
def test_search_equals_the_old_file_ranking(
    mixed: SemanticIndex, mode: str, grouping: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = _common(mixed)
    fired = 0
    for k in (1, 3, 10, 20):
        for extra in ({}, {"min_score": 0.2}, {"per_source": 1}, {"diverse": True}):
            opts = SearchOptions(k=k, mode=mode, group=grouping, **extra)  # type: ignore[arg-type]
            got = retrieve(QUERIES, opts, **common)  # type: ignore[arg-type]
            with monkeypatch.context() as m:
                m.setattr(retrieving, "rescored", _old_rescored)
                m.setattr(retrieving, "by_file", _old_by_file)
                want = retrieve(QUERIES, opts, **common)  # type: ignore[arg-type]
            for q, g, w in zip(QUERIES, got, want, strict=True):
                assert _fields(g) == _fields(w), (q, k, extra)
            with monkeypatch.context() as m:
                m.setattr(retrieving, "rescored", lambda ranked, *_: ranked)
                m.setattr(retrieving, "by_file", lambda ranked, *_: ranked)
                plain = retrieve(QUERIES, opts, **common)  # type: ignore[arg-type]
            fired += sum(_fields(p) != _fields(w) for p, w in zip(plain, want, strict=True))
    assert fired  # the signals changed some rankings


def test_hits_equal_the_old_file_ranking(
    mixed: SemanticIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    for grouping in (None, "file"):
        got = [mixed.search(q, 10, group=grouping) for q in QUERIES]  # type: ignore[arg-type]
        with monkeypatch.context() as m:
            m.setattr(retrieving, "rescored", _old_rescored)
            m.setattr(retrieving, "by_file", _old_by_file)
            want = [mixed.search(q, 10, group=grouping) for q in QUERIES]  # type: ignore[arg-type]
        assert got == want


@pytest.mark.parametrize("seed", range(12))
def test_rescored_equals_the_old_on_any_ranking(mixed: SemanticIndex, seed: int) -> None:
    """Random rankings of the index's rows (many ties, some out of row order, negative
    scores): the best k the new and the old re-scoring return are the same."""
    view = mixed.live.view
    assert view is not None
    store = view.store
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, store.rows))
    rows = rng.choice(store.rows, n, replace=False).astype(np.int64)
    if seed % 3 == 0:
        scores = (rng.integers(-2, 6, n) / 5.0).astype(np.float32)
    else:
        scores = rng.normal(0.3, 0.3, n).astype(np.float32)
    pos = np.lexsort((rows, -scores.astype(np.float64)))
    if seed % 2:  # ties out of row order: the first k may not be the best k by row
        pos = np.lexsort((-rows, -scores.astype(np.float64)))
    ranked = Ranked(rows[pos], scores[pos], cosine=scores[pos] * 2)
    for q in QUERIES:
        for k in (1, 2, 5, 10, 40):
            got, want = filerank.rescored(ranked, store, q, k), _old_rescored(ranked, store, q, k)
            assert _fields(got.take(np.arange(min(k, len(got.rows))))) == _fields(
                want.take(np.arange(min(k, len(want.rows))))
            ), (q, k)
            grouped = filerank.by_file(ranked, store, q, k)
            old = _old_by_file(ranked, store, q, k)
            cut = np.arange(min(k, len(old.rows)))
            assert _fields(grouped.take(cut)) == _fields(old.take(cut)), (q, k)
        assert _fields(filerank.rescored(ranked, store, q, None)) == _fields(
            _old_rescored(ranked, store, q, None)
        )


# --- the parts -----------------------------------------------------------------------------


def test_signals_equal_reading_every_record(mixed: SemanticIndex) -> None:
    """Documents' kinds and factors from the generation's cache (read once), tiers as before."""
    view = mixed.live.view
    assert view is not None
    store = view.store
    records = store.fetch(np.arange(store.rows))  # the live rows' (a tombstone hides some)
    rows = np.array(sorted(records), np.int64)[::-1]
    for q in QUERIES:
        docs, tiers, factor = filerank.signals(rows, store, q)
        old_docs, old_tiers, old_factor = _old_signals(rows, store, q)
        assert docs.tolist() == old_docs.tolist()
        assert tiers.tolist() == old_tiers.tolist()
        assert factor.tolist() == old_factor.tolist()
        want = [path_factor(records[r].source) if records[r].kind == "code" else 1.0
                for r in rows.tolist()]  # fmt: skip
        assert factor.tolist() == want
    if any("/tests/" in c.source for c in records.values()):
        assert {0.8, 1.0} <= set(factor.tolist())


def test_code_texts_are_the_plain_texts(mixed: SemanticIndex) -> None:
    view = mixed.live.view
    assert view is not None
    store = view.store
    rng = np.random.default_rng(1)
    live = np.array(sorted(store.fetch(np.arange(store.rows))), np.int64)
    for n in (0, 1, 10, len(live)):
        rows = rng.choice(live, n, replace=False)
        records = store.fetch(rows).values()
        want = [c.text if c.kind != "code" else "" for c in records]
        assert sorted(filerank.code_texts(store, rows)) == sorted(want)
    assert any(filerank.code_texts(store, np.arange(store.rows)))  # prose is read


def test_doc_facts_grow_and_stay_per_generation(mixed: SemanticIndex, tmp_path: Path) -> None:
    view = mixed.live.view
    assert view is not None
    store = view.store
    kw = store.keyword_index()
    facts = filerank.DocFacts()
    docs = kw.doc_of(np.arange(store.rows))
    keys = unique_sorted(docs)
    kinds, sources = kw.doc_ids(keys.tolist(), "kind"), kw.doc_ids(keys.tolist(), "source")
    for part in (keys[-1:], keys[:3], keys[::2], docs):  # the largest key first: grown later
        code, factor = facts.of(kw, np.asarray(part, np.int64))
        assert code.tolist() == [kinds[d] == "code" for d in part.tolist()]
        assert factor.tolist() == [
            path_factor(sources[d]) if kinds[d] == "code" else 1.0 for d in part.tolist()
        ]
    (tmp_path / "repo" / "pkg" / "later.py").write_text(_module(40))
    mixed.add_paths([tmp_path / "repo"])
    assert mixed.live.view is not None and mixed.live.view.store is not store


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("grouped", [False, True])
def test_contenders_with_known_factors_give_the_best_k(seed: int, grouped: bool) -> None:
    """Bounds from each row's own file factor and the query's largest tier: ranking only
    the contenders gives the best k (and each file's shown chunks) that ranking every row
    gives, and no more rows than the widest bounds keep."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    rows = np.sort(rng.choice(5000, n, replace=False)).astype(np.int64)
    scores = rng.integers(-2, 6, n) / 5.0 if seed % 3 == 0 else rng.normal(0.3, 0.3, n)
    docs = rng.integers(0, max(1, n // int(rng.integers(1, 6))), n)
    code_doc = rng.random(docs.max() + 1) < 0.7
    by_doc = np.where(rng.random(docs.max() + 1) < 0.3, DOWNWEIGHT, 1.0)
    code, factor = code_doc[docs], np.where(code_doc[docs], by_doc[docs], 1.0)
    top = [0, 1, 2][seed % 3]  # the query's largest tier
    tiers = np.where(code, rng.integers(0, top + 1, n), 0).astype(np.int8)
    facts = filerank.RowFacts(docs, code, factor)
    query = ["where is it", "where is parse_config", "parse_config"][top]
    low, high = facts.bounds(query)
    for k in (1, 3, 10, 40):
        keys = docs if grouped else rows
        keep = filerank.contenders(scores, keys, k, low, high)
        assert len(keep) <= len(filerank.contenders(scores, keys, k))
        if grouped:
            full = group_rows(rows, scores, docs, tiers, factor)
            part = group_rows(rows[keep], scores[keep], docs[keep], tiers[keep], factor[keep])
            assert np.array_equal(part.rows[:k], full.rows[:k])
            assert np.array_equal(part.scores[:k], full.scores[:k])
            assert list(part.further[:k]) == list(full.further[:k])
        else:
            full_r = rescore_rows(rows, scores, np.maximum(tiers, 1), factor)
            part_r = rescore_rows(rows[keep], scores[keep], np.maximum(tiers[keep], 1),
                                  factor[keep])  # fmt: skip
            assert full_r is not None and part_r is not None
            assert np.array_equal(rows[keep][part_r.positions][:k], rows[full_r.positions][:k])
            assert np.array_equal(part_r.scores[:k], full_r.scores[:k])


@pytest.mark.parametrize("seed", range(30))
def test_leads_in_order_equals_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 30))
    rows = rng.choice(100, n, replace=False)
    scores = rng.integers(0, 4, n).astype(np.float32)
    pos = np.lexsort((rows, -scores)) if seed % 2 else rng.permutation(n)
    rows, scores = rows[pos], scores[pos]
    for k in (1, 2, 5, 40):
        best = np.lexsort((rows, -scores.astype(np.float64)))[:k]
        want = best.tolist() == list(range(min(k, n)))
        assert filerank._leads_in_order(rows, scores, k) == want


_ASCII = [" ", "\t", "\n", "\x1c", "\x1f", "_", "-", "A", "b", "Z", "z", "0", "9", "(", "é",
          "İ", "ß", "\u2003", "Word", "word"]  # fmt: skip


@pytest.mark.parametrize("seed", range(20))
def test_text_key_equals_the_expression(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pieces = _ASCII if seed % 2 else [p for p in _ASCII if p.isascii()]
    for _ in range(200):
        text = "".join(rng.choice(pieces, int(rng.integers(0, 25))).tolist())
        normal = re.sub(r"[\W_]+", " ", text.casefold()).strip()
        assert collapse.text_key(text) == hashlib.blake2b(normal.encode()).hexdigest(), text


def test_qualified_tiers_read_the_sources_they_need(mixed: SemanticIndex) -> None:
    """A qualified one-symbol query reads the file of the chunks its definition's name
    sections, and the exact tier fires on them as before."""
    view = mixed.live.view
    assert view is not None
    records = view.store.fetch(np.arange(view.store.rows))
    rows = np.array(sorted(records), np.int64)
    sources = {r: c.source for r, c in records.items()}
    exact = 0
    for q in ("Worker2.run", "mod4.compute_backoff_1", "pkg.compute_backoff_0"):
        _, tiers, _ = filerank.signals(rows, view.store, q)
        mentions = view.store.mentions(rows[[records[r].kind == "code" for r in rows.tolist()]],
                                       query_names(q))  # fmt: skip
        want = definition_tiers(rows, mentions, q, sources)
        assert tiers.tolist() == want.tolist()
        exact += int((tiers == 2).sum())
    assert exact  # the exact tier, which reads the sources, took part
