"""Find and read the documents to index: files, directories and glob patterns."""

from __future__ import annotations

import fnmatch
import glob as globlib
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

log = logging.getLogger("semsearch")

#: Bytes read to decide whether a file is binary (a NUL byte means binary, as git does).
_SNIFF = 8192
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True, slots=True)
class Document:
    """A text to index. ``source`` is where it came from (a path, or a caller's label)."""

    doc_id: str
    source: str
    text: str
    sha256: str
    meta: Mapping[str, Any] | None = None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def discover(paths: Iterable[str | os.PathLike[str]], pattern: str | None = None) -> list[Path]:
    """Expand files, directories (recursively, skipping hidden entries) and globs.

    ``pattern`` filters files found inside directories by name or relative path.
    Raises UsageError for a path that does not exist or when nothing is found.
    """
    found: dict[Path, None] = {}
    given = [str(p) for p in paths]
    if not given:
        raise UsageError("no paths given")
    for raw in given:
        path = Path(raw).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for f in _walk(path, pattern):
                found[f.resolve()] = None
        elif _GLOB_CHARS & set(raw):
            matches = sorted(globlib.glob(os.path.expanduser(raw), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise UsageError(f"no files match {raw!r}")
            for f in files:
                found[f.resolve()] = None
        else:
            raise UsageError(f"no such file or directory: {raw}")
    if not found:
        where = ", ".join(given)
        suffix = f" matching {pattern!r}" if pattern else ""
        raise UsageError(f"no text files{suffix} found in {where}")
    return sorted(found)


def _walk(root: Path, pattern: str | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if pattern and not (fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(rel, pattern)):
                continue
            yield path


def read_document(path: Path) -> Document | None:
    """Read a text file; binary files are skipped (None) with a warning naming them.

    Bytes that are not UTF-8 are replaced (U+FFFD) rather than failing the build.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("skipping %s: %s", path, exc.strerror or exc)
        return None
    if b"\x00" in data[:_SNIFF]:
        log.warning("skipping binary file %s", path)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s is not valid UTF-8; undecodable bytes replaced", path)
        text = data.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    source = str(path)
    return Document(doc_id=source, source=source, text=text, sha256=content_hash(text))


def bundled_seeds() -> Path:
    """The sample articles shipped with the package (or the checkout's ``seeds/``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_seeds", here.parent / "seeds"):
        if candidate.is_dir():
            return candidate
    raise UsageError("the bundled seed documents are missing from this installation")
