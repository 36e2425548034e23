"""The float rows behind a faiss index, and the exact re-score of its candidates from them:
what a query reads after the approximate search (:mod:`.ann` holds the build and tuning
recipes)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ..store.npy import RowFile
from .base import row_dots

#: Queries whose candidates are re-scored at once (bounds the rows gathered).
SCORE_QUERIES = 16


class Rows:
    """The float rows behind an index: a (memory-mapped) base array plus appended blocks."""

    def __init__(self, base: np.ndarray) -> None:
        self._blocks = [base]
        #: While building: gathers rows by reading the file instead of the map.
        self._take: Callable[[np.ndarray], np.ndarray] | None = None

    @contextlib.contextmanager
    def read_from_file(self) -> Iterator[None]:
        """Gather rows with file reads meanwhile (see :class:`RowFile`): for build-time
        tuning, whose ~1,000 scattered rows per query would map most of the file."""
        reader = RowFile.of(self._blocks[0]) if len(self._blocks) == 1 else None
        self._take = None if reader is None else reader.take
        try:
            yield
        finally:
            self._take = None

    def append(self, v: np.ndarray) -> None:
        self._blocks.append(v.copy())

    def all(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0]

    def scores(
        self, q: np.ndarray, found: np.ndarray, keep: bool = False
    ) -> tuple[np.ndarray, Gathered | None]:
        """Exact inner products of each query with its candidates (-inf for ``-1`` pads),
        :data:`SCORE_QUERIES` queries at a time so the gathered rows stay a few MB (200
        tuning queries x 1024 candidates would otherwise gather 300 MB at once). With
        ``keep``, also the rows gathered (:class:`Gathered`: as read, no copy in
        ``found``'s order)."""
        out = np.full(found.shape, -np.inf, dtype=np.float32)
        rows_of = np.asarray(self.all())  # (a memory map as a plain array: no subclass calls)
        kept: list[np.ndarray] = []
        slot = np.full(found.shape, -1, np.int64) if keep else None
        for start in range(0, len(found), SCORE_QUERIES):
            block = found[start : start + SCORE_QUERIES]
            for i, cand in enumerate(block, start):
                ok = cand >= 0
                ids = cand[ok]
                order = np.argsort(ids, kind="stable")  # sequential reads of the map
                s = np.empty(len(ids), dtype=np.float32)
                picked = ids[order]
                rows = np.asarray(
                    rows_of[picked] if self._take is None else self._take(picked), np.float32
                )
                s[order] = row_dots(rows, q[i])
                out[i, ok] = s
                if slot is not None:
                    kept.append(rows)
                    slot[i, np.flatnonzero(ok)[order]] = np.arange(len(ids))
        return out, None if slot is None else Gathered(kept, slot)


class Gathered(NamedTuple):
    """The float rows a re-score read: ``rows[i]``, query ``i``'s in the order read, and
    ``slot[i, j]``, the row of ``rows[i]`` holding the query's candidate ``j`` (-1 at
    pads)."""

    rows: list[np.ndarray]
    slot: np.ndarray

    def take(self, at: np.ndarray) -> np.ndarray:
        """``(queries, len(at[i]), dim)``: the rows of each query's candidates at positions
        ``at[i]`` (zeros at pads), gathered once from the rows as read."""
        dim = self.rows[0].shape[1] if self.rows else 0
        out = np.empty((*at.shape, dim), np.float32)
        for i, rows in enumerate(self.rows):
            if not len(rows):
                out[i] = 0.0
                continue
            where = self.slot[i, at[i]]
            np.take(rows, where, axis=0, out=out[i], mode="clip")  # (pads: any row, then 0)
            pads = where < 0
            if pads.any():
                out[i, pads] = 0.0
        return out
