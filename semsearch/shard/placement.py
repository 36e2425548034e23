"""Where a sharded generation lives: which group holds each segment (sticky from one
generation to the next, else the least loaded group), where its rows and documents start,
its global BM25 statistics, and how long the groups keep it loaded.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..store.layout import Live
from ..store.manifest import segment_refs
from ..store.segments import read_tombstones
from .groups import Groups
from .replica import Assigned, SegmentStats


class Placed(NamedTuple):
    """A segment of the generation: where it lives and where its rows and documents start."""

    name: str
    group: int
    offset: int
    rows: int
    doc_base: int


class Layout:
    """One generation spread over the groups, with its global BM25 statistics."""

    def __init__(
        self,
        generation: str,
        plan: Sequence[Sequence[Assigned]],
        stats: Sequence[Sequence[SegmentStats]],
    ) -> None:
        self.generation = generation
        by_name = {s.name: s for group in stats for s in group}
        where = [(a, g) for g, group in enumerate(plan) for a in group]
        where.sort(key=lambda ag: ag[0].offset)
        placed, base = [], 0
        for a, g in where:
            placed.append(Placed(a.ref.name, g, a.offset, a.ref.rows, base))
            base += by_name[a.ref.name].doc_slots
        self.segments = tuple(placed)
        self.offsets = np.array([p.offset for p in placed], np.int64)
        self.doc_base = np.array([p.doc_base for p in placed], np.int64)
        self.order = {p.name: i for i, p in enumerate(placed)}
        every = list(by_name.values())
        self.n_chunks = sum(s.live_chunks for s in every)
        self.n_docs = sum(s.live_docs for s in every)
        self.avgdl = (
            sum(s.chunk_length for s in every) / max(self.n_chunks, 1),
            sum(s.doc_length for s in every) / max(self.n_docs, 1),
        )
        self.vectors = sum(s.vectors for s in every)
        self.current = all(s.terms_current for s in every)
        self.groups = len(plan)

    def segment_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, rows, side="right") - 1


def plan_segments(refs: Sequence[Any], groups: int, sticky: dict[str, int]) -> list[int]:
    """The group of each segment: where it already was, else the group with the fewest rows
    (ties to the lower group), biggest segments placed first."""
    load = [0] * groups
    out: dict[int, int] = {}
    for i, ref in enumerate(refs):
        g = sticky.get(ref.name)
        if g is not None and g < groups:
            out[i] = g
            load[g] += ref.rows
    for i in sorted(
        (i for i in range(len(refs)) if i not in out), key=lambda i: (-refs[i].rows, i)
    ):
        g = min(range(groups), key=lambda g: (load[g], g))
        out[i] = g
        load[g] += refs[i].rows
    return [out[i] for i in range(len(refs))]


class Sharding:
    """Generations loaded on the groups, each held while a view of it is open."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self._layouts: dict[str, Layout] = {}
        self._holders: Counter[str] = Counter()
        self._sticky: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, live: Live, backend: str) -> Layout:
        """Load ``live`` on every replica (once) and hold it; returns when all have it."""
        name = live.gen.name
        with self._lock:
            if name not in self._layouts:
                refs = segment_refs(live.gen, live.manifest)
                dead = read_tombstones(live.gen, live.manifest)
                at = plan_segments(refs, self.groups.groups, self._sticky)
                plan: list[list[Assigned]] = [[] for _ in range(self.groups.groups)]
                offset = 0
                for ref, g in zip(refs, at, strict=True):
                    plan[g].append(Assigned(ref, offset, tuple(dead.get(ref.name, ()))))
                    offset += ref.rows
                m = live.manifest
                try:
                    stats = self.groups.load(name, m.dim, backend, plan)
                except BaseException:
                    self.groups.release(name)  # the replicas that did open it let it go
                    raise
                self._layouts[name] = Layout(name, plan, stats)
                self._sticky = {ref.name: g for ref, g in zip(refs, at, strict=True)}
            self._holders[name] += 1
            return self._layouts[name]

    def drop(self, name: str) -> None:
        """A view of ``name`` closed; the last one lets the replicas free it."""
        with self._lock:
            self._holders[name] -= 1
            if self._holders[name] > 0:
                return
            del self._holders[name]
            self._layouts.pop(name, None)
        self.groups.release(name)
