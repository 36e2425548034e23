"""From ranked rows to hits: the records of every hit (and of a grouped hit's further
chunks) fetched once, each hit built with its score's parts, copies folded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError
from ..search.request import SearchOptions
from ..search.retrieve import Ranked
from ..store.segments import SegmentedStore
from ..util import unique_sorted
from .hits import Hit, Parts, fold_copies, to_hit


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
    wanted = unique_sorted(np.concatenate([r.rows for r in ranked] + _further_rows(ranked)))
    records = store.fetch(wanted)
    if len(records) != len(wanted):  # rows lost in a damaged (unchecked, large) database
        raise IndexFormatError(
            f"index at {where} is damaged: {len(wanted) - len(records)} chunk "
            "rows are missing from its chunk database; verify its files' checksums"
        )
    out = []
    for r in ranked:
        none = [None] * len(r.rows)
        measured = (r.cosine, r.bm25, r.dense_part, r.keyword_part)
        parts = [none if a is None else a.tolist() for a in measured]
        further = r.further if r.further is not None else [()] * len(r.rows)
        hits = [
            to_hit(
                records[int(i)],
                float(s),
                Parts(cos, bm, dp, kp, r.dense_weight),
                [records[int(m)] for m in more],
                dense_model,
            )
            for i, s, more, cos, bm, dp, kp in zip(
                r.rows.tolist(), r.scores.tolist(), further, *parts, strict=True
            )
        ]
        if opts.collapse:
            hits = fold_copies(hits)
        out.append(hits[: opts.k])
    return out


def _further_rows(ranked: Sequence[Ranked]) -> list[np.ndarray]:
    """The further chunk rows of grouped hits, to fetch with the hits' own."""
    return [
        np.asarray([m for more in r.further for m in more], dtype=np.int64)
        for r in ranked
        if r.further is not None
    ]
