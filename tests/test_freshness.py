"""Refreshing from remembered roots: the stat-first check agrees with hashing everything, an
unchanged tree never loads the model or opens the cache, and queries can refresh first."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import semsearch.api.operations as operations
import semsearch.watch.delta as delta_module
from semsearch import SemanticIndex, index_paths
from semsearch.cli import main
from semsearch.indexing import Changes
from semsearch.indexing.plan import make_plan
from semsearch.ingest.discover import discover
from semsearch.store import IndexDir
from semsearch.watch import check

from .conftest import FakeEmbedder

NAMES = ["a.txt", "b.md", "sub/c.txt", "sub/deep/d.txt", "e.txt"]
TEXT = st.text(alphabet="abc xyz.\n", min_size=1, max_size=40).filter(lambda t: t.strip())
OP_NAMES = ["same_size", "resize", "touch", "rewrite_same", "replace_new", "replace_same",
            "delete", "add", "hidden", "empty_dir"]  # fmt: skip
OPS = st.sampled_from(OP_NAMES)


def _sha_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _stored(idx: Path) -> dict[str, str]:
    store = IndexDir(idx).open_store()
    try:
        return {d.doc_id: d.sha256 for d in store.documents()}
    finally:
        store.close()


def _apply(root: Path, op: str, name: str, text: str, tick: int) -> None:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if op == "hidden":  # not indexed, but seen by the fingerprint: a full check, no change
        p.with_name(f".{p.name}.swp").write_text(text)
        return
    if op == "empty_dir":
        (p.parent / f"empty{tick}").mkdir(exist_ok=True)
        return
    exists = p.is_file()
    if op == "add" or not exists:
        if op != "delete":
            p.write_text(text)
        return
    old = p.read_text()
    if op == "same_size":  # in place, same length, different bytes where possible
        flipped = "".join("b" if c == "a" else "a" if c == "b" else c for c in old)
        p.write_text(flipped if flipped != old else ("x" * len(old)))
    elif op == "resize":
        p.write_text(old + text)
    elif op == "touch":  # new mtime, same bytes
        st_ = p.stat()
        os.utime(p, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000 * (tick + 1)))
    elif op == "rewrite_same":
        p.write_text(old)
    elif op in ("replace_new", "replace_same"):  # temp file + rename: a new inode
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(text if op == "replace_new" else old)
        os.replace(tmp, p)
    elif op == "delete":
        p.unlink()


def _agrees_with_brute_force(root: Path, idx: Path, ops, remember_first: bool) -> None:
    """Apply ``ops`` to an indexed tree, then compare the plan (and the refresh's check,
    which may answer from its remembered fingerprint) with hashing every file."""
    index_paths([root], idx, embedder=FakeEmbedder())
    if remember_first:  # an in-sync check first: later checks may take the fingerprint path
        assert not check(IndexDir(idx)).changed
    for tick, (op, name, text) in enumerate(ops):
        _apply(root, op, name, text, tick)

    # Brute force: hash every file now on disk and compare with what was indexed.
    stored = _stored(idx)
    now = {
        str(p): _sha_file(p)
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    added = {s for s in now if s not in stored}
    updated = {s for s in now if s in stored and stored[s] != now[s]}
    removed = {s for s in stored if s not in now}

    store = IndexDir(idx).open_store()
    docs = {d.doc_id: d for d in store.documents()}
    store.close()
    if now:  # ``discover`` refuses a tree with no files left; the check below must not
        plan = make_plan(Changes(items=discover([root]), roots=[root]), docs)
        assert {str(p) for p in plan.process} == added | updated
        assert plan.drop == updated | removed
        assert (plan.added, plan.updated, plan.removed) == (len(added), len(updated), len(removed))
        assert plan.unchanged == len(now) - len(added) - len(updated)

    for _ in range(2):  # the refresh's own check says the same, also when it remembers
        delta = check(IndexDir(idx))
        assert {str(p) for p in delta.plan.process} == added | updated
        assert delta.plan.drop == updated | removed
        assert delta.changed == bool(added or updated or removed)
        assert delta.plan.unchanged == len(now) - len(added) - len(updated)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    initial=st.dictionaries(st.sampled_from(NAMES), TEXT, min_size=1),
    ops=st.lists(st.tuples(OPS, st.sampled_from(NAMES), TEXT), max_size=8),
    remember_first=st.booleans(),
)
def test_stat_first_plan_agrees_with_hashing_everything(initial, ops, remember_first) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, idx = Path(tmp) / "root", Path(tmp) / "idx"
        for name, text in initial.items():
            _apply(root, "add", name, text, 0)
        _agrees_with_brute_force(root, idx, ops, remember_first)


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("remember_first", [False, True])
def test_each_single_change_is_seen(tmp_path: Path, op: str, remember_first: bool) -> None:
    """Every kind of change on its own, right after an in-sync check: the cases a random
    search may not hit in a bounded number of examples."""
    root = tmp_path / "root"
    for name in NAMES[:4]:
        _apply(root, "add", name, f"ab text of {name}", 0)
    _agrees_with_brute_force(root, tmp_path / "idx", [(op, "sub/c.txt", "xyz")], remember_first)


@pytest.mark.parametrize("remember_first", [False, True])
def test_deleting_every_file_is_seen(tmp_path: Path, remember_first: bool) -> None:
    """A tree emptied since the build: every document is to be removed (the case Hypothesis
    found, where discovery itself refuses a tree with no files)."""
    root = tmp_path / "root"
    for name in NAMES[:3]:
        _apply(root, "add", name, f"text of {name}", 0)
    ops = [("delete", name, "") for name in NAMES[:3]]
    _agrees_with_brute_force(root, tmp_path / "idx", ops, remember_first)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, FakeEmbedder]:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    (docs / "sub").mkdir(parents=True)
    for i in range(30):
        (docs / f"n{i:02d}.txt").write_text(f"Note {i} about subject {i % 7}. Another sentence.")
    (docs / "sub" / "lava.txt").write_text("Volcanoes erupt lava.")
    emb = FakeEmbedder()
    index_paths([docs], idx, embedder=emb)
    return docs, idx, emb


def _no_model_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("an unchanged refresh must not load the model or open the cache")

    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", refuse)
    monkeypatch.setattr("semsearch.indexing.writer.EmbeddingCache", refuse)


def test_unchanged_refresh_loads_no_model_and_opens_no_cache(built, monkeypatch) -> None:
    docs, idx, _ = built
    _no_model_no_cache(monkeypatch)
    pointer = IndexDir(idx).pointer()
    stats = operations.refresh_index(idx)
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (0, 0, 0, 31)
    assert not stats.changed and IndexDir(idx).pointer() == pointer
    os.utime(docs / "n03.txt", ns=(1, 2))  # touched only: hashed, still unchanged, no model
    assert not operations.refresh_index(idx).changed


def test_an_unchanged_tree_is_recognised_without_discovery(built, monkeypatch) -> None:
    docs, idx, _ = built
    first = check(IndexDir(idx))  # full check: in sync, so its fingerprint is remembered
    assert not first.changed and len(first.files) == 31
    assert (idx / "FRESH").is_file()

    def no_walk(*a: object, **k: object) -> None:
        raise AssertionError("discovery must not run when the fingerprint matches")

    monkeypatch.setattr(delta_module, "discover", no_walk)
    again = check(IndexDir(idx))
    assert not again.changed and again.plan.unchanged == 31 and again.files == ()
    monkeypatch.undo()
    (docs / "sub" / "lava.txt").write_text("Volcanoes erupt lava, and ash too.")
    changed = check(IndexDir(idx))
    assert changed.changed and [p.name for p in changed.plan.process] == ["lava.txt"]
    (idx / "FRESH").write_text('{"key": 1, "fingerprint": []}')  # damaged: ignored
    assert check(IndexDir(idx)).changed


def test_data_files_are_checked_by_their_rows(tmp_path, monkeypatch) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    rows = docs / "rows.jsonl"
    rows.write_text('{"text": "first row about owls"}\n{"text": "second row about bats"}\n')
    (docs / "plain.txt").write_text("A plain file.")
    emb = FakeEmbedder()
    index_paths([docs], idx, embedder=emb)
    first = check(IndexDir(idx), full=True)
    assert not first.changed, first.plan  # rows are documents: the data file is not "new"
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: emb)
    rows.write_text('{"text": "first row about owls"}\n{"text": "a new second row"}\n')
    stats = operations.refresh_index(idx)
    assert (stats.added, stats.updated, stats.removed) == (0, 1, 0)  # rows are numbered
    assert not operations.refresh_index(idx).changed


def test_changed_refresh_loads_the_model_and_applies_everything(built, monkeypatch) -> None:
    docs, idx, emb = built
    loads = []
    monkeypatch.setattr(
        "semsearch.indexing.writer.load_embedder", lambda *a, **k: loads.append(a) or emb
    )
    (docs / "n01.txt").write_text("Rewritten: glaciers.")
    (docs / "n02.txt").unlink()
    (docs / "sub" / "new.txt").write_text("Brand new: deserts.")
    stats = operations.refresh_index(idx)
    assert (stats.added, stats.updated, stats.removed) == (1, 1, 1)
    assert len(loads) == 1 and loads[0][0] == "fake-bow"
    assert set(_stored(idx)) == {str(p) for p in docs.rglob("*.txt")}


def test_rebuild_from_remembered_roots_never_trusts_the_fingerprint(built, monkeypatch) -> None:
    docs, idx, emb = built
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: emb)
    assert not check(IndexDir(idx)).changed  # in sync: the fingerprint is remembered
    stats = operations.refresh_index(idx, rebuild=True)
    assert (stats.documents, stats.updated, stats.removed) == (31, 31, 0)
    assert set(_stored(idx)) == {str(p) for p in docs.rglob("*.txt")}


def test_cli_update_is_index_with_no_paths(built, monkeypatch, capsys) -> None:
    docs, idx, emb = built
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: emb)
    (docs / "n05.txt").write_text("Changed for update.")
    assert main(["update", "--index", str(idx), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["updated"], out["unchanged"], out["changed"]) == (1, 30, True)
    assert main(["update", "--index", str(idx), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["updated"], again["changed"]) == (0, False)
    assert main(["index", "--index", str(idx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_a_missing_root_keeps_its_documents(built, tmp_path, caplog) -> None:
    docs, idx, _ = built
    os.rename(docs, tmp_path / "elsewhere")
    stats = operations.refresh_index(idx)
    assert not stats.changed and stats.documents == 31
    assert any("is missing; its documents are kept" in r.getMessage() for r in caplog.records)


def test_api_refresh_and_its_budget(built) -> None:
    docs, idx, emb = built
    index = SemanticIndex.load(idx, embedder=emb)
    (docs / "sub" / "lava.txt").write_text("Volcanoes are asleep; meadows grow on them.")
    hit = index.search("meadows volcanoes", k=1, mode="keyword")
    assert hit == [] or hit[0].stale == "changed"
    stale = index.search("volcanoes lava", k=1, mode="keyword")[0]
    assert stale.stale == "changed"  # flagged when not refreshed

    late = index.refresh(budget=0.0)  # no time at all: nothing applied, and it says so
    assert not late.complete and late.pending == 1 and "budget" in late.reason
    assert index.search("volcanoes lava", k=1, mode="keyword")[0].stale == "changed"

    done = index.refresh(budget=30.0)
    assert done.complete and (done.stats.updated, done.pending) == (1, 0)
    fresh = index.search("meadows", k=1, mode="keyword")[0]
    assert fresh.source.endswith("lava.txt") and fresh.stale is None
    assert not index.refresh().stats.changed


class _SlowEmbedder(FakeEmbedder):
    def encode(self, texts, *, kind="document"):  # type: ignore[no-untyped-def]
        time.sleep(3.0)  # each batch far slower than the budget, whatever the machine's load
        return super().encode(texts, kind=kind)


def test_a_build_that_outruns_the_budget_publishes_nothing(built) -> None:
    docs, idx, _ = built
    slow = _SlowEmbedder()
    index = SemanticIndex.load(idx, embedder=slow)
    pointer = IndexDir(idx).pointer()
    for i in range(600):  # more than one embedding batch, each slower than the budget
        (docs / f"extra{i:03d}.txt").write_text(f"Extra file {i}. " + "More words here. " * 20)
    # The budget leaves room for the check (a stat per file) even on a loaded machine; the
    # embedding cannot fit in it.
    result = index.refresh(budget=2.5)
    assert not result.complete and result.pending == 600
    assert "embedding" in result.reason
    assert IndexDir(idx).pointer() == pointer
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]


def test_cli_query_refresh(built, monkeypatch, capsys) -> None:
    docs, idx, emb = built
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: emb)
    monkeypatch.setattr("semsearch.embed.models.KNOWN_MODELS", frozenset({emb.name}))
    (docs / "sub" / "lava.txt").write_text("Now the file speaks of penguins.")
    args = ["query", "penguins", "--index", str(idx), "--mode", "keyword", "--json"]
    assert main([*args, "--refresh", "--refresh-budget", "0"]) == 1  # not applied: no hit
    assert "not applied" in capsys.readouterr().err
    assert main([*args, "--refresh"]) == 0
    captured = capsys.readouterr()
    hits = json.loads(captured.out)
    assert hits[0]["source"].endswith("lava.txt") and hits[0]["stale"] is None
    assert "refreshed: 0 added, 1 updated, 0 removed" in captured.err
