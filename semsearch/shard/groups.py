"""Shard groups and their replicas: where each call goes, and what happens when a replica is
gone or silent.

A call to a group goes to one of its live replicas (round robin). A replica that died, or did
not answer within ``timeout`` seconds, is marked lost and the call is sent to the next one;
when a group has none left the whole query fails with :class:`ShardUnavailable` (HTTP 503),
so a partial answer is never presented as a whole one. Loading a generation goes to every
live replica and returns only once all have it.

:class:`LocalGroups` runs replicas in this process (tests, and the reference the Ray
version is checked against); :class:`RayGroups` runs each replica as a Ray actor.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import SemsearchError, ServiceUnavailable, UsageError
from ..util import first_line
from .replica import Assigned, SegmentStats, ShardReplica

log = logging.getLogger("semsearch.shard")

#: Seconds one replica may take to answer one call before the next replica is asked.
CALL_TIMEOUT = 10.0
#: Seconds a replica may take to open a generation's segments.
LOAD_TIMEOUT = 300.0


class ShardUnavailable(ServiceUnavailable):
    """A shard group has no live replica, or none answered in time (HTTP 503)."""


class Call(NamedTuple):
    """A method of the replica and its arguments (the generation first, where it reads)."""

    method: str
    args: tuple[Any, ...]


class GroupHealth(NamedTuple):
    group: int
    live: int
    replicas: int


class Groups:
    """``groups`` shard groups of ``replicas`` replicas each; subclasses say how to call one."""

    def __init__(self, groups: int, replicas: int, timeout: float = CALL_TIMEOUT) -> None:
        if groups < 1:
            raise UsageError(f"shards must be at least 1, got {groups}")
        if replicas < 1:
            raise UsageError(f"replicas must be at least 1, got {replicas}")
        self.groups = groups
        self.replicas = replicas
        self.timeout = timeout
        self.lost: set[tuple[int, int]] = set()
        self._turn = [itertools.count(g) for g in range(groups)]
        self._lock = threading.Lock()

    # --- to implement ----------------------------------------------------------------------

    def _submit(self, group: int, replica: int, call: Call) -> Any:
        """Start ``call`` on one replica; returns a handle :meth:`_wait` takes."""
        raise NotImplementedError

    def _wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[bool, Any]]:
        """For each handle: (True, result), or (False, why) if it died or ran out of time."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the replicas this object started."""

    def ping(self, timeout: float | None = None) -> None:
        """Check every replica not yet lost (within ``timeout``, default the call timeout);
        mark the dead ones lost."""

    # --- calls -----------------------------------------------------------------------------

    def live(self, group: int) -> list[int]:
        return [r for r in range(self.replicas) if (group, r) not in self.lost]

    def health(self) -> list[GroupHealth]:
        return [GroupHealth(g, len(self.live(g)), self.replicas) for g in range(self.groups)]

    def unavailable(self) -> str | None:
        """One line naming the groups without a live replica, or None."""
        dead = [h.group for h in self.health() if h.live == 0]
        if not dead:
            return None
        names = ", ".join(str(g) for g in dead)
        return (
            f"shard {names} of {self.groups} has no live replica; its segments cannot be searched"
        )

    def _lose(self, group: int, replica: int, why: str) -> None:
        with self._lock:
            if (group, replica) not in self.lost:
                self.lost.add((group, replica))
                log.warning("shard %d replica %d lost: %s", group, replica, why)

    def _next(self, group: int, tried: set[int]) -> int:
        live = [r for r in self.live(group) if r not in tried]
        if not live:
            raise ShardUnavailable(self.unavailable() or f"shard {group}: no replica answered")
        return live[next(self._turn[group]) % len(live)]

    def fan_out(self, calls: Mapping[int, Call]) -> dict[int, Any]:
        """Each group's call, run at once on one replica per group; a failed replica's call
        goes to the next replica of its group. All results, or ShardUnavailable."""
        tried: dict[int, set[int]] = {g: set() for g in calls}
        results: dict[int, Any] = {}
        pending = dict(calls)
        while pending:
            at = {g: self._next(g, tried[g]) for g in pending}
            handles = [self._submit(g, at[g], c) for g, c in pending.items()]
            answers = self._wait(handles, self.timeout)
            retry = {}
            for (g, c), (ok, value) in zip(pending.items(), answers, strict=True):
                if ok:
                    results[g] = value
                else:
                    tried[g].add(at[g])
                    self._lose(g, at[g], value)
                    retry[g] = c
            pending = retry
        return results

    def everyone(self, make: Callable[[int], Call]) -> dict[int, Any]:
        """``make(group)`` on every live replica of every group (a generation load): one
        answer per group, once every live replica has answered; ShardUnavailable if a group
        is left without one."""
        handles, where = [], []
        for g in range(self.groups):
            for r in self.live(g):
                handles.append(self._submit(g, r, make(g)))
                where.append((g, r))
        answers = self._wait(handles, LOAD_TIMEOUT)
        out: dict[int, Any] = {}
        for (g, r), (ok, value) in zip(where, answers, strict=True):
            if ok:
                out.setdefault(g, value)
            else:
                self._lose(g, r, value)
        missing = self.unavailable()
        if missing:
            raise ShardUnavailable(missing)
        return out

    def load(
        self, generation: str, dim: int, backend: str, plan: Sequence[Sequence[Assigned]]
    ) -> list[list[SegmentStats]]:
        """Open ``plan[g]``'s segments of ``generation`` on every live replica of group g."""
        got = self.everyone(lambda g: Call("load", (generation, dim, backend, list(plan[g]))))
        return [got[g] for g in range(self.groups)]

    def release(self, generation: str) -> None:
        """Let every replica close a generation no reader holds (answers not awaited)."""
        for g in range(self.groups):
            for r in self.live(g):
                with contextlib.suppress(Exception):  # a replica gone has nothing to free
                    self._submit(g, r, Call("release", (generation,)))


class LocalGroups(Groups):
    """Replicas as plain objects in this process (tests; the fan-out without Ray)."""

    def __init__(self, root: str, groups: int, replicas: int = 1) -> None:
        super().__init__(groups, replicas)
        self.members = [[ShardReplica(root) for _ in range(replicas)] for _ in range(groups)]

    def _submit(self, group: int, replica: int, call: Call) -> Any:
        try:
            return True, getattr(self.members[group][replica], call.method)(*call.args)
        except SemsearchError:
            raise
        except Exception as exc:
            return False, first_line(exc)

    def _wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[bool, Any]]:
        return list(handles)


class RayGroups(Groups):
    """Each replica a Ray actor (no CPU reserved, spread over the nodes; not restarted: a
    lost replica stays lost and its group answers from the others)."""

    def __init__(
        self,
        root: str,
        groups: int,
        replicas: int = 1,
        *,
        timeout: float = CALL_TIMEOUT,
        concurrency: int = 4,
    ) -> None:
        super().__init__(groups, replicas, timeout)
        import ray

        self.ray = ray
        actor = ray.remote(ShardReplica).options(
            num_cpus=0,
            max_concurrency=concurrency,
            max_restarts=0,
            scheduling_strategy="SPREAD",
        )
        self.members: list[list[Any]] = [
            [actor.remote(root) for _ in range(replicas)] for _ in range(groups)
        ]
        self.ping(LOAD_TIMEOUT)  # starting an actor's process can be slow on a busy node

    def release(self, generation: str) -> None:
        if self.ray.is_initialized():  # never start Ray again to free what it no longer holds
            super().release(generation)

    def _submit(self, group: int, replica: int, call: Call) -> Any:
        member = self.members[group][replica]
        return getattr(member, call.method).remote(*call.args)

    def _wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[bool, Any]]:
        ray = self.ray
        until = time.monotonic() + timeout
        ready, _ = ray.wait(list(handles), num_returns=len(handles), timeout=timeout)
        done = set(ready)
        out: list[tuple[bool, Any]] = []
        for h in handles:
            if h not in done:
                ray.cancel(h, force=False)
                out.append((False, f"no answer within {timeout:g} s"))
                continue
            try:
                out.append((True, ray.get(h, timeout=max(until - time.monotonic(), 0.1))))
            except ray.exceptions.RayActorError as exc:
                out.append((False, first_line(exc)))
            except ray.exceptions.GetTimeoutError:
                out.append((False, f"no answer within {timeout:g} s"))
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, SemsearchError):
                    raise type(cause)(str(cause)) from None
                raise ShardUnavailable(f"a shard failed: {first_line(cause or exc)}") from None
        return out

    def ping(self, timeout: float | None = None) -> None:
        calls = [(g, r) for g in range(self.groups) for r in self.live(g)]
        handles = [self._submit(g, r, Call("ping", ())) for g, r in calls]
        answers = self._wait(handles, timeout or self.timeout)
        for (g, r), (ok, why) in zip(calls, answers, strict=True):
            if not ok:
                self._lose(g, r, why)

    def close(self) -> None:
        if not self.ray.is_initialized():
            return
        for group in self.members:
            for m in group:
                with contextlib.suppress(Exception):  # already gone
                    self.ray.kill(m)
