"""From ranked rows to hits: the records of every ranked row fetched at once, copies
folded on their texts, and only the hits shown built (with their score's parts, a grouped
hit's further chunks fetched then, each file's state judged once)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError
from ..search.request import SearchOptions
from ..search.retrieve import Ranked
from ..store.records import ChunkRecord
from ..store.segments import SegmentedStore
from ..util import unique_sorted
from .hits import FileStates, Hit, Kept, Parts, folded, to_hit


def ranked_hits(
    ranked: Sequence[Ranked],
    store: SegmentedStore,
    opts: SearchOptions,
    dense_model: str | None,
    *,
    where: Path,
) -> list[list[Hit]]:
    """The best ``opts.k`` hits of each query's ranking (``where``: the index, named when
    rows are missing from its damaged chunk database)."""
    # The further chunks of the first k grouped hits come along (they are nearly always
    # the ones shown: only folded copies push others in, whose are fetched after).
    likely = [m for r in ranked if r.further is not None for f in r.further[: opts.k] for m in f]
    wanted = unique_sorted(np.concatenate([r.rows for r in ranked] + [np.array(likely, np.int64)]))
    records = _fetched(store, wanted, where)
    states = FileStates()
    out = []
    for r in ranked:
        found = [records[i] for i in r.rows.tolist()]
        shown = (
            folded([c.text for c in found], [c.source for c in found], opts.k)
            if opts.collapse
            else [Kept(n, ()) for n in range(min(opts.k, len(found)))]
        )  # the hits to build: copies folded first, from the records' texts
        further = r.further if r.further is not None else [()] * len(found)
        more = sorted({m for n, _ in shown for m in further[n]} - records.keys())
        if more:  # further chunks of a grouped hit shown beyond the first k
            records.update(_fetched(store, np.asarray(more, np.int64), where))
        none = [None] * len(found)
        measured = (r.cosine, r.bm25, r.dense_part, r.keyword_part)
        cos, bm, dp, kp = (none if a is None else a.tolist() for a in measured)
        scores = r.scores.tolist()
        out.append([
            to_hit(
                found[n], float(scores[n]),
                Parts(cos[n], bm[n], dp[n], kp[n], r.dense_weight),
                [records[int(m)] for m in further[n]], dense_model, also_in=also, states=states,
            )
            for n, also in shown
        ])  # fmt: skip
    return out


def _fetched(store: SegmentedStore, rows: np.ndarray, where: Path) -> dict[int, ChunkRecord]:
    """The records of ``rows`` (``where``: the index, named when rows are missing from its
    damaged chunk database)."""
    records = store.fetch(rows)
    if len(records) != len(rows):  # rows lost in a damaged (unchecked, large) database
        raise IndexFormatError(
            f"index at {where} is damaged: {len(rows) - len(records)} chunk "
            "rows are missing from its chunk database; verify its files' checksums"
        )
    return records
