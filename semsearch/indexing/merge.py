"""Which old segments a write rewrites into its own: a tiered policy, as Lucene's.

Walking from the newest segment back, a segment is merged while it is no more than
``TIER_FACTOR`` times the rows gathered so far: small recent segments fold together and
a big old one is rewritten only once enough has piled up after it, so the segment count
stays logarithmic in the index size and each row is rewritten O(log n) times. Segments
mostly dead, damaged ones, and the excess beyond ``MAX_SEGMENTS`` are merged too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

#: A segment is folded into the newer ones when at most this many times their size.
TIER_FACTOR = 4
#: Rows a new write is assumed to bring at least (so a one-chunk write still folds tiny
#: segments).
MIN_NEW_ROWS = 64
#: A segment with at most this fraction of its rows live is rewritten without its dead rows.
MAX_DEAD_FRACTION = 0.5
#: More segments than this and the smallest are merged, whatever their tiers.
MAX_SEGMENTS = 16


def choose_merges(
    segments: Sequence[tuple[str, int, int]],
    repair: Collection[str] = (),
    *,
    incoming: int = 0,
    everything: bool = False,
) -> set[str]:
    """Names of the segments to merge, from ``(name, rows, live rows)`` oldest first, for a
    write expected to bring about ``incoming`` rows: a series of equal writes then folds as
    it goes, where counting each as a few rows left every one a segment of its own (four
    25k writes were four exact segments, 13× the CPU of one approximate one per query)."""
    if everything:
        return {name for name, _, _ in segments}
    merged = {name for name in repair}
    merged |= {n for n, rows, live in segments if rows and live <= rows * MAX_DEAD_FRACTION}
    gathered = max(MIN_NEW_ROWS, incoming)
    for name, _, live in reversed(segments):
        if live > TIER_FACTOR * gathered:
            break
        merged.add(name)
        gathered += live
    rest = sorted((live, n) for n, _, live in segments if n not in merged)
    while len(rest) + 1 > MAX_SEGMENTS:
        merged.add(rest.pop(0)[1])
    return merged
