"""File grouping against brute force: the array grouping (`group_rows`) against a plain loop,
and search's grouped path (no texts read but of chunks naming the query's names) against
grouping every candidate's full record, as search did before. Ungrouped chunk hits under
the same signals (`rescore_rows`) likewise, and prose left exactly as it was."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.indexing import merge
from semsearch.search import group as grouping
from semsearch.search import retrieve as retrieving
from semsearch.search.group import (
    SHOWN_CHUNKS,
    defines,
    definition_tiers,
    group_rows,
    path_factor,
    query_names,
    rescore_rows,
)
from semsearch.search.request import SearchOptions
from semsearch.search.retrieve import retrieve
from semsearch.store.records import ChunkMention

from .conftest import FakeEmbedder


def _loop_groups(
    rows: list[int], scores: list[float], docs: list[int], defining: list[int],
    factor: list[float],
) -> list[tuple[int, float, tuple[int, ...]]]:  # fmt: skip
    """The oracle: one pass over the chunks, per-document lists sorted in Python."""
    by_doc: dict[int, list[tuple[float, int]]] = {}
    doc_factor: dict[int, float] = {}
    for r, s, d, is_def, f in zip(rows, scores, docs, defining, factor, strict=True):
        bonus = {0: 0.0, 1: grouping.DEFINITION_BONUS, 2: grouping.EXACT_DEFINITION_BONUS}
        score = s * (1.0 + bonus[int(is_def)]) if is_def else s
        by_doc.setdefault(d, []).append((score, r))
        doc_factor[d] = f
    out = []
    for d, chunks in by_doc.items():
        chunks.sort(key=lambda sr: (-sr[0], sr[1]))
        further = tuple(r for _, r in chunks[1:SHOWN_CHUNKS])
        out.append((chunks[0][1], chunks[0][0] * doc_factor[d], further))
    out.sort(key=lambda g: (-g[1], g[0]))
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n", [1, 2, 7, 61, 200])
def test_group_rows_equals_the_loop(seed: int, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "EXACT_DEFINITION_BONUS", 1.0 + seed % 3)
    rng = np.random.default_rng(seed * 1000 + n)
    rows = rng.permutation(5 * n)[:n]
    # Few distinct scores and documents: many ties within and across documents.
    scores = rng.choice(np.linspace(0.1, 0.9, 5), n).astype(np.float32)
    docs = rng.integers(0, max(1, n // 3), n)
    defining = rng.choice(np.array([0, 0, 0, 1, 2], np.int8), n)  # definition tiers
    per_doc = rng.choice([1.0, 0.8], docs.max() + 1)
    factor = per_doc[docs]
    got = group_rows(rows, scores, docs, defining, factor)
    want = _loop_groups(
        rows.tolist(), scores.tolist(), docs.tolist(), defining.tolist(), factor.tolist()
    )
    assert got.rows.tolist() == [g[0] for g in want]
    assert got.scores.tolist() == np.array([g[1] for g in want], np.float32).tolist()
    assert got.further.tolist() == [g[2] for g in want]


def test_group_rows_of_nothing() -> None:
    got = group_rows(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64),
                     np.zeros(0, bool), np.zeros(0))  # fmt: skip
    assert len(got.rows) == len(got.scores) == len(got.further) == 0


def _module(i: int) -> str:
    return (
        f'"""Module {i}: retry helpers and their callers."""\n\n\n'
        f"def compute_backoff_{i % 3}(attempt):\n    return attempt * {i}\n\n\n"
        f"class Worker{i % 4}:\n    def run(self):\n        compute_backoff_{(i + 1) % 3}(1)\n"
        f"        return parse_config('retry {i}')\n\n\n"
        + "".join(f"def helper_{i}_{j}(x):\n    return retry(x) + {j}\n\n\n" for j in range(i % 5))
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for sub in ("", "tests", "vendor/dep", "pkg"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(24):
        sub = ("", "tests", "vendor/dep", "pkg")[i % 4]
        name = f"test_mod{i}.py" if sub == "tests" else f"mod{i}.py"
        (root / sub / name).write_text(_module(i))
    return root


QUERIES = ["compute_backoff_1", "Worker2.run", "where is the retry backoff computed",
           "parse_config", "helper_3_1 retry", "run"]  # fmt: skip


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
def test_grouped_search_equals_grouping_full_records(
    repo: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "TIER_FACTOR", 0)  # keep every segment
    monkeypatch.setattr(merge, "MIN_NEW_ROWS", 0)
    index = SemanticIndex.from_paths(
        [repo], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )
    (repo / "pkg" / "late.py").write_text(_module(30))  # a second segment
    (repo / "mod0.py").write_text(_module(31))  # a tombstone in the first
    index.add_paths([repo])
    view = index.live.view
    assert view is not None and len(view.store.segments) >= 2
    kw = view.store.keyword_index()
    exercised = exact = 0
    for q in QUERIES:
        common = dict(embedder=index.embedder, index=view.index, store=view.store,
                      vectors=view.vectors)  # fmt: skip
        (flat,) = _unscored(q, SearchOptions(k=200, mode=mode), common, monkeypatch)
        (got,) = retrieve([q], SearchOptions(k=10, mode=mode, group="file"), **common)  # type: ignore[arg-type]
        records = view.store.fetch(flat.rows)  # every candidate's full record, text included
        names = query_names(q)
        # Every candidate's full record is a mention: no SQL prefilter.
        everything = [
            ChunkMention(r, records[r].section, records[r].text) for r in flat.rows.tolist()
        ]
        tiers = definition_tiers(
            flat.rows, everything, q, {r: records[r].source for r in flat.rows.tolist()}
        ).tolist()
        assert all(
            bool(t) == (bool(names) and (records[r].section.rsplit(".", 1)[-1] in names
                                         or defines(records[r].text, names)))
            for r, t in zip(flat.rows.tolist(), tiers, strict=True)
        )  # fmt: skip
        defining = tiers
        want = _loop_groups(
            flat.rows.tolist(), flat.scores.tolist(), kw.doc_of(flat.rows).tolist(), defining,
            [path_factor(records[r].source) for r in flat.rows.tolist()],
        )[:10]  # fmt: skip
        assert len(flat.rows) < 200  # every candidate was seen by both
        assert got.rows.tolist() == [g[0] for g in want], q
        assert got.scores.tolist() == np.array([g[1] for g in want], np.float32).tolist(), q
        assert list(got.further) == [g[2] for g in want], q
        exercised += sum(t == 1 for t in defining)
        exact += sum(t == 2 for t in defining)
    assert exercised and exact  # both tiers of the definition bonus took part


def _unscored(
    q: str, opts: SearchOptions, common: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> list[retrieving.Ranked]:
    """Chunk hits as ranked before the code signals (their re-scoring left out)."""
    with monkeypatch.context() as m:
        m.setattr(retrieving, "rescored", lambda ranked, *_: ranked)
        return retrieve([q], opts, **common)  # type: ignore[arg-type]


def _loop_rescored(
    rows: list[int], scores: list[float], defining: list[int], factor: list[float]
) -> list[tuple[int, float]]:
    """The oracle for ungrouped hits: each chunk's score times its tier's and file's factors,
    sorted in Python (ties to the smaller row)."""
    bonus = {0: 0.0, 1: grouping.DEFINITION_BONUS, 2: grouping.EXACT_DEFINITION_BONUS}
    out = [(r, s * (1.0 + bonus[int(t)]) * f)
           for r, s, t, f in zip(rows, scores, defining, factor, strict=True)]  # fmt: skip
    return sorted(out, key=lambda rs: (-rs[1], rs[0]))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("n", [1, 2, 7, 61, 199])
def test_rescore_rows_equals_the_loop(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed * 7919 + n)
    rows = rng.permutation(3 * n)[:n]
    scores = rng.choice(np.linspace(0.1, 0.9, 4), n).astype(np.float32)  # many ties
    defining = rng.choice(np.array([0, 0, 0, 1, 2], np.int8), n)
    factor = rng.choice([1.0, 1.0, 0.8], n)
    if not defining.any() and (factor == 1.0).all():
        factor[0] = 0.8  # a signal fires in every case of this test
    got = rescore_rows(rows, scores, defining, factor)
    assert got is not None
    want = _loop_rescored(rows.tolist(), scores.tolist(), defining.tolist(), factor.tolist())
    assert rows[got.positions].tolist() == [w[0] for w in want]
    assert got.scores.tolist() == np.array([w[1] for w in want], np.float32).tolist()


def test_rescore_rows_leaves_hits_alone_where_no_signal_fires() -> None:
    n = 9
    assert rescore_rows(np.arange(n), np.ones(n), np.zeros(n, np.int8), np.ones(n)) is None


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
def test_ungrouped_hits_equal_rescoring_full_records(
    repo: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = SemanticIndex.from_paths(
        [repo], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )
    view = index.live.view
    assert view is not None
    common = dict(embedder=index.embedder, index=view.index, store=view.store,
                  vectors=view.vectors)  # fmt: skip
    moved = 0
    for q in QUERIES:
        (raw,) = _unscored(q, SearchOptions(k=200, mode=mode), common, monkeypatch)
        (got,) = retrieve([q], SearchOptions(k=200, mode=mode), **common)  # type: ignore[arg-type]
        records = view.store.fetch(raw.rows)
        everything = [
            ChunkMention(r, records[r].section, records[r].text) for r in raw.rows.tolist()
        ]
        tiers = definition_tiers(
            raw.rows, everything, q, {r: records[r].source for r in raw.rows.tolist()}
        ).tolist()
        factor = [path_factor(records[r].source) for r in raw.rows.tolist()]
        want = _loop_rescored(raw.rows.tolist(), raw.scores.tolist(), tiers, factor)
        assert got.rows.tolist() == [w[0] for w in want], q
        assert got.scores.tolist() == np.array([w[1] for w in want], np.float32).tolist(), q
        assert sorted(got.rows.tolist()) == sorted(raw.rows.tolist())  # re-ordered, none lost
        moved += got.rows.tolist() != raw.rows.tolist()
    assert moved  # the signals changed some ranking


PROSE = [
    "NumPy arrays hold numbers of one type; a class of functions works on them.",
    "The type IL_6 response in mice: a def HashMap of the pathway.",  # definers before names
    "Module four of the course covers gradient descent and var reduction.",
    "A HashMap stores pairs; the test of a good hash is spreading keys evenly.",
    "Proteins fold; the TP53 gene guards the genome against damage.",
]


@pytest.mark.parametrize("mode", ["keyword", "dense", "hybrid"])
def test_prose_hits_are_exactly_as_before(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prose, even in a tests/ folder and with a definition keyword before a name the query
    asks for, is not code: its chunk hits keep their ranking and scores to the bit."""
    root = tmp_path / "notes"
    for i, sub in enumerate(("", "tests", "vendor")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / f"notes{i}.md").write_text("\n\n".join(PROSE[i:] + PROSE[:i]))
    (root / "tool.py").write_text("def unrelated():\n    return 1\n")  # code beside them
    index = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "index")
    index.add_paths([root])
    index.add_texts(PROSE, ids=[f"doc{i}" for i in range(len(PROSE))])
    view = index.live.view
    assert view is not None
    common = dict(embedder=index.embedder, index=view.index, store=view.store,
                  vectors=view.vectors)  # fmt: skip
    records = view.store.fetch(np.arange(view.store.rows))
    chunks = [ChunkMention(r, c.section, c.text) for r, c in records.items()]
    sources = {r: c.source for r, c in records.items()}
    rows = np.array(list(records))
    fired = 0
    for q in ["NumPy arrays", "IL_6 pathway", "HashMap", "TP53", "type of interferon"]:
        # the rules alone would fire here: only the documents' kind keeps them out
        fired += int(definition_tiers(rows, chunks, q, sources).any())
        (raw,) = _unscored(q, SearchOptions(k=20, mode=mode), common, monkeypatch)
        (got,) = retrieve([q], SearchOptions(k=20, mode=mode), **common)  # type: ignore[arg-type]
        assert len(got.rows), q
        assert got.rows.tolist() == raw.rows.tolist(), q
        assert got.scores.tobytes() == raw.scores.tobytes(), q
    assert fired
    assert any(path_factor(s) != 1.0 for s in sources.values())
    assert view.store.holds_kind("code") and view.store.holds_kind("text")


_OLD_DEFINERS = (
    r"def|class|function|func|fn|sub|module|struct|interface|type|enum|trait|impl|"
    r"defmodule|defp?|defmacro|const|let|var|async\s+def|async\s+function"
)


def _regex_defines(text: str, names: list[str]) -> bool:
    """The oracle: one regular expression over the whole text (what ``defines`` was)."""
    alt = "|".join(re.escape(n) for n in names)
    return bool(re.search(
        rf"\b(?:{_OLD_DEFINERS})\s+\*?(?:{alt})\b|^[A-Za-z_][\w \t\*]*\b(?:{alt})\s*\([^;\n]*$",
        text, re.MULTILINE,
    ))  # fmt: skip


_PIECES = [
    "def", "class", "async", "defp", "xdef", "_def", "func", "fn", "let", "é", "typé", " ",
    "  ", "\t", "\n", "\u2003", "*", "(", ")", ";", ":", ".", "int", "static", "run",
    "runner", "_run", "Run", "run_it", "acquire", "Lock", "x", "0", "defmodule",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_defines_equals_the_regular_expression(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [["run"], ["run", "runner"], ["Lock", "acquire"], ["run_it"]][seed % 4]
    for _ in range(200):
        # Definition keywords, spaces and names often, so that both answers are common.
        common = ["def ", "class ", " ", "*", "\n", names[0], names[-1]]
        text = "".join(rng.choice(_PIECES + common * 4, int(rng.integers(1, 30))).tolist())
        assert defines(text, names) == _regex_defines(text, names), (text, names)


@pytest.mark.parametrize("names", [["compute_backoff_1"], ["run", "Worker2"], ["nowhere_at_all"]])
def test_mentions_equals_reading_every_record(repo: Path, tmp_path: Path, names: list[str]) -> None:
    index = SemanticIndex.from_paths(
        [repo], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )
    assert index.live.view is not None
    store = index.live.view.store
    every = np.arange(store.rows)
    records = store.fetch(every)
    want = {
        r: (rec.text if any(n in rec.text for n in names) else "")
        for r, rec in records.items()
        if rec.section.rsplit(".", 1)[-1] in names or any(n in rec.text for n in names)
    }
    got = {m.row: m.text for m in store.mentions(every[::-1], names)}
    assert got == want
    assert bool(want) == (names != ["nowhere_at_all"])
