"""``Watcher``: keep an index in sync with its folders while it runs.

File events come from watchfiles (inotify on Linux, FSEvents on macOS, polling where neither
works), debounced: a burst of events becomes one batch once the folder has been quiet for
``step`` seconds (or after ``debounce`` seconds of continuous activity), and each batch is
one build, so one generation.

A batch that only touches files the index already holds (edits, an editor's temp file
renamed over the original, deletes) updates those files directly (:mod:`.paths`). Anything
discovery must judge (a new file, a folder created, moved or deleted, an ignore file edited,
the root itself) refreshes the root instead: the same walk, ignore rules and stat-first plan
as ``semsearch index``, so an ignored file never enters. Editors' swap and backup files and
anything under a hidden folder never start a batch.

Memory does not grow with the number of events: at most ``MAX_PATHS`` changed paths are
kept per root; past that the root is walked whole (watchfiles itself holds one entry per
distinct path changed since the last batch).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..embed import Embedder
from ..errors import IndexLockedError, IndexWriteError, SemsearchError, UsageError
from ..indexing import Engine
from ..indexing.writer import engine_maker
from ..store.layout import IndexDir
from ..store.manifest import Manifest
from ..util import first_line
from .delta import refresh, root_present, watch_base
from .paths import apply, classify

if TYPE_CHECKING:
    from filelock import BaseFileLock

log = logging.getLogger("semsearch")

#: Editor swap, backup and temporary files: never worth a batch of their own.
_SCRATCH_SUFFIXES = (".swp", ".swo", ".swx", ".swpx", ".kate-swp", "~", "___jb_tmp___",
                     "___jb_old___")  # fmt: skip
#: Ignore files are hidden but change what is indexed.
_RULE_FILES = frozenset({".gitignore", ".semsearchignore"})
#: Changed paths kept per root for a batch; past this the root is walked whole instead, so
#: memory stays bounded however many events arrive.
MAX_PATHS = 2048
#: Changed files a batch line names before "+N more" (all of them when verbose).
NAMES_SHOWN = 3


@dataclass(frozen=True)
class BatchReport:
    """One batch: what changed in the index, how long it took, and the error if it failed
    (the batch's roots are then retried)."""

    added: int
    updated: int
    removed: int
    seconds: float
    events: int
    changed: bool
    error: str | None = None
    pending: int = 0
    #: The files this batch added, updated or removed (documents of a data file: once).
    files: tuple[str, ...] = ()


class Watcher:
    """Watches an index's remembered roots (or ``paths``) and applies changes as they come.

    Use ``start()``/``stop()`` (a background thread), ``with Watcher(...):`` or ``run()``
    (blocking, in the calling thread: what ``semsearch watch`` does, so Ctrl-C stops it).
    ``on_batch`` is called with a :class:`BatchReport` after each batch. The model is loaded
    on the first batch that has something to embed (or ``embedder`` is used).
    """

    def __init__(
        self,
        index: str | os.PathLike[str],
        paths: Sequence[str | os.PathLike[str]] | None = None,
        *,
        embedder: Embedder | None = None,
        make_engine: Callable[[Manifest], Engine] | None = None,
        debounce: float = 2.0,
        step: float = 0.1,
        tick: float = 1.0,
        rescan: float | None = 300.0,
        force_polling: bool | None = None,
        lock_timeout: float = 10.0,
        on_batch: Callable[[BatchReport], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self.index_dir = IndexDir(index)
        _, manifest = self.index_dir.manifest()  # a clear error when there is no index
        if paths:
            self.roots = tuple(dict.fromkeys(os.path.abspath(Path(p).expanduser()) for p in paths))
        else:
            self.roots = tuple(manifest.roots)
        if not self.roots:
            raise UsageError(
                f"the index at {self.index_dir.path} remembers no folders to watch; "
                "name the paths to watch"
            )
        self._make_engine = make_engine or engine_maker(self.index_dir.path, embedder)
        self.debounce, self.step, self.tick, self.rescan = debounce, step, tick, rescan
        self.force_polling = force_polling
        self.lock_timeout = lock_timeout
        self.on_batch = on_batch
        self.verbose = verbose
        self.batches = 0
        self.last: BatchReport | None = None
        where = self.index_dir.path
        self._index_prefixes = tuple(  # events name paths as given or resolved: skip both
            {os.path.abspath(where) + os.sep, str(where.resolve()) + os.sep}
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: BaseFileLock | None = None
        self._full: set[str] = set()  # roots whose next batch walks them whole
        self._paths: dict[str, set[str]] = {}  # root -> changed paths (at most MAX_PATHS)
        self._events = 0
        self._retry_at = 0.0
        self._failures = 0
        self._last_scan = time.monotonic()
        self._identity: dict[str, tuple[int, int] | None] = {}
        self._gone: set[str] = set()
        self._last_failure = ""

    # --- running -----------------------------------------------------------------------------

    def start(self) -> Watcher:
        """Watch in a background thread; returns once the watcher owns the index."""
        if self._thread is not None:
            raise UsageError("this watcher is already running")
        self._acquire()
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded, name="semsearch-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch in progress (if any) is published or abandoned whole."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._release()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        """Watch in this thread until :meth:`stop` (from another thread) or Ctrl-C, which
        propagates as KeyboardInterrupt after the batch in progress is abandoned whole."""
        self._acquire()
        try:
            self._loop(interruptible=threading.current_thread() is threading.main_thread())
        finally:
            self._release()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self) -> None:
        try:
            self._loop(interruptible=False)
        except Exception as exc:  # the thread must say why it died, in one line
            log.error("watch stopped: %s", first_line(exc))

    # --- the one-watcher-per-index lock --------------------------------------------------------

    def _acquire(self) -> None:
        from filelock import Timeout

        lock = self.index_dir.watch_lock(on_acquired=_write_pid)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            other = _read_pid(lock.lock_file)
            who = f" (pid {other})" if other else ""
            raise IndexLockedError(
                f"another watcher{who} is keeping {self.index_dir.path} up to date; "
                "stop it first (one watcher per index)"
            ) from None
        except OSError as exc:
            raise IndexWriteError(
                f"cannot watch {self.index_dir.path}: {exc.strerror or exc}"
            ) from None
        self._lock = lock

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- the loop ------------------------------------------------------------------------------

    def _loop(self, *, interruptible: bool) -> None:
        while not self._stop.is_set():
            present = self._present()
            if not present:
                self._stop.wait(self.tick)
                continue
            self._full.update(present)  # catch up on whatever happened while not watching
            try:
                self._watch(present, interruptible)
            except (OSError, RuntimeError) as exc:  # inotify limits, a root vanishing mid-setup
                if not self.force_polling:
                    log.warning("file watching failed (%s); polling instead", first_line(exc))
                    self.force_polling = True
                elif str(exc) != self._last_failure:
                    log.warning("file watching failed (%s); trying again", first_line(exc))
                self._last_failure = str(exc)
                self._stop.wait(self.tick)

    def _watch(self, present: list[str], interruptible: bool) -> None:
        import watchfiles

        bases = sorted({watch_base(r) for r in present})
        self._identity = {b: _identity(b) for b in bases}
        for changes in watchfiles.watch(
            *bases,
            watch_filter=self._interesting,
            debounce=int(self.debounce * 1000),
            step=int(self.step * 1000),
            stop_event=self._stop,
            rust_timeout=int(self.tick * 1000),
            yield_on_timeout=True,
            raise_interrupt=interruptible,
            force_polling=self.force_polling,
            ignore_permission_denied=True,
        ):
            self._note(changes)
            if self.rescan is not None and time.monotonic() - self._last_scan > self.rescan:
                self._full.update(present)  # the safety net for events the OS dropped
            if (self._full or self._paths) and time.monotonic() >= self._retry_at:
                self._batch()
            if self._present() != present or any(
                _identity(b) != ident for b, ident in self._identity.items()
            ):
                return  # a root came, went or was replaced: watch the new set

    def _present(self) -> list[str]:
        present = [r for r in self.roots if root_present(r)]
        for r in self.roots:
            if r in present and r in self._gone:
                self._gone.discard(r)
                log.info("%s is back; catching up", r)
            elif r not in present and r not in self._gone:
                self._gone.add(r)
                log.warning("%s is missing; its documents are kept until it is back", r)
        return present

    def _interesting(self, change: Any, path: str) -> bool:
        """Events worth a batch: not inside the index itself, not an editor's scratch file,
        not under a hidden folder (discovery skips those anyway)."""
        if path.startswith(self._index_prefixes):
            return False
        name = os.path.basename(path)
        if name in _RULE_FILES:
            return True
        if name.endswith(_SCRATCH_SUFFIXES) or name == "4913" or name.startswith("#"):
            return False
        root = self._root_of(path)
        if root is None:
            return False
        rel = path[len(watch_base(root)) :]
        return not any(part.startswith(".") for part in rel.split(os.sep) if part)

    def _root_of(self, path: str) -> str | None:
        best = None
        for r in self.roots:
            base = watch_base(r)
            inside = path == base or path.startswith(base.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(watch_base(best)) < len(base)):
                best = r
        return best

    def _note(self, changes: set[tuple[Any, str]]) -> None:
        """Coalesce events into paths per root; past MAX_PATHS a root is walked whole."""
        for _, path in changes:
            root = self._root_of(path)
            if root is None:
                continue
            self._events += 1
            if root in self._full:
                continue
            paths = self._paths.setdefault(root, set())
            if path == watch_base(root) or len(paths) >= MAX_PATHS:
                self._full.add(root)
                del self._paths[root]
            else:
                paths.add(path)

    # --- one batch -----------------------------------------------------------------------------

    def _batch(self) -> None:
        full, paths = set(self._full), self._paths
        roots = sorted(full | set(paths))
        changed = {p for r, ps in paths.items() for p in ps}
        events, self._events = self._events, 0
        self._full, self._paths = set(), {}
        self._last_scan = time.monotonic()
        started = time.perf_counter()
        try:
            targeted = None if full else classify(self.index_dir, changed)
            if targeted is None:  # discovery decides: walk the touched roots
                result = refresh(
                    self.index_dir, self._make_engine, roots=roots, lock_timeout=self.lock_timeout
                )
            else:
                result = apply(
                    self.index_dir, self._make_engine, targeted, lock_timeout=self.lock_timeout
                )
        except Exception as exc:  # a watcher must outlive any one batch
            # Disk full, the index busy, a file that could not be read: the live index is
            # as it was; say so once and walk these roots again after a pause.
            self._full.update(roots)
            self._failures += 1
            self._retry_at = time.monotonic() + min(2.0 * 2 ** (self._failures - 1), 60.0)
            reason = _reason(exc)
            report = BatchReport(0, 0, 0, time.perf_counter() - started, events, False, reason)
            log.error("batch failed, retrying: %s", report.error)
            self._publish(report)
            return
        self._failures = 0
        s = result.stats
        files = result.files if s.changed else ()
        report = BatchReport(s.added, s.updated, s.removed, time.perf_counter() - started,
                             events, s.changed, None, result.pending, files)  # fmt: skip
        if events or s.changed:
            log.info(
                "%s %d added, %d updated, %d removed in %.2fs%s",
                time.strftime("%H:%M:%S"), s.added, s.updated, s.removed, report.seconds,
                self._names(files),
            )  # fmt: skip
        self._publish(report)

    def _names(self, files: Sequence[str]) -> str:
        """``: a.md, sub/b.md, c.txt +4 more`` (every name when verbose), relative to the
        root each is under."""
        if not files:
            return ""
        shown = files if self.verbose else files[:NAMES_SHOWN]
        names = []
        for f in shown:
            root = self._root_of(f)
            base = watch_base(root) if root is not None else None
            names.append(os.path.relpath(f, base) if base and os.path.isdir(base) else f)
        more = len(files) - len(shown)
        return ": " + ", ".join(names) + (f" +{more:,} more" if more else "")

    def _publish(self, report: BatchReport) -> None:
        self.batches += 1
        self.last = report
        if self.on_batch is not None:
            self.on_batch(report)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, SemsearchError):
        return first_line(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"  # unexpected: name it


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _write_pid(fd: int) -> None:
    """The holder's pid in the watch lock file: a courtesy (a full disk refuses it)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(path: str) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        return f.read(32).decode("ascii", "replace").strip()
    return ""
