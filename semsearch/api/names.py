"""Names a caller gives a write: the folders and globs it indexes, and, resolved against the
generation searched (None: nothing indexed yet), the ids of new texts, ids that must be new,
and the documents a removal names."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import UsageError
from ..util import check_text
from .view import View

#: Texts added without ids are ``text-<n>``.
TEXT_ID = "text-"


def roots(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The folders and files given, absolute (``~`` expanded): what a later refresh walks."""
    return [Path(os.path.abspath(Path(p).expanduser())) for p in paths]


def globs(glob: str | Sequence[str] | None) -> tuple[str, ...]:
    """One glob or several, as a tuple."""
    return (glob,) if isinstance(glob, str) else tuple(glob or ())


def new_text_ids(view: View | None, count: int) -> list[str]:
    """Ids for ``count`` new texts, numbered after the highest ``text-<n>`` indexed."""
    start = 0
    if view is not None:
        numbered = (i[len(TEXT_ID) :] for i in view.store.document_ids(f"{TEXT_ID}*"))
        start = max((int(n) for n in numbered if n.isdigit()), default=-1) + 1
    return [f"{TEXT_ID}{start + n}" for n in range(count)]


def check_new(view: View | None, ids: Sequence[str]) -> None:
    """A clear error naming the first of ``ids`` already in the index."""
    present = [] if view is None else [i for i in ids if view.store.documents_named(i)]
    if present:
        raise UsageError(f"document {present[0]!r} is already in the index (use upsert)")


def named_documents(view: View | None, names: Sequence[str], *, glob: bool) -> frozenset[str]:
    """The ids of the documents ``names`` name: each an id or source path, exactly, or a glob
    on both when ``glob``; a relative path names the file it resolves to (sources are
    absolute). A name that matches nothing is an error."""
    found: set[str] = set()
    for name in names:
        check_text(name, "a document id or path")
        matches: list[str] = []
        if view is not None:
            find = view.store.document_ids if glob else view.store.documents_named
            matches = next((m for m in map(find, (name, os.path.abspath(name))) if m), [])
        if not matches:
            raise UsageError(f"no document in the index matches {name!r}")
        found.update(matches)
    return frozenset(found)
