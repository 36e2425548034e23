"""The file locks (filelock): one writer per index across processes and threads, one watcher
per index, one maker of a model-cache entry; each released however its holder ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from semsearch.embed.onnx_export import ensure_cached
from semsearch.errors import IndexLockedError, UsageError
from semsearch.store import IndexDir

from .conftest import REPO

_HOLDER = textwrap.dedent(
    """
    import sys
    from semsearch.store import IndexDir
    with IndexDir(sys.argv[1]).lock():
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_writer_lock_excludes_another_process_until_it_lets_go(tmp_path: Path) -> None:
    where = tmp_path / "idx"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(where)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLockedError, match="another process"), IndexDir(where).lock(0.3):
            pass
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        with IndexDir(where).lock(timeout=30):  # waits for the holder's exit, then has it
            assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()


def test_writer_lock_excludes_another_thread_and_is_kept_on_disk(tmp_path: Path) -> None:
    where = tmp_path / "idx"
    held, done = threading.Event(), threading.Event()
    seen: list[str] = []

    def hold() -> None:
        with IndexDir(where).lock():
            held.set()
            done.wait(30)
            seen.append("first released")

    first = threading.Thread(target=hold)
    first.start()
    assert held.wait(30)
    with pytest.raises(IndexLockedError), IndexDir(where).lock(timeout=0.2):
        pass
    done.set()
    with IndexDir(where).lock(timeout=30):
        seen.append("second held")
    first.join(30)
    assert seen == ["first released", "second held"]
    assert (where / "LOCK").is_file()  # waiters always share one inode


def test_writer_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    where = tmp_path / "idx"
    with pytest.raises(RuntimeError, match="boom"), IndexDir(where).lock():
        raise RuntimeError("boom")
    with IndexDir(where).lock(timeout=0):
        pass


def test_writer_lock_where_no_directory_can_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    failing = pytest.raises(UsageError, match=r"cannot use .* as an index directory")
    with failing, IndexDir(blocker / "idx").lock(timeout=0):
        pass


def test_watch_lock_is_one_per_index_and_names_its_holder(tmp_path: Path) -> None:
    from filelock import Timeout

    where = tmp_path / "idx"
    where.mkdir()
    first = IndexDir(where).watch_lock(on_acquired=lambda fd: os.write(fd, b"4242\n"))
    first.acquire(timeout=0)
    try:
        with pytest.raises(Timeout):
            IndexDir(where).watch_lock().acquire(timeout=0)
        assert (where / "WATCH").read_text().strip() == "4242"
    finally:
        first.release()
    again = IndexDir(where).watch_lock()
    again.acquire(timeout=0)
    again.release()


@pytest.mark.parametrize("racers", [2, 5])
def test_a_cache_entry_is_made_once_by_concurrent_first_runs(tmp_path: Path, racers: int) -> None:
    out = tmp_path / "cache" / "model"
    made: list[int] = []

    def make() -> None:
        made.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every racer to arrive while it is being made
        out.mkdir(parents=True)
        (out / "done").write_text("ok")

    def first_run() -> None:
        assert ensure_cached(out, (out / "done").is_file, make, "test") == out

    threads = [threading.Thread(target=first_run) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(made) == 1
    assert (out / "done").read_text() == "ok"
