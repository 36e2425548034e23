"""Find the files to index: files, directories and glob patterns."""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import UsageError

_GLOB_CHARS = set("*?[")


def discover(
    paths: Iterable[str | os.PathLike[str]],
    pattern: str | None = None,
    *,
    allow_empty: bool = False,
) -> list[Path]:
    """Expand files, directories (recursively, skipping hidden entries) and globs.

    ``pattern`` filters files found inside directories by name or relative path.
    Raises UsageError for a path that does not exist, or when nothing is found unless
    ``allow_empty`` (a refresh of a folder whose files were all deleted).
    """
    found: dict[Path, None] = {}
    given = [str(p) for p in paths]
    if not given and not allow_empty:
        raise UsageError("no paths given")
    for raw in given:
        path = Path(raw).expanduser()
        if path.is_file():
            found[_absolute(path)] = None
        elif path.is_dir():
            for f in _walk(path, pattern):
                found[_absolute(f)] = None
        elif _GLOB_CHARS & set(raw):
            matches = sorted(globlib.glob(os.path.expanduser(raw), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files and not allow_empty:
                raise UsageError(f"no files match {raw!r}")
            for f in files:
                found[_absolute(f)] = None
        elif path.exists() or path.is_symlink():
            raise UsageError(f"{raw} is not a regular file or directory")
        elif not allow_empty:
            raise UsageError(f"no such file or directory: {raw}")
    if not found and not allow_empty:
        where = ", ".join(given)
        suffix = f" matching {pattern!r}" if pattern else ""
        raise UsageError(f"no text files{suffix} found in {where}")
    return sorted(found)


def _absolute(path: Path) -> Path:
    """An absolute path without resolving the last symlink: a document reached through a
    link is known by the link, so removing the link removes the document."""
    return Path(os.path.abspath(path))


def is_index_dir(path: Path) -> bool:
    """A semsearch index directory (never indexed as documents, even when nested)."""
    return (path / "CURRENT").is_file() and (path / "LOCK").exists()


def _walk(root: Path, pattern: str | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not is_index_dir(here / d)
        )
        if is_index_dir(here):
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            if not path.is_file():  # FIFOs, sockets, devices, dangling links
                continue
            rel = path.relative_to(root).as_posix()
            if pattern and not (fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(rel, pattern)):
                continue
            yield path
