"""Read one file into a :class:`Document`: regular files only, through its format reader.

Every way a file can fail (vanished, unreadable, binary, corrupt, encrypted, image-only,
a zip bomb, a parser that is not installed) ends in one warning naming the file and a
``None``, so a build goes on and nothing already indexed is lost. A missing reader is
reported once per type, naming the extra that installs it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as statmod
from collections.abc import Iterable, Iterator
from pathlib import Path

from .document import Document, Section, content_hash
from .limits import MAX_ROW_WARNINGS
from .readers import (
    DATA_SUFFIXES,
    Extracted,
    Reader,
    ReaderMissing,
    Skipped,
    Unreadable,
    choose,
    read_rows,
)

log = logging.getLogger("semsearch")

#: Bytes read to sniff a file's format.
_SNIFF = 8192

#: Types whose reader is missing and already reported in this process.
_MISSING_REPORTED: set[str] = set()


def file_stat(path: Path) -> tuple[int, int, int] | None:
    """``(size, mtime_ns, inode)`` of a regular file (symlinks followed), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not statmod.S_ISREG(st.st_mode):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def read_bytes(path: Path) -> tuple[bytes, tuple[int, int, int]] | None:
    """A regular file's bytes and stat; None (with a warning) for anything else."""
    got = _read_bytes(path)
    return None if isinstance(got, str) else got


def _read_bytes(path: Path) -> tuple[bytes, tuple[int, int, int]] | str:
    """Bytes and stat, or why not (warned once, naming the file)."""
    try:
        # O_NONBLOCK: a file swapped for a FIFO between discovery and open must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not statmod.S_ISREG(st.st_mode):
                return _skip(path, "not a regular file")
            data = f.read()
    except OSError as exc:
        return _skip(path, str(exc.strerror or exc))
    return data, (st.st_size, st.st_mtime_ns, st.st_ino)


def _skip(path: Path, reason: str) -> str:
    log.warning("skipping %s: %s", path, reason)
    return reason


def read_document(path: Path) -> Document | None:
    """Read a file with the reader its suffix or content calls for; None when it cannot be
    read (one warning says why)."""
    got = read_or_reason(path)
    return got if isinstance(got, Document) else None


def read_or_reason(path: Path) -> Document | str:
    """:func:`read_document`, saying why a file was skipped (the build remembers it)."""
    got = _read_bytes(path)
    if isinstance(got, str):
        return got
    data, st = got
    reader = choose(path, data[:_SNIFF])
    extracted = _extract(reader, path, data)
    if isinstance(extracted, str):
        return extracted
    for warning in extracted.warnings:
        log.warning("%s: %s", path, warning)
    source = str(path)
    # A file's identity is the hash of its bytes, so change detection never has to decode.
    return Document(
        doc_id=source,
        source=source,
        text=extracted.text,
        sha256=hashlib.sha256(data).hexdigest(),
        meta=extracted.meta,
        title=extracted.title,
        kind=extracted.kind,
        sections=extracted.sections,
        stat=st,
    )


def _extract(reader: Reader, path: Path, data: bytes) -> Extracted | str:
    try:
        return reader.read(data, path.name)
    except ReaderMissing as exc:
        if exc.kind not in _MISSING_REPORTED:
            _MISSING_REPORTED.add(exc.kind)
            log.warning("skipping %s files (first: %s): %s", exc.kind, path, exc)
        return f"no {exc.kind} reader installed"
    except Unreadable as exc:
        return _skip(path, str(exc))
    except MemoryError:
        return _skip(path, "too large to parse in memory")
    except Exception as exc:  # third-party parsers raise anything on corrupt input
        return _skip(path, f"cannot read it as {reader.kind} ({exc})")


def is_data_file(path: Path) -> bool:
    """JSONL, CSV and TSV files: one document per row (see :func:`read_records`)."""
    return path.suffix.lower() in DATA_SUFFIXES


def read_records(path: Path, text_field: str | None = None) -> Iterator[Document]:
    """One document per row of a JSONL/CSV/TSV file, ids ``<path>#<line>``; the other
    fields become metadata (filterable with ``where=``). A bad file: one warning, no rows."""
    got = read_bytes(path)
    if got is None:
        return
    data, st = got
    source = str(path)
    bad = 0
    try:
        for row in read_rows(data, path.suffix.lower(), text_field, path.name):
            if isinstance(row, Skipped):
                bad += 1
                if bad <= MAX_ROW_WARNINGS:
                    log.warning("%s:%d: %s", path, row.line, row.reason)
                continue
            yield Document(
                doc_id=f"{source}#{row.line}",
                source=source,
                text=row.text,
                sha256=content_hash(row.text + repr(sorted(row.meta.items()))),
                meta=dict(row.meta) or None,
                title=path.name,
                kind="record",
                sections=(Section(0, len(row.text), None, f"line {row.line}"),),
                stat=st,
            )
    except Unreadable as exc:
        log.warning("skipping %s: %s", path, exc)
    if bad > MAX_ROW_WARNINGS:
        log.warning("%s: %d more lines skipped", path, bad - MAX_ROW_WARNINGS)


def expand_items(files: Iterable[Path], text_field: str | None = None) -> list[Path | Document]:
    """Build items from discovered files: a path per file, except JSONL/CSV/TSV files,
    which become one document per row (read here, so the engine sees plain documents)."""
    items: list[Path | Document] = []
    for f in files:
        if is_data_file(f):
            items.extend(read_records(f, text_field))
        else:
            items.append(f)
    return items
