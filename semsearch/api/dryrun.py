"""What ``semsearch index`` would do, without doing it: discovery only, so it writes
nothing and loads no model. Files are grouped by type with their sizes, and everything
passed over is grouped by the reason."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import IndexFormatError, UsageError
from ..ingest.discover import DEFAULT_MAX_FILE_SIZE, discover_files
from ..store.layout import IndexDir

#: Paths named per reason (the rest are counted).
EXAMPLES = 3


@dataclass(frozen=True)
class TypeCount:
    """Files of one type (their suffix, lower-cased; ``(none)`` without one)."""

    kind: str
    files: int
    bytes: int


@dataclass(frozen=True)
class SkipCount:
    """Files or folders passed over for one reason, with a few of them."""

    reason: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class DryRun:
    files: int
    bytes: int
    types: tuple[TypeCount, ...]
    skipped: tuple[SkipCount, ...]


def dry_run(
    paths: Sequence[str | os.PathLike[str]],
    index: str | os.PathLike[str] | None = None,
    *,
    glob: str | Sequence[str] | None = None,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    follow_symlinks: bool = False,
) -> DryRun:
    """What indexing ``paths`` (or, with none, the index's remembered roots under its own
    options) would read, and what it would pass over and why."""
    globs: Sequence[str] = (glob,) if isinstance(glob, str) else tuple(glob or ())
    if not paths:
        if index is None:
            raise UsageError("no paths given and no index named to take them from")
        try:
            _, m = IndexDir(index).manifest()
        except IndexFormatError as exc:
            raise UsageError(f"no paths given, and the index cannot say which: {exc}") from None
        paths, globs, excludes, follow_symlinks = m.roots, m.globs, m.excludes, m.follow_symlinks
    found = discover_files(
        paths, globs, excludes=excludes, max_file_size=max_file_size,
        follow_symlinks=follow_symlinks, allow_empty=True,
    )  # fmt: skip
    types: dict[str, list[int]] = {}
    total = 0
    for f in found.files:
        try:
            size = os.stat(f).st_size
        except OSError:
            continue
        kind = Path(f).suffix.lower() or "(none)"
        entry = types.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += size
        total += size
    reasons: dict[str, list[str]] = {}
    for p in found.passed:
        reasons.setdefault(p.reason, []).append(str(p.path))
    return DryRun(
        files=sum(n for n, _ in types.values()),
        bytes=total,
        types=tuple(
            TypeCount(k, n, b) for k, (n, b) in sorted(types.items(), key=lambda kv: -kv[1][1])
        ),
        skipped=tuple(
            SkipCount(r, len(ps), tuple(ps[:EXAMPLES]))
            for r, ps in sorted(reasons.items(), key=lambda kv: -len(kv[1]))
        ),
    )
