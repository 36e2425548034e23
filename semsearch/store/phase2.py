"""The phase-2 worker's files in an index directory: one lock, its progress, its log.

Progressive indexing's phase 2 (:mod:`semsearch.api.progressive`) runs in at most one process
per index: the one holding an exclusive ``flock`` on ``PHASE2`` (its pid written inside). A
background worker's lock is taken by the command that starts it and handed to the worker
as an open file (a ``flock`` belongs to the open file, not to a process), so there is no
moment at which a second worker could start; the kernel drops it when the worker exits or is
killed, so a dead worker never blocks the next one. Readers only probe the lock (a shared,
non-blocking ``flock`` released at once). Progress is a small JSON file, replaced whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..util import read_json_object, write_atomic
from .manifest import PHASE2_LOCK, PHASE2_LOG, PHASE2_STATUS

#: What a worker says it is doing; ``interrupted`` is what a reader sees when the file says a
#: worker is at work but no process holds the lock (it was killed).
ACTIVE = ("starting", "embedding", "publishing")
STATES = (*ACTIVE, "done", "failed", "stopped", "interrupted")
#: A log bigger than this is started afresh by the next worker.
LOG_LIMIT = 1 << 20


@dataclass(frozen=True)
class Phase2Progress:
    """The last word of an index's phase-2 worker, and whether one is running now."""

    state: str
    done: int  # chunks embedded by the transformer so far (cache hits included)
    total: int  # chunks to embed
    running: bool
    pid: int | None
    updated: float | None  # when the worker last wrote (seconds since the epoch)
    error: str | None
    log: str  # the worker's log file


class WorkerLock:
    """The exclusive phase-2 lock of one index, held through an open file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def take(cls, index: Path) -> WorkerLock | None:
        """The lock, or None when a phase-2 worker holds it. Without POSIX locks (Windows)
        there is no background worker, and a foreground run locks nothing."""
        try:
            import fcntl
        except ImportError:
            return cls(-1)
        fd = os.open(index / PHASE2_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def set_pid(self, pid: int) -> None:
        """Name the process that works under this lock (read by ``holder``)."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):  # a courtesy: a full disk refuses it
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def close(self) -> None:
        """Let go of this descriptor: the lock ends with the last process holding the file
        (a worker started with it keeps it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def holder(index: Path) -> int | None:
    """The pid of the process holding ``index``'s phase-2 lock (0 if it wrote none), or None
    when no process holds it."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(index / PHASE2_LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(raw) if raw.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def log_file(index: Path) -> Path:
    return index / PHASE2_LOG


def open_log(index: Path) -> int:
    """The worker's log, opened for appending (started afresh once it is too big)."""
    path = log_file(index)
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_LIMIT:
            path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def write_progress(
    index: Path, state: str, done: int, total: int, *, pid: int, error: str | None = None
) -> None:
    """Record the worker's state (call while holding the lock: one writer). Advisory: a
    full disk does not stop the work."""
    assert state in STATES
    record = {"state": state, "done": done, "total": total, "pid": pid,
              "updated": time.time(), "error": error}  # fmt: skip
    with contextlib.suppress(OSError):
        write_atomic(index / PHASE2_STATUS, json.dumps(record).encode())


def read_progress(index: Path) -> Phase2Progress | None:
    """What the last phase-2 worker of ``index`` said, checked against the lock; None when no
    worker ever wrote (or the file is unreadable: it is advisory)."""
    data = read_json_object(index / PHASE2_STATUS)
    if data is None:
        return None
    state = data.get("state")
    done, total, pid = data.get("done"), data.get("total"), data.get("pid")
    if state not in STATES or not all(isinstance(v, int) for v in (done, total, pid)):
        return None
    running = holder(index)
    if running is None and state in ACTIVE:
        state = "interrupted"
    updated, error = data.get("updated"), data.get("error")
    return Phase2Progress(
        state=str(state),
        done=int(done),  # type: ignore[arg-type]
        total=int(total),  # type: ignore[arg-type]
        running=running is not None,
        pid=running or pid,  # type: ignore[arg-type]
        updated=float(updated) if isinstance(updated, (int, float)) else None,
        error=str(error) if error is not None else None,
        log=str(log_file(index)),
    )
