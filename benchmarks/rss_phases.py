"""Where a process's resident memory peaks: ``with RssPhases() as phases: ...; phases.report()``.

A thread samples ``/proc/self/status`` (resident, anonymous and file-backed pages) and the
calling thread's innermost frames of semsearch every ``every`` seconds, so the peak can be
attributed to a phase of the work: NumPy, faiss and SQLite allocations show in RSS but not in
``tracemalloc``, and pages of a memory-mapped file show as file-backed ones (Linux only).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

#: Bytes per unit of /proc/self/status's kB.
KIB = 1024


class Sample(NamedTuple):
    seconds: float
    rss: int
    anon: int
    file: int
    where: str


def status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in bytes (empty off Linux)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(value.split()[0]) * KIB
    except OSError:
        pass
    return out


class RssPhases:
    def __init__(self, every: float = 0.1, depth: int = 3) -> None:
        self.every, self.depth = every, depth
        self.samples: list[Sample] = []
        self._main = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> RssPhases:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            s = status()
            if s:
                at = time.perf_counter() - self._t0
                anon, file = s.get("RssAnon", 0), s.get("RssFile", 0)
                self.samples.append(Sample(at, s["VmRSS"], anon, file, self._where()))

    def _where(self) -> str:
        frame, names = sys._current_frames().get(self._main), []
        while frame is not None and len(names) < self.depth:
            code = frame.f_code
            if "semsearch" in code.co_filename:
                names.append(f"{Path(code.co_filename).stem}.{code.co_name}")
            frame = frame.f_back
        return " < ".join(names) or "(outside semsearch)"

    def top(self, n: int = 8) -> list[Sample]:
        """The highest sample of each phase, highest first."""
        best: dict[str, Sample] = {}
        for s in self.samples:
            if s.where not in best or s.rss > best[s.where].rss:
                best[s.where] = s
        return sorted(best.values(), key=lambda s: -s.rss)[:n]

    def report(self, n: int = 8) -> list[str]:
        return [
            f"{s.rss / 1e6:7.0f} MB (anon {s.anon / 1e6:.0f}, file {s.file / 1e6:.0f}) "
            f"at {s.seconds:.0f}s in {s.where}"
            for s in self.top(n)
        ]
