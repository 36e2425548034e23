"""A document to index: its text, where it came from, and the structure readers found."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import UsageError
from ..util import first_line


class Section(NamedTuple):
    """A character range of a document with its location: a page, a heading path, or both.

    Chunks never cross a section boundary, and each chunk reports its section's page and
    heading path (``"Guide › Install › Linux"``)."""

    start: int
    end: int
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A text to index. ``source`` is where it came from (a path, or a caller's label).

    ``sections`` is empty for plain text; readers of structured formats fill it.
    ``stat`` is ``(size, mtime_ns, inode)`` of the file it was read from, for change detection.
    """

    doc_id: str
    source: str
    text: str
    sha256: str
    meta: Mapping[str, Any] | None = None
    title: str = ""
    kind: str = "text"
    sections: tuple[Section, ...] = ()
    stat: tuple[int, int, int] | None = None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _check_json(metadata: Mapping[str, Any] | None) -> None:
    """Refuse metadata that is not strict JSON: NaN and Infinity, which no JSON reader
    accepts, and anything ``json`` cannot write (it is stored as JSON)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError:
        raise UsageError("metadata must be JSON: NaN and Infinity are not allowed") from None
    except (TypeError, RecursionError) as exc:
        raise UsageError(f"metadata must be JSON values ({first_line(exc)})") from None


def documents_from_texts(
    texts: Iterable[str],
    ids: Iterable[str],
    metadata: Iterable[Mapping[str, Any] | None] | None = None,
) -> list[Document]:
    """Wrap raw strings as documents (ids and metadata checked)."""
    items = list(texts)
    for t in items:
        if not isinstance(t, str):
            raise UsageError(f"texts must be strings, got {type(t).__name__}")
    id_list = [str(i) for i in ids]
    metas = list(metadata) if metadata is not None else [None] * len(items)
    if len(id_list) != len(items) or len(metas) != len(items):
        raise UsageError(
            f"got {len(items)} texts, {len(id_list)} ids and {len(metas)} metadata entries"
        )
    if len(set(id_list)) != len(id_list):
        raise UsageError("document ids must be unique")
    for m in metas:
        if m is not None and not isinstance(m, Mapping):
            raise UsageError(f"metadata must be a mapping or None, got {type(m).__name__}")
        _check_json(m)
    return [
        Document(i, i, t, content_hash(t), dict(m) if m else None)
        for i, t, m in zip(id_list, items, metas, strict=True)
    ]
