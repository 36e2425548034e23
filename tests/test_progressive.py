"""Progressive indexing: phase 1 (keyword + static vectors) searchable at once, phase 2
(the transformer) published at once, equal to a transformer build of the same files, and
resumable after a kill.

The static table is random (``fake_distil``: distilling for real takes minutes), with the
bundled model's real tokenizer; phase 2 and the oracle use the real int8 model.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch import api
from semsearch.api.progressive import upgrade_index
from semsearch.embed import DEFAULT_MODEL, STATIC_MODEL
from semsearch.embed import static_distill as sd
from semsearch.errors import IndexFormatError, UsageError
from semsearch.store.layout import IndexDir
from semsearch.store.manifest import CHUNKS, VECTORS, Manifest, segment_refs

from .test_static import _random_model

QUERIES = ["solar power from sunlight", "how do cats sleep", "parse json in python", "zebra"]
MODES = ("dense", "keyword", "hybrid")

WORDS = (
    "solar panels convert sunlight into electricity while batteries store the surplus "
    "cats sleep most of the day and hunt at dusk json parsing in python uses the json "
    "module loads and dumps rivers carry sediment to the sea glaciers carve valleys"
).split()


@pytest.fixture(autouse=True)
def fake_distil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sd, "distil", lambda location: _random_model())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Files of odd sizes: short ones, long ones of several chunks, an exact copy (ties)."""
    root = tmp_path / "tree"
    root.mkdir()
    rng = np.random.default_rng(7)
    for n in range(13):
        size = int(rng.integers(5, 700))
        words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), size)]
        text = "\n".join(" ".join(words[i : i + 12]) + "." for i in range(0, size, 12))
        (root / f"doc{n:02d}.txt").write_text(text, encoding="utf-8")
    (root / "copy.txt").write_text((root / "doc03.txt").read_text(), encoding="utf-8")
    (root / "notes.md").write_text("# Cats\n\nCats sleep.\n\n# Sun\n\nSolar power.\n")
    return root


def _fresh_cache(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """A separate embedding cache, so the oracle's vectors are computed, not looked up."""
    monkeypatch.setenv("SEMSEARCH_CACHE", str(where))


def _segment(index: Path) -> Path:
    gen, m = IndexDir(index).manifest()
    (ref,) = segment_refs(gen, m)
    return gen.parent / ref.name


def _chunk_tables(index: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(_segment(index) / CHUNKS) as conn:
        docs = conn.execute("SELECT * FROM documents ORDER BY rowid").fetchall()
        chunks = conn.execute("SELECT * FROM chunks ORDER BY row").fetchall()
    return [*docs, *chunks]


def _vectors(index: Path) -> np.ndarray:
    return np.load(_segment(index) / VECTORS, allow_pickle=False)


def _hits(index: Path) -> list[list[dict[str, object]]]:
    ix = api.SemanticIndex.load(index)
    out = []
    for mode in MODES:
        for group in (None, "file"):
            for hits in ix.search_batch(QUERIES, 6, mode=mode, group=group):  # type: ignore[arg-type]
                out.append([asdict(h) for h in hits])
    return out


def _manifest(index: Path) -> Manifest:
    return IndexDir(index).manifest()[1]


def _assert_same_index(got: Path, oracle: Path) -> None:
    a, b = _manifest(got), _manifest(oracle)
    keep = ("model", "precision", "dim", "chunk_tokens", "overlap", "backend", "index_type",
            "documents", "chunks", "next_chunk_id", "upgrade", "roots")  # fmt: skip
    assert {k: getattr(a, k) for k in keep} == {k: getattr(b, k) for k in keep}
    assert _chunk_tables(got) == _chunk_tables(oracle)
    va, vb = _vectors(got), _vectors(oracle)
    assert va.dtype == vb.dtype == np.float32 and va.shape == vb.shape
    assert va.tobytes() == vb.tobytes()  # bit-identical
    assert _hits(got) == _hits(oracle)


@pytest.fixture
def oracle(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plain transformer build of the tree, with a cache of its own."""
    where = tmp_path / "oracle"
    with monkeypatch.context() as mp:
        _fresh_cache(mp, tmp_path / "oracle-cache")
        api.index_paths([tree], where)
    return where


def test_phase_one_then_two_equals_a_transformer_build(
    tree: Path, oracle: Path, tmp_path: Path
) -> None:
    where = tmp_path / "progressive"
    first = api.index_paths([tree], where, progressive=True)
    info = api.index_info(where)
    assert (info.model, info.phase, info.pending_model) == (STATIC_MODEL, "phase-1", DEFAULT_MODEL)
    assert first.chunks == _manifest(oracle).chunks
    phase1 = api.SemanticIndex.load(where)
    assert phase1.info().phase == "phase-1"
    for mode in MODES:
        hits = phase1.search("solar power", 3, mode=mode)  # type: ignore[arg-type]
        assert hits and {h.dense_model for h in hits} == {
            None if mode == "keyword" else STATIC_MODEL
        }
    stats = upgrade_index(where)
    assert stats is not None and stats.changed and stats.chunks == first.chunks
    assert stats.embedded_chunks + stats.cache_hits == stats.chunks
    info = api.index_info(where)
    assert (info.model, info.phase, info.pending_model) == (DEFAULT_MODEL, "complete", None)
    _assert_same_index(where, oracle)
    assert upgrade_index(where) is None  # nothing left to do
    # The handle opened in phase 1 named no model: it follows the index to the transformer.
    assert phase1.reload_if_changed()
    hits = phase1.search("solar power", 3, mode="hybrid")
    assert {h.dense_model for h in hits} == {DEFAULT_MODEL}
    assert [asdict(h) for h in hits] == [
        asdict(h) for h in api.SemanticIndex.load(oracle).search("solar power", 3, mode="hybrid")
    ]


def test_phase_one_updates_keep_the_upgrade_pending(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "progressive"
    api.index_paths([tree], where, progressive=True)
    (tree / "doc05.txt").unlink()
    (tree / "new.txt").write_text("Glaciers carve valleys; rivers carry sediment to the sea.")
    (tree / "doc01.txt").write_text("Cats hunt at dusk.")
    api.index_paths([tree], where)  # an update: still the static model, phase 1
    m = _manifest(where)
    assert (m.model, m.phase) == (STATIC_MODEL, "phase-1")
    assert upgrade_index(where) is not None
    with monkeypatch.context() as mp:
        _fresh_cache(mp, tmp_path / "oracle-cache")
        oracle = tmp_path / "oracle"
        api.index_paths([tree], oracle)
    # Same chunks and vectors, and the same scores; the rows and chunk ids an update
    # assigned differ from a fresh build's numbering, so ties may come in another order.
    assert _manifest(where).phase == "complete"
    assert _texts_and_vectors(where) == _texts_and_vectors(oracle)
    # Equal to float32 rounding (one ulp, ~6e-8): rounding to 6 places would still differ
    # where a score sits on a rounding boundary.
    scores = lambda p: [sorted(h["score"] for h in hits) for hits in _hits(p)]  # noqa: E731
    for got, want in zip(scores(where), scores(oracle), strict=True):
        assert got == pytest.approx(want, abs=1e-6)


def _texts_and_vectors(index: Path) -> list[tuple[str, str, bytes]]:
    view = api.SemanticIndex.load(index).live.require()
    n = len(view.vectors)
    records = view.store.fetch(np.arange(n))
    return sorted(
        (records[i].source, records[i].text, np.asarray(view.vectors[[i]]).tobytes())
        for i in range(n)
    )


def test_a_failed_phase_two_leaves_phase_one_answering_and_resumes_from_the_cache(
    tree: Path, oracle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.indexing import builder, writer

    where = tmp_path / "progressive"
    api.index_paths([tree], where, progressive=True)
    before = _hits(where)
    monkeypatch.setattr(builder, "EMBED_BLOCK", 8)
    real = writer.encode_cached
    calls: list[int] = []

    def dies_on_third(embedder, texts, cache):  # type: ignore[no-untyped-def]
        if len(calls) == 2:
            raise KeyboardInterrupt  # a Ctrl-C in the middle of phase 2
        calls.append(len(texts))
        return real(embedder, texts, cache)

    monkeypatch.setattr(writer, "encode_cached", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        upgrade_index(where)
    assert _manifest(where).phase == "phase-1" and _hits(where) == before
    assert not [p for p in where.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.setattr(writer, "encode_cached", real)
    stats = upgrade_index(where)
    assert stats is not None and stats.cache_hits >= sum(calls) == 16
    _assert_same_index(where, oracle)


@pytest.mark.slow
def test_phase_two_killed_with_sigkill_resumes(tree: Path, oracle: Path, tmp_path: Path) -> None:
    where = tmp_path / "progressive"
    api.index_paths([tree], where, progressive=True)
    before = _hits(where)
    script = f"""
import sys, time
from semsearch.embed import static_distill as sd
from tests.test_static import _random_model
sd.distil = lambda location: _random_model()
from semsearch.indexing import builder, writer
builder.EMBED_BLOCK = 8
real = writer.encode_cached
def slow(embedder, texts, cache):
    out = real(embedder, texts, cache)
    print("stored", len(texts), flush=True)
    time.sleep(0.5)
    return out
writer.encode_cached = slow
from semsearch.api.progressive import upgrade_index
upgrade_index({str(where)!r})
print("finished", flush=True)
"""
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=repo
    )
    assert proc.stdout is not None
    stored = 0
    for line in proc.stdout:
        if line.startswith("stored"):
            stored += int(line.split()[1])
        if stored >= 16:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert stored >= 16
    assert _manifest(where).phase == "phase-1" and _hits(where) == before
    stats = upgrade_index(where)
    assert stats is not None and stats.cache_hits >= 16
    _assert_same_index(where, oracle)
    assert not [p for p in where.iterdir() if p.name.startswith(".tmp")]


def test_progressive_upgrades_only_to_the_static_models_teacher(tmp_path: Path, tree: Path) -> None:
    for model in (STATIC_MODEL, "fake-bow", str(tmp_path)):
        with pytest.raises(UsageError, match="upgrades the static model"):
            api.index_paths([tree], tmp_path / "x", progressive=True, model=model)
    assert not (tmp_path / "x").exists() or api.pending_upgrade(tmp_path / "x") is None


def test_a_complete_index_is_only_updated(tree: Path, oracle: Path) -> None:
    api.index_paths([tree], oracle, progressive=True)
    assert _manifest(oracle).phase == "complete" and api.pending_upgrade(oracle) is None


@pytest.mark.parametrize(
    "bad",
    [{"model": "x"}, {"model": 3, "precision": "int8"}, ["x"], {"model": "", "precision": "int8"}],
)
def test_a_malformed_upgrade_field_is_refused(oracle: Path, bad: object) -> None:
    gen, m = IndexDir(oracle).manifest()
    data = json.loads(m.to_json())
    data["upgrade"] = bad
    with pytest.raises(IndexFormatError, match="upgrade"):
        Manifest.from_data(data, gen / "manifest.json")


def test_cli_progressive_runs_both_phases_and_info_says_so(tree: Path, tmp_path: Path) -> None:
    from semsearch.cli.app import app

    where = tmp_path / "cli-index"
    runner = CliRunner()
    res = runner.invoke(app, ["index", str(tree), "--index", str(where), "--progressive", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["phase"] == "complete" and out["phase1"]["chunks"] == out["chunks"] > 0
    res = runner.invoke(app, ["info", "--index", str(where), "--json"])
    info = json.loads(res.stdout)
    assert (info["phase"], info["model"], info["pending_model"]) == (
        "complete",
        DEFAULT_MODEL,
        None,
    )
    res = runner.invoke(app, ["query", "solar power", "--index", str(where), "--json"])
    assert res.exit_code == 0, res.output
    assert {h["dense_model"] for q in _hit_lists(json.loads(res.stdout)) for h in q} == {
        DEFAULT_MODEL
    }


def _hit_lists(payload: object) -> list[list[dict[str, object]]]:
    """The hits of a ``query --json`` answer (one query: a list, or an object with hits)."""
    if isinstance(payload, dict):
        return [payload["hits"]]
    assert isinstance(payload, list)
    if payload and isinstance(payload[0], dict) and "hits" in payload[0]:
        return [p["hits"] for p in payload]
    return [payload]  # type: ignore[list-item]


def test_cli_resumes_a_pending_phase_two(tree: Path, tmp_path: Path) -> None:
    from semsearch.cli.app import app

    where = tmp_path / "cli-index"
    api.index_paths([tree], where, progressive=True)  # as if phase 2 had been stopped
    res = CliRunner().invoke(app, ["index", "--index", str(where)])
    assert res.exit_code == 0, res.output
    assert "Phase 2 done" in res.output and _manifest(where).phase == "complete"


def test_service_info_and_search_follow_the_upgrade(tree: Path, tmp_path: Path) -> None:
    from semsearch.serve.service import SearchService

    where = tmp_path / "served"
    api.index_paths([tree], where, progressive=True)
    service = SearchService(where, workers=1)
    assert (service.info()["phase"], service.info()["pending_model"]) == ("phase-1", DEFAULT_MODEL)
    upgrade_index(where)
    info = service.info()
    assert (info["phase"], info["model"]) == ("complete", DEFAULT_MODEL)


def test_reembed_keeps_the_chunking_and_needs_a_pending_upgrade(tmp_path: Path, tree: Path) -> None:
    from dataclasses import replace

    from semsearch.indexing import Changes, LocalEngine, build

    from .conftest import FakeEmbedder

    fake = FakeEmbedder()
    ix = api.SemanticIndex(embedder=fake, path=tmp_path / "ix", chunk_tokens=50)
    ix.add_paths([tree])
    index_dir, settings = IndexDir(tmp_path / "ix"), ix.settings
    before = _manifest(tmp_path / "ix")
    with pytest.raises(UsageError, match="keeps the chunks"):
        build(index_dir, Changes(reembed=True), LocalEngine(fake), replace(settings, overlap=1))
    stats = build(index_dir, Changes(reembed=True), LocalEngine(fake), settings)
    assert not stats.changed and _manifest(tmp_path / "ix") == before  # nothing pending


def test_cli_ctrl_c_in_phase_two_says_how_to_resume(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from semsearch.cli import main

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run_phase_two", interrupted)
    where = tmp_path / "cli-index"
    assert main(["index", str(tree), "--index", str(where), "--progressive"]) == 130
    err = capsys.readouterr().err
    assert "Phase 2 stopped" in err and "run semsearch index again to resume" in err
    assert _manifest(where).phase == "phase-1"


# --- phase 2 in the background -------------------------------------------------------------

GATED_WORKER = """
import pathlib, sys, time
from semsearch.api import background, progressive
real = progressive.encode_cached
gate = pathlib.Path(sys.argv[1])
blocks = []
def gated(embedder, texts, cache):
    while blocks and not gate.exists():  # the test opens the gate once it has looked
        time.sleep(0.05)
    blocks.append(len(texts))
    return real(embedder, texts, cache)
progressive.encode_cached = gated
progressive.BLOCK = 8
progressive.REPORT_EVERY = 0.0
sys.exit(background.main(sys.argv[2:]))
"""


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Background workers start through a wrapper that embeds 8 chunks, then waits until
    the returned file exists before the next block: phase 2 is caught in the middle
    without any timing."""
    from semsearch.api import background

    gate = tmp_path / "gate"
    repo = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setattr(background, "WORKER", (sys.executable, "-c", GATED_WORKER, str(gate)))
    yield gate
    for lock in tmp_path.rglob("PHASE2"):  # a failed test leaves no worker waiting behind
        background.stop_phase_two(lock.parent, timeout=10)


def _wait(what: str, check: object, limit: float = 300.0) -> None:
    """Poll ``check()`` until true; a bound on a hang, not a speed assertion."""
    import time

    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _progress(where: Path):  # type: ignore[no-untyped-def]
    from semsearch.store.phase2 import read_progress

    return read_progress(where)


def _embedding_started(where: Path) -> bool:
    p = _progress(where)
    return p is not None and p.running and p.state == "embedding" and p.done >= 8


def _caught_in_phase_two(tree: Path, where: Path):  # type: ignore[no-untyped-def]
    """Phase 1 of ``tree`` at ``where``, then a background worker held after its first
    block: the worker and phase 1's hits."""
    api.index_paths([tree], where, progressive=True)
    before = _hits(where)
    worker = api.start_phase_two(where)
    assert worker is not None and worker.started and worker.pid != os.getpid()
    _wait("the worker's first block", lambda: _embedding_started(where))
    return worker, before


def test_background_phase_two_answers_meanwhile_runs_once_and_equals_a_transformer_build(
    tree: Path, oracle: Path, tmp_path: Path, gated: Path
) -> None:
    from semsearch.api.progressive import run_phase_two
    from semsearch.cli.app import app
    from semsearch.errors import IndexLockedError
    from semsearch.serve.service import SearchService
    from semsearch.store.phase2 import holder

    where = tmp_path / "progressive"
    worker, before = _caught_in_phase_two(tree, where)
    # Searchable meanwhile, with the static model, exactly as before phase 2 started.
    assert _hits(where) == before
    info = api.index_info(where)
    assert (info.phase, info.model, info.pending_model) == ("phase-1", STATIC_MODEL, DEFAULT_MODEL)
    assert info.phase2 is not None and info.phase2.running and info.phase2.pid == worker.pid
    assert info.phase2.total == info.chunks and 8 <= info.phase2.done < info.chunks
    served = SearchService(where, workers=1).info()  # HTTP /info and MCP index_status
    assert served["phase"] == "phase-1" and served["phase2"]["running"] is True
    assert served["phase2"]["pid"] == worker.pid and served["phase2"]["state"] == "embedding"
    res = CliRunner().invoke(app, ["info", "--index", str(where)])
    assert f"phase2: embedding, {info.phase2.done:,}/{info.chunks:,} chunks" in res.output
    # A second start names the running worker; nothing else may run phase 2 meanwhile.
    again = api.start_phase_two(where)
    assert again is not None and (again.pid, again.started) == (worker.pid, False)
    res = CliRunner().invoke(app, ["index", "--index", str(where), "--background"])
    assert res.exit_code == 0, res.output
    assert f"was already running in the background (pid {worker.pid})" in res.output
    with pytest.raises(IndexLockedError, match="already running"):
        run_phase_two(where)
    assert holder(where) == worker.pid
    gated.touch()
    _wait("phase 2 to publish", lambda: api.pending_upgrade(where) is None)
    _wait("the worker to exit", lambda: holder(where) is None)
    assert api.index_info(where).phase2 is None  # complete: nothing pending to report
    assert "phase 2 done" in (where / "phase2.log").read_text()
    _assert_same_index(where, oracle)


@pytest.mark.slow
def test_a_sigkilled_background_worker_resumes(
    tree: Path, oracle: Path, tmp_path: Path, gated: Path
) -> None:
    from semsearch.api.progressive import run_phase_two
    from semsearch.store.phase2 import holder

    where = tmp_path / "progressive"
    worker, before = _caught_in_phase_two(tree, where)
    os.kill(worker.pid, signal.SIGKILL)
    _wait("the kernel to drop the lock", lambda: holder(where) is None)
    p = _progress(where)
    assert p is not None and (p.state, p.running) == ("interrupted", False)
    assert _manifest(where).phase == "phase-1" and _hits(where) == before
    stats = run_phase_two(where)  # resumed here; the worker's chunks come from the cache
    assert stats is not None and stats.cache_hits >= 8
    assert stats.embedded_chunks + stats.cache_hits == stats.chunks
    _assert_same_index(where, oracle)
    assert not [p for p in where.iterdir() if p.name.startswith(".tmp")]


def test_stop_ends_the_worker_and_index_resumes_it(tree: Path, tmp_path: Path, gated: Path) -> None:
    from semsearch.cli.app import app
    from semsearch.store.phase2 import holder

    where = tmp_path / "progressive"
    worker, before = _caught_in_phase_two(tree, where)
    runner = CliRunner()
    res = runner.invoke(app, ["index", "--index", str(where), "--stop"])
    assert res.exit_code == 0, res.output
    assert f"Stopped phase 2 (pid {worker.pid})" in res.output
    assert holder(where) is None  # --stop returns once the worker is gone
    p = _progress(where)
    assert p is not None and (p.state, p.running) == ("stopped", False)
    assert _hits(where) == before and _manifest(where).phase == "phase-1"
    assert not [p for p in where.iterdir() if p.name.startswith(".tmp")]
    assert "phase 2 stopped" in (where / "phase2.log").read_text()
    res = runner.invoke(app, ["index", "--index", str(where), "--stop"])
    assert res.exit_code == 0 and "No phase 2 is running" in res.output
    res = runner.invoke(app, ["index", "--index", str(where), "--foreground"])
    assert res.exit_code == 0, res.output
    assert "Phase 2 done" in res.output and _manifest(where).phase == "complete"


def test_stop_takes_no_paths(tree: Path, tmp_path: Path) -> None:
    from semsearch.cli import main

    assert main(["index", str(tree), "--index", str(tmp_path / "x"), "--stop"]) == 2
    assert not (tmp_path / "x").exists()


def test_the_phase_two_lock_is_one_holder_at_a_time(tmp_path: Path) -> None:
    from semsearch.store.phase2 import WorkerLock, holder, read_progress, write_progress

    assert holder(tmp_path) is None and read_progress(tmp_path) is None
    first = WorkerLock.take(tmp_path)
    assert first is not None
    first.set_pid(4242)
    assert WorkerLock.take(tmp_path) is None and holder(tmp_path) == 4242
    write_progress(tmp_path, "embedding", 3, 10, pid=4242)
    p = read_progress(tmp_path)
    assert p is not None and (p.state, p.done, p.total, p.running, p.pid) == (
        "embedding", 3, 10, True, 4242
    )  # fmt: skip
    first.close()
    assert holder(tmp_path) is None
    p = read_progress(tmp_path)
    assert p is not None and (p.state, p.running) == ("interrupted", False)  # killed mid-way
    second = WorkerLock.take(tmp_path)
    assert second is not None
    second.close()
    (tmp_path / "phase2.json").write_text('{"state": "embedding", "done": "x"}')
    assert read_progress(tmp_path) is None  # damaged: advisory only, never an error


def test_a_foreground_index_follows_the_running_worker(
    tree: Path, tmp_path: Path, gated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.cli import index as index_cli
    from semsearch.cli.app import app
    from semsearch.store.phase2 import holder

    where = tmp_path / "progressive"
    _caught_in_phase_two(tree, where)
    real = api.index_info
    looked: list[str] = []

    def info_then_open(path: Path):  # type: ignore[no-untyped-def]
        out = real(path)
        looked.append(out.phase)
        gated.touch()  # the follower is watching: let the worker go on
        return out

    monkeypatch.setattr(api, "index_info", info_then_open)
    monkeypatch.setattr(index_cli, "FOLLOW_EVERY", 0.05)
    res = CliRunner().invoke(app, ["index", "--index", str(where), "--foreground", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["phase"] == "complete" and out["embedded_chunks"] == 0  # the worker did it
    assert looked[0] == "phase-1" and looked[-1] == "complete"
    _wait("the worker to exit", lambda: holder(where) is None)
    assert _manifest(where).phase == "complete"
