"""What the API returns: typed, frozen records, never tuples or dicts."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..util import file_digest

if TYPE_CHECKING:  # the front ends import this module; the store (numpy, SQLite) stays out
    from ..store.phase2 import Phase2Progress
    from ..store.records import ChunkRecord


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk, its score and where it sits in its source.

    ``score`` is the ranking score of the query's mode, rebuilt from its parts thus:
    dense: ``score = dense_score`` (the cosine similarity); keyword: ``score =
    keyword_score`` (``bm25`` as a 0-1 fraction of a full match at document and chunk
    level); hybrid: ``score = dense_weight * dense_score + (1 - dense_weight) *
    keyword_score``, with the query's own ``dense_weight`` (0.45, less for a query the
    English model cannot read, see :func:`semsearch.search.fuse.dense_weight`), where
    ``dense_score`` is the 0-1 rise of the cosine above the query's background and
    ``keyword_score`` is ``bm25`` over a full document match, capped at 1. ``cosine``
    (with the query as typed) and ``bm25`` (the raw keyword evidence) are the raw
    measures. A part not computed is None. In code, the score is then multiplied by the
    signals of :mod:`semsearch.search.group` where they fire (a chunk defining what the
    query names; a test, vendored or generated file), grouped by file or not.
    ``page`` (PDF), ``section`` (heading path) and ``title`` locate it in structured files.
    ``stale`` is ``"changed"`` or ``"deleted"`` when the source file differs from what was
    indexed, so a caller never mistakes an old passage for the file's current text.
    """

    score: float
    text: str
    source: str
    doc_id: str
    chunk_id: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = None
    section: str = ""
    title: str = ""
    metadata: Mapping[str, Any] | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    cosine: float | None = None
    bm25: float | None = None
    dense_weight: float | None = None
    stale: str | None = None
    #: The reader that made the document (text, code, markdown, html, pdf, record, ...).
    kind: str = "text"
    #: Other files holding the same passage, folded into this hit (the ``collapse`` option).
    also_in: tuple[str, ...] = ()
    #: Grouped by file: the document's next best chunks, best first (with their lines).
    more: tuple[Passage, ...] = ()
    #: The model whose vectors answered the dense part (None in keyword mode): the static
    #: model while a progressive index is in phase 1, the transformer once it is complete.
    dense_model: str | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A stored chunk read back (by id or as context around a hit), without a score."""

    chunk_id: int
    doc_id: str
    source: str
    title: str
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    section: str
    text: str


@dataclass(frozen=True)
class ChunkContext:
    """A chunk with up to ``context`` neighbouring chunks of its document on each side."""

    chunk: Passage
    before: tuple[Passage, ...]
    after: tuple[Passage, ...]


@dataclass(frozen=True)
class DocumentView:
    """A whole indexed document, its text rebuilt from the index (never read from disk)."""

    doc_id: str
    source: str
    title: str
    kind: str
    text: str
    chunks: int
    metadata: Mapping[str, Any] | None


@dataclass(frozen=True)
class IndexInfo:
    path: str | None
    generation: str
    documents: int
    chunks: int
    model: str
    precision: str
    dim: int
    backend: str
    index_type: str
    chunk_tokens: int
    overlap: int
    size_bytes: int
    recall_at_10: float | None
    roots: tuple[str, ...]
    #: ``phase-1`` (keyword + static vectors answer; ``pending_model``'s vectors are still
    #: to come) or ``complete``.
    phase: str = "complete"
    pending_model: str | None = None
    #: In phase 1: what the phase-2 worker last said (state, done/total chunks, whether it
    #: runs now, its pid and log); None when no phase 2 was ever started.
    phase2: Phase2Progress | None = None


class Parts(NamedTuple):
    """What a hit's score is made of (see :class:`Hit`)."""

    cosine: float | None
    bm25: float | None
    dense: float | None
    keyword: float | None
    dense_weight: float | None = None


def to_hit(
    r: ChunkRecord,
    score: float,
    parts: Parts,
    more: Sequence[ChunkRecord] = (),
    dense_model: str | None = None,
    *,
    also_in: tuple[str, ...] = (),
    states: FileStates | None = None,
) -> Hit:
    """The hit of record ``r`` (``states``: the file states already judged by this
    search, else its file is judged afresh)."""
    return Hit(
        score=score,
        text=r.text,
        source=r.source,
        doc_id=r.doc_id,
        chunk_id=r.chunk_id,
        start=r.start,
        end=r.end,
        line_start=r.line_start,
        line_end=r.line_end,
        page=r.page,
        section=r.section,
        title=r.title,
        metadata=r.metadata,
        dense_score=_finite(parts.dense),
        keyword_score=_finite(parts.keyword),
        cosine=_finite(parts.cosine),
        bm25=_finite(parts.bm25),
        dense_weight=parts.dense_weight,
        stale=staleness(r) if states is None else states.of(r),
        kind=r.kind,
        also_in=also_in,
        more=tuple(to_passage(m) for m in more),
        dense_model=dense_model,
    )


def to_passage(r: ChunkRecord) -> Passage:
    return Passage(
        r.chunk_id, r.doc_id, r.source, r.title, r.ordinal, r.start, r.end, r.line_start,
        r.line_end, r.page, r.section, r.text,
    )  # fmt: skip


def staleness(r: ChunkRecord) -> str | None:
    """Whether the file a chunk came from still is what was indexed (see file_state)."""
    return None if r.doc_stat is None else file_state(r.source, r.doc_stat, r.sha256)


class FileStates:
    """The state of each file as one search judges it (:func:`staleness`): a file with
    several hits is stat-checked once."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, tuple[int, int, int] | None, str | None], str | None] = {}

    def of(self, r: ChunkRecord) -> str | None:
        key = (r.source, r.doc_stat, r.sha256)
        if key not in self._seen:
            self._seen[key] = staleness(r)
        return self._seen[key]


def file_state(source: str, indexed: tuple[int, int, int], sha256: str | None) -> str | None:
    """None when the file still is what was indexed, else "changed" or "deleted": one
    ``stat``, and when only its time or inode moved (a touch, a copy, a reinstall), its
    digest."""
    try:
        st = os.stat(source)
    except OSError:
        return "deleted"
    if (st.st_size, st.st_mtime_ns, st.st_ino) == tuple(indexed):
        return None
    if st.st_size != indexed[0] or sha256 is None:
        return "changed"
    try:
        same = file_digest(Path(source)) == sha256
    except OSError:
        return "deleted"
    return None if same else "changed"


#: Readers whose line numbers count in extracted text, not in the file (HTML, office and
#: e-book documents, PDF pages): such hits are located by page or section, never by line.
_NO_FILE_LINES = frozenset({"html", "docx", "epub", "odt", "pdf"})


def file_lines(hit: Hit | Passage) -> tuple[int, int] | None:
    """The hit's first and last line in its source file, None when they are not the file's."""
    kind = getattr(hit, "kind", "text")  # a Passage (a grouped hit's further chunk) has none
    if kind in _NO_FILE_LINES or hit.page is not None or kind == "record":
        return None
    return hit.line_start, hit.line_end


def location(hit: Hit | Passage, path: str | None = None) -> str:
    """Where a hit is, the one form every front end prints and agents cite: ``path:line``
    or ``path:start-end`` for text, code and Markdown (real file lines), ``path p. N`` for
    a PDF page, ``path:N`` for the row of a data file, and `` › Section`` after it when the
    file has headings (alone for HTML and documents, whose extracted lines are not the
    file's). ``path`` is the source as the front end shows paths (default: as stored)."""
    where = hit.source if path is None else path
    section = hit.section
    lines = file_lines(hit)
    if getattr(hit, "kind", "text") == "record":
        row = str(hit.doc_id).rsplit("#", 1)[-1]
        where += f":{row}" if row.isdigit() else ""
        section = ""
    elif hit.page is not None:
        where += f" p. {hit.page}"
    elif lines is not None:
        where += f":{lines[0]}" if lines[0] == lines[1] else f":{lines[0]}-{lines[1]}"
    return f"{where} › {section}" if section else where


class Located(NamedTuple):
    """A location read back (:func:`parse_location`): the path and what narrows it."""

    path: str
    lines: tuple[int, int] | None = None
    page: int | None = None
    section: str = ""


_PAGE = re.compile(r"^(?P<path>.+) p\. (?P<page>\d+)$")
_LINES = re.compile(r"^(?P<path>.+):(?P<a>\d+)(?:-(?P<b>\d+))?$")


def parse_location(text: str) -> Located:
    """The parts of a location :func:`location` printed: ``path:12``, ``path:12-20``,
    ``path p. 3``, ``path › Section`` (after any of those), or a bare path."""
    where, _, section = text.partition(" › ")
    if m := _PAGE.match(where):
        return Located(m["path"], page=int(m["page"]), section=section)
    if (m := _LINES.match(where)) and not os.path.exists(where):
        a = int(m["a"])
        return Located(m["path"], (a, int(m["b"] or a)), section=section)
    return Located(where, section=section)


def located(passages: Sequence[Passage], loc: Located) -> list[int]:
    """Positions of the passages a location names: overlapping its lines, on its page,
    under its section (or a section below it)."""
    out = []
    for n, p in enumerate(passages):
        if loc.lines is not None and not (
            p.line_start <= loc.lines[1] and loc.lines[0] <= p.line_end
        ):
            continue
        if loc.page is not None and p.page != loc.page:
            continue
        if loc.section and not (p.section + " › ").startswith(loc.section + " › "):
            continue
        out.append(n)
    return out


def hit_record(hit: Hit, path: str | None = None) -> dict[str, Any]:
    """A hit as JSON (CLI ``--json``, HTTP, MCP): its fields and its ``location``, with
    ``line_start``/``line_end`` null where they are not the file's lines."""
    out = asdict(hit)
    out["location"] = location(hit, path)
    for more, passage in zip(out["more"], hit.more, strict=True):
        more["location"] = location(passage, path)  # the same document: the same path
    if file_lines(hit) is None:
        out["line_start"] = out["line_end"] = None
    return out


def fold_copies(hits: Sequence[Hit]) -> list[Hit]:
    """Hits with each copy of a passage in another file folded into its best hit, which
    names the other files in ``also_in`` (see :func:`semsearch.search.collapse.copies`)."""
    kept = folded([h.text for h in hits], [h.source for h in hits])
    return [replace(hits[n], also_in=also) if also else hits[n] for n, also in kept]


class Kept(NamedTuple):
    """A hit left once copies are folded: its position in the ranking, and the other files
    holding a copy of its passage."""

    position: int
    also_in: tuple[str, ...]


def folded(texts: Sequence[str], sources: Sequence[str], k: int | None = None) -> list[Kept]:
    """The positions (best first) left once each copy of a passage in another file is
    folded into its best one (:func:`fold_copies`), the first ``k`` of them (None: all),
    each with the other files it then names: the hits to build, and no others."""
    from ..search.collapse import copies

    of = copies(texts, sources)
    also: dict[int, list[str]] = {}
    for n, m in enumerate(of):
        if m >= 0:
            also.setdefault(m, []).append(sources[n])
    kept = [n for n, m in enumerate(of) if m < 0][:k]
    return [Kept(n, tuple(dict.fromkeys(also.get(n, ())))) for n in kept]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
