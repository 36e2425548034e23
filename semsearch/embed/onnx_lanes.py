"""Lanes: a batch of texts spread over one-thread sessions, one per CPU.

A text of ~150 tokens is a small GEMM: two intra-op threads sharing it wait on each other
at every operator, so on a quiet 2-core machine two one-thread sessions, each running its
own texts, embed ~1.2× the tokens of one two-thread session. The vectors do not change:
each text still runs alone, and a one-thread run gives the same bits as a two-thread one
(int8 sums are integers, and ONNX Runtime splits the fp32 operators by rows, not inside
a sum; ``tests/test_onnx_lanes.py`` checks it). A short text alone (a query) does not
gain from a second thread either: measured side by side, one thread took 0.88x the time of
two for a 2-5 word query, so such texts run on a one-thread session of their own once a
process has asked for a second (``onnx_runtime.QUERY_TOKENS``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Runs one text (by its index in the batch) on the given session.
RunOne = Callable[[Any, int], None]


class Lanes:
    """``count`` one-thread sessions made by ``make`` on first use, and the threads that
    drive them. Made only when a batch arrives, so a search never pays for them."""

    def __init__(self, make: Callable[[], Any], count: int) -> None:
        self._make = make
        self.count = count
        self._sessions: list[Any] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _ready(self) -> tuple[list[Any], ThreadPoolExecutor]:
        with self._lock:
            if self._sessions is None or self._pool is None:
                pool = ThreadPoolExecutor(self.count - 1, thread_name_prefix="semsearch-lane")
                # Made side by side: creating a session releases the GIL.
                rest = [pool.submit(self._make) for _ in range(self.count - 1)]
                first = self._make()
                self._sessions = [first, *(f.result() for f in rest)]
                self._pool = pool
            return self._sessions, self._pool

    def run(self, costs: Sequence[int], run_one: RunOne) -> None:
        """Run every text, each once, spread so each lane gets about the same cost."""
        sessions, pool = self._ready()
        groups = split_by_cost(costs, len(sessions))
        futures = [
            pool.submit(_run_group, sessions[k], group, run_one)
            for k, group in enumerate(groups[1:], start=1)
            if group
        ]
        error: BaseException | None = None
        try:
            _run_group(sessions[0], groups[0], run_one)
        except BaseException as exc:  # the other lanes are waited for before it is raised
            error = exc
        for f in futures:
            try:
                f.result()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error


def _run_group(session: Any, group: Sequence[int], run_one: RunOne) -> None:
    for i in group:
        run_one(session, i)


def split_by_cost(costs: Sequence[int], lanes: int) -> list[list[int]]:
    """Indices of ``costs`` in ``lanes`` groups of about equal total cost: the costliest
    first, each to the lightest group so far (ties to the lowest lane). Each group keeps
    its indices in ascending order."""
    groups: list[list[int]] = [[] for _ in range(max(1, lanes))]
    load = [0] * len(groups)
    for i in sorted(range(len(costs)), key=lambda j: (-costs[j], j)):
        k = min(range(len(groups)), key=lambda g: (load[g], g))
        groups[k].append(i)
        load[k] += costs[i]
    return [sorted(g) for g in groups]
