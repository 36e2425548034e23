"""Long lists bound into SQL ``IN (...)`` clauses a block at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: Values bound in one ``IN (...)`` list (older SQLite builds allow 999 variables a statement).
IN_BLOCK = 500


def in_blocks(values: Iterable[int]) -> Iterator[tuple[str, list[int]]]:
    """``values`` as ints in blocks of :data:`IN_BLOCK`, each with its ``?,?,…`` marks."""
    wanted = [int(v) for v in values]
    for i in range(0, len(wanted), IN_BLOCK):
        part = wanted[i : i + IN_BLOCK]
        yield ",".join("?" * len(part)), part
