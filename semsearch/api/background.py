"""Phase 2 in the background: one detached, polite worker process per index.

:func:`start_phase_two` takes the index's phase-2 lock, starts ``python -m
semsearch.api.background INDEX --lock-fd N`` in a session of its own with the lock's open
file (so the lock passes to the worker with no gap in which a second could start) and
returns at once: the index answers from phase 1 meanwhile. When a worker already holds the
lock it starts nothing and names that worker. The worker runs
:func:`~.progressive.run_phase_two` at a lower priority (nice 10) on one thread, writes its
progress beside the index (read by ``info``, HTTP ``/info``, MCP ``index_status``) and its
log into the index directory; nothing is written anywhere else. :func:`stop_phase_two`
ends it (SIGTERM: the temporary generation is removed, phase 1 keeps answering, and the
next start resumes from the embedding cache). A worker killed any other way releases the
lock with its last breath (the kernel's), so the next start resumes too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import config as _config
from ..errors import IndexLockedError, SemsearchError, UsageError
from ..store import phase2 as _phase2
from ..store.layout import IndexDir
from ..util import first_line

#: How the worker is started (tests start it through a wrapper that slows it down).
WORKER = (sys.executable, "-m", "semsearch.api.background")
#: The worker's niceness increment: searches and the user's own work come first.
NICE = 10
#: Environment the worker runs in: one thread for ONNX Runtime, OpenMP (faiss) and BLAS.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

log = logging.getLogger("semsearch")


@dataclass(frozen=True)
class Worker:
    """The background worker of an index's phase 2."""

    pid: int
    started: bool  # False: one was already running, and nothing was started
    log: str


def _index_path(index: str | os.PathLike[str] | None) -> Path:
    return IndexDir(index if index is not None else _config.load().index_dir).path


def _take(path: Path, tries: int = 20) -> _phase2.WorkerLock | None:
    """The phase-2 lock, or None when a worker holds it (a reader's probe only delays)."""
    for _ in range(tries):
        lock = _phase2.WorkerLock.take(path)
        if lock is not None or _phase2.holder(path) is not None:
            return lock
        time.sleep(0.05)  # a reader's shared probe was holding it for an instant
    return None


def start_phase_two(index: str | os.PathLike[str] | None = None) -> Worker | None:
    """Start phase 2 of ``index`` in a detached background process, or name the one already
    running; None when no upgrade is pending."""
    from .progressive import pending_upgrade

    if os.name != "posix":
        raise UsageError("phase 2 in the background needs a POSIX system; run it in the foreground")
    path = _index_path(index)
    if pending_upgrade(path) is None:
        return None
    logs = str(_phase2.log_file(path))
    lock = _take(path)
    if lock is None:
        return Worker(_phase2.holder(path) or 0, False, logs)
    try:
        lock.set_pid(os.getpid())  # until the worker names itself
        _phase2.write_progress(path, "starting", 0, 0, pid=os.getpid())
        out = _phase2.open_log(path)
        try:
            proc = subprocess.Popen(
                [*WORKER, str(path), "--lock-fd", str(lock.fd)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(lock.fd,),
                start_new_session=True, cwd=path, env={**os.environ, **ONE_THREAD},
            )  # fmt: skip
        finally:
            os.close(out)
        lock.set_pid(proc.pid)
    finally:
        lock.close()  # the worker holds the lock from here on
    return Worker(proc.pid, True, logs)


def stop_phase_two(
    index: str | os.PathLike[str] | None = None, timeout: float = 30.0
) -> int | None:
    """Stop the process running phase 2 of ``index`` and wait for it to end; its pid, or
    None when none was running. Phase 1 keeps answering; starting phase 2 again resumes."""
    path = _index_path(index)
    deadline = time.monotonic() + timeout
    stopped: int | None = None
    signalled: set[int] = set()
    while (pid := _phase2.holder(path)) is not None:
        if pid <= 0:
            raise IndexLockedError(
                f"a process holds the phase-2 lock of {path} but did not name itself"
            )
        stopped = pid
        if pid not in signalled:
            signalled.add(pid)
            with contextlib.suppress(ProcessLookupError):  # it just ended
                os.kill(pid, signal.SIGTERM)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # safe: the publish is atomic, the cache resumes
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    return stopped


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The worker: run phase 2 of the index under the lock handed over, then exit."""
    from ..embed.onnx_runtime import limit_threads
    from .progressive import run_phase_two

    parser = argparse.ArgumentParser(prog="semsearch-phase2")
    parser.add_argument("index", type=Path)
    parser.add_argument("--lock-fd", type=int, required=True)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)  # the log file
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False  # semsearch's lines only, not every library's
    lock = _phase2.WorkerLock(args.lock_fd)
    lock.set_pid(os.getpid())
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    limit_threads(1)
    log.info("phase 2 of %s: started (pid %d)", args.index, os.getpid())
    try:
        stats = run_phase_two(args.index, lock=lock, progress=_Milestones())
    except KeyboardInterrupt:
        log.info("phase 2 stopped: the index answers from phase 1; starting it again resumes")
        return 0
    except SemsearchError as exc:
        log.error("phase 2 failed: %s", first_line(exc))
        return 1
    except Exception:
        log.exception("phase 2 failed")
        return 1
    finally:
        lock.close()
    if stats is None:
        log.info("phase 2: nothing pending")
    else:
        log.info(
            "phase 2 done: %d chunks published (%d embedded, %d from the cache) in %.1fs",
            stats.chunks, stats.embedded_chunks, stats.cache_hits, stats.seconds,
        )  # fmt: skip
    return 0


class _Milestones:
    """Log a line at every tenth of the way (the publish counts again from 0)."""

    def __init__(self) -> None:
        self.tenth, self.last = -1, -1

    def __call__(self, done: int, total: int) -> None:
        if done < self.last:
            self.tenth = -1
        self.last = done
        tenth = done * 10 // total if total else 10
        if tenth > self.tenth:
            self.tenth = tenth
            log.info("phase 2: %d/%d chunks", done, total)


if __name__ == "__main__":
    sys.exit(main())
