"""The watcher keeps an index in sync with its folder: creates, edits, editor saves, renames,
deletes, ignore rules, a folder that goes away, bursts, and faults. Each wait is bounded."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from semsearch import IndexLockedError, SemanticIndex, index_paths
from semsearch.store import IndexDir
from semsearch.watch import BatchReport, Watcher
from semsearch.watch.watcher import MAX_PATHS

from .conftest import REPO, FakeEmbedder, sigint_default

WAIT = 20.0  # seconds: the longest any one change may take to show


def _indexed(idx: Path) -> dict[str, str]:
    """source -> content hash of the live generation, read straight from disk."""
    store = IndexDir(idx).open_store()
    try:
        return {d.source: d.sha256 for d in store.documents()}
    finally:
        store.close()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _generation(idx: Path) -> int:
    return int(IndexDir(idx).pointer()[0].removeprefix("gen-"))


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Path, FakeEmbedder, list[BatchReport]]]:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "keep.txt").write_text("A file that stays as it is, about rivers.")
    emb = FakeEmbedder()
    index_paths([docs], idx, embedder=emb)
    yield docs, idx, emb, []


def _watcher(idx: Path, emb: FakeEmbedder, reports: list[BatchReport], **kw: object) -> Watcher:
    opts: dict = {"debounce": 0.5, "step": 0.05, "tick": 0.2, **kw}
    return Watcher(idx, embedder=emb, on_batch=reports.append, **opts)


def test_creates_edits_saves_renames_and_deletes_are_applied(tree) -> None:
    docs, idx, emb, reports = tree
    a, b = docs / "a.txt", docs / "b.txt"
    with _watcher(idx, emb, reports):
        a.write_text("First words about volcanoes.")
        _wait_for(lambda: _indexed(idx).get(str(a)) == _sha("First words about volcanoes."),
                  "a created")  # fmt: skip

        a.write_text("Edited in place, now about glaciers.")
        _wait_for(lambda: _indexed(idx).get(str(a)) == _sha("Edited in place, now about glaciers."),
                  "a edited")  # fmt: skip

        # An editor's save: swap file, temp file written then renamed over the original.
        (docs / ".a.txt.swp").write_bytes(b"\x00swap")
        (docs / "a.txt~").write_text("backup of a")
        tmp = docs / ".a.txt.tmp1234"
        tmp.write_text("Saved by an editor, about deserts.")
        os.replace(tmp, a)
        (docs / ".a.txt.swp").unlink()
        (docs / "a.txt~").unlink()
        _wait_for(lambda: _indexed(idx).get(str(a)) == _sha("Saved by an editor, about deserts."),
                  "editor save")  # fmt: skip
        assert not any(".swp" in s or ".tmp" in s for s in _indexed(idx))

        os.rename(a, b)
        _wait_for(lambda: str(a) not in _indexed(idx) and str(b) in _indexed(idx), "rename")
        assert _indexed(idx)[str(b)] == _sha("Saved by an editor, about deserts.")

        b.unlink()
        _wait_for(lambda: str(b) not in _indexed(idx), "delete")

        sub = docs / "sub" / "deeper"
        sub.mkdir(parents=True)
        (sub / "c.txt").write_text("Nested file about forests.")
        _wait_for(lambda: str(sub / "c.txt") in _indexed(idx), "new folder with a file")
        os.rename(docs / "sub", docs / "moved")
        _wait_for(lambda: str(docs / "moved" / "deeper" / "c.txt") in _indexed(idx)
                  and str(sub / "c.txt") not in _indexed(idx), "folder renamed")  # fmt: skip
    assert str(docs / "keep.txt") in _indexed(idx)
    hits = SemanticIndex.load(idx, embedder=emb).search("forests nested", k=1, mode="keyword")
    assert hits and hits[0].source.endswith("c.txt")


def test_each_batch_is_one_generation_and_one_report(tree) -> None:
    docs, idx, emb, reports = tree
    first = _generation(idx)
    with _watcher(idx, emb, reports, debounce=1.0, step=0.3):
        for i in range(5):  # one burst: a single batch
            (docs / f"n{i}.txt").write_text(f"note {i} about planets")
        (docs / "keep.txt").unlink()
        _wait_for(lambda: len(_indexed(idx)) == 5, "burst applied")
        time.sleep(0.5)
    changed = [r for r in reports if r.changed]
    assert len(changed) == 1
    assert (changed[0].added, changed[0].updated, changed[0].removed) == (5, 0, 1)
    assert _generation(idx) == first + 1


def test_ignored_files_never_enter(tree) -> None:
    docs, idx, emb, reports = tree
    with _watcher(idx, emb, reports):
        (docs / ".hidden.txt").write_text("hidden words")
        (docs / ".git").mkdir()
        (docs / ".git" / "config.txt").write_text("git words")
        (docs / "node_modules").mkdir()
        (docs / "visible.txt").write_text("visible words")
        _wait_for(lambda: str(docs / "visible.txt") in _indexed(idx), "visible file")
    names = {Path(s).name for s in _indexed(idx)}
    assert names == {"keep.txt", "visible.txt"}


def test_the_folder_disappearing_and_coming_back(tree, tmp_path: Path) -> None:
    docs, idx, emb, reports = tree
    away = tmp_path / "away"
    with _watcher(idx, emb, reports) as w:
        (docs / "x.txt").write_text("x about comets")
        _wait_for(lambda: str(docs / "x.txt") in _indexed(idx), "x indexed")
        os.rename(docs, away)
        time.sleep(1.0)
        assert w.running
        assert str(docs / "x.txt") in _indexed(idx)  # a missing root keeps its documents
        (away / "y.txt").write_text("y about meteors, written while away")
        os.rename(away, docs)
        _wait_for(lambda: str(docs / "y.txt") in _indexed(idx), "caught up after return")
        (docs / "z.txt").write_text("z after the return")
        _wait_for(lambda: str(docs / "z.txt") in _indexed(idx), "watching the new folder")
        # Deleted and made again from scratch (a new inode).
        for p in docs.iterdir():
            p.unlink()
        docs.rmdir()
        time.sleep(0.6)
        docs.mkdir()
        (docs / "fresh.txt").write_text("a fresh start")
        _wait_for(lambda: set(map(os.path.basename, _indexed(idx))) == {"fresh.txt"},
                  "recreated folder")  # fmt: skip
        assert w.running


def test_a_burst_of_10000_events_ends_in_the_right_index(tree) -> None:
    docs, idx, emb, reports = tree
    with _watcher(idx, emb, reports):
        for i in range(1000):
            p = docs / f"f{i:04d}.txt"
            for v in range(4):  # create + 3 rewrites + the deletes below: ~10,000 events
                p.write_text(f"file {i} version {v} about oceans")
        for i in range(0, 1000, 2):
            (docs / f"f{i:04d}.txt").unlink()
        _wait_for(lambda: len(_indexed(idx)) == 501, "burst settled", timeout=60)
        time.sleep(1.0)
    final = _indexed(idx)
    assert len(final) == 501
    assert final[str(docs / "f0001.txt")] == _sha("file 1 version 3 about oceans")
    assert all(r.error is None for r in reports)


def test_faults_fifo_directory_symlink_loop_and_busy_writer(tree) -> None:
    docs, idx, emb, reports = tree
    a = docs / "a.txt"
    a.write_text("a regular file")
    index_paths([docs], idx, embedder=emb)
    with _watcher(idx, emb, reports) as w:
        a.unlink()
        os.mkfifo(a)  # a file replaced by a FIFO: dropped, never read (it would block)
        (docs / "loop").symlink_to(docs)  # a symlink loop
        (docs / "self").symlink_to(docs / "self")
        d = docs / "d.txt"
        d.write_text("soon a folder")
        _wait_for(lambda: str(a) not in _indexed(idx) and str(d) in _indexed(idx), "fifo")
        d.unlink()
        d.mkdir()  # a file replaced by a directory: its files are what counts
        (d / "inner.txt").write_text("inside the folder that replaced a file")
        _wait_for(lambda: str(d / "inner.txt") in _indexed(idx) and str(d) not in _indexed(idx),
                  "file -> directory")  # fmt: skip
        # A writer holding the index: the batch waits for it, then goes through.
        with IndexDir(idx).lock():
            (docs / "late.txt").write_text("written while the index was busy")
            time.sleep(1.0)
            assert str(docs / "late.txt") not in _indexed(idx)
        _wait_for(lambda: str(docs / "late.txt") in _indexed(idx), "after the lock")
        assert w.running


def test_a_file_edited_while_being_read_converges(tree) -> None:
    docs, idx, emb, reports = tree
    p = docs / "busy.txt"
    stop = threading.Event()

    def scribble() -> None:
        n = 0
        while not stop.is_set():
            p.write_text(f"version {n} " * (1 + n % 50))
            n += 1

    with _watcher(idx, emb, reports):
        t = threading.Thread(target=scribble)
        t.start()
        time.sleep(2.0)
        stop.set()
        t.join()
        final = p.read_text()
        _wait_for(lambda: _indexed(idx).get(str(p)) == _sha(final), "last version indexed")


def test_a_full_disk_is_one_error_and_retried(tree, monkeypatch, caplog) -> None:
    docs, idx, emb, reports = tree
    real = IndexDir.publish
    fails = {"left": 1}

    def publish(self, tmp, manifest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if fails["left"]:
            fails["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, tmp, manifest, *args, **kwargs)

    monkeypatch.setattr(IndexDir, "publish", publish)
    before = _indexed(idx)
    with _watcher(idx, emb, reports):
        (docs / "new.txt").write_text("arrives while the disk is full")
        _wait_for(lambda: any(r.error for r in reports), "the failed batch")
        assert _indexed(idx) == before  # nothing published, nothing lost
        _wait_for(lambda: str(docs / "new.txt") in _indexed(idx), "retried batch", timeout=30)
    failed = [r for r in reports if r.error]
    assert len(failed) == 1 and "No space left" in (failed[0].error or "")
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "batch failed, retrying: cannot write the new index generation in "
        f"{idx}: No space left on device; the index is unchanged"
    ]


def test_a_second_watcher_is_refused(tree) -> None:
    _, idx, emb, reports = tree
    with (
        _watcher(idx, emb, reports),
        pytest.raises(IndexLockedError, match=r"another watcher .*pid"),
    ):
        _watcher(idx, emb, []).start()
    second = _watcher(idx, emb, []).start()  # free again once the first has stopped
    second.stop()


@pytest.mark.slow
def test_cli_watch_applies_a_change_and_stops_on_ctrl_c(tmp_path: Path, real_embedder) -> None:
    del real_embedder  # the model is exported once per session, before the subprocess needs it
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "one.txt").write_text("The first note is about the weather.")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SEMSEARCH_INDEX": str(idx)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "watch", str(docs), "--debounce", "0.5"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path,
        preexec_fn=sigint_default,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        _wait_for(lambda: any(s.startswith("Watching") for s in lines), "watch started", 120)
        (docs / "two.txt").write_text("The second note is about trains and railways.")
        _wait_for(lambda: str(docs / "two.txt") in _indexed(idx), "change applied", 60)
        _wait_for(lambda: any("1 added, 0 updated, 0 removed" in s for s in lines), "batch line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        proc.kill()
        reader.join(5)
    assert lines[-1].strip() == "semsearch: interrupted"
    assert not any("Traceback" in s or "KeyboardInterrupt" in s for s in lines)
    assert not any("Traceback" in s for s in lines)
    hits = SemanticIndex.load(idx).search("railways", k=1)
    assert hits[0].source == str(docs / "two.txt")


def test_an_edit_of_an_indexed_file_does_not_walk_the_tree(tree, monkeypatch) -> None:
    docs, idx, emb, reports = tree
    import semsearch.watch.delta as delta

    def no_walk(*a: object, **k: object) -> None:
        raise AssertionError("an edit of an indexed file must not run discovery")

    keep = docs / "keep.txt"
    with _watcher(idx, emb, reports):
        _wait_for(lambda: bool(reports), "the catch-up batch")  # walks once, at start
        monkeypatch.setattr(delta, "discover", no_walk)
        keep.write_text("Rivers now carry boats.")
        _wait_for(lambda: _indexed(idx).get(str(keep)) == _sha("Rivers now carry boats."), "edit")
        tmp = docs / ".keep.txt.tmp"
        tmp.write_text("Saved via a temp file.")
        os.replace(tmp, keep)
        _wait_for(lambda: _indexed(idx).get(str(keep)) == _sha("Saved via a temp file."), "save")
        keep.unlink()
        _wait_for(lambda: str(keep) not in _indexed(idx), "delete")
    assert all(r.error is None for r in reports)


def test_events_are_coalesced_into_a_bounded_set(tree) -> None:
    docs, idx, emb, reports = tree
    w = _watcher(idx, emb, reports)
    events = {(1, str(docs / f"f{i}.txt")) for i in range(10_000)}
    w._note(set(list(events)[: MAX_PATHS - 1]))
    assert len(w._paths[str(docs)]) == MAX_PATHS - 1 and not w._full
    w._note(events)
    assert str(docs) in w._full and str(docs) not in w._paths  # overflow: walk it whole
    assert w._events == MAX_PATHS - 1 + 10_000


def test_a_real_full_disk_during_a_batch(tmp_path: Path, caplog) -> None:
    """The index on a small tmpfs that fills up: the batch fails with one line, the live
    generation stays, and once space is freed the next attempt publishes the change."""
    from .fault_battery import small_disk

    docs, disk = tmp_path / "docs", tmp_path / "disk"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text about harbours.")
    with small_disk(disk, 4096) as mounted:
        if not mounted:
            pytest.skip("needs root to mount a tmpfs (the injected-ENOSPC test covers the rest)")
        idx, emb, reports = disk / "idx", FakeEmbedder(), []
        index_paths([docs], idx, embedder=emb)
        before = _indexed(idx)
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # fill the disk to the last block
            while os.write(fd, b"\0" * 65536):
                pass
        os.close(fd)
        with _watcher(idx, emb, reports) as w:
            _wait_for(lambda: bool(reports), "the catch-up batch")
            (docs / "b.txt").write_text("A new file while the disk is full. " * 200)
            _wait_for(lambda: any(r.error for r in reports), "the failed batch")
            assert _indexed(idx) == before and w.running
            filler.unlink()
            _wait_for(lambda: str(docs / "b.txt") in _indexed(idx), "retried batch", timeout=30)
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert errors and all("the index is unchanged" in e for e in errors)
        assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]
