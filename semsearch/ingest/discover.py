"""Find the files to index: files, directories and glob patterns, minus what is ignored.

Inside a directory, a file is skipped when git would ignore it (``.gitignore`` files at
every level, with negation and anchoring, matched by pathspec's git-exact rules), when a
``.semsearchignore`` (same syntax) or an ``--exclude`` pattern says so, when it is hidden,
or when it lives in a VCS folder, ``node_modules``, ``__pycache__``, a virtualenv (any
folder holding ``pyvenv.cfg``) or a semsearch index. Files over the size limit are skipped
with a warning. Only regular files are returned (a FIFO would block the reader).
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import logging
import os
import stat as statmod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .readers import size_factor

log = logging.getLogger("semsearch")

_GLOB_CHARS = set("*?[")
#: Text, Markdown, HTML and code files larger than this are skipped (PDF, DOCX, EPUB: 10x).
DEFAULT_MAX_FILE_SIZE = 8 * 1024 * 1024
#: Folders never indexed, wherever they are.
DEFAULT_EXCLUDED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", "node_modules", "__pycache__"}
)
IGNORE_FILES = (".gitignore", ".semsearchignore")


@dataclass(frozen=True)
class Discovery:
    """The files to read, and the ones skipped on the way (too large) for the summary."""

    files: list[Path]
    skipped: list[Path] = field(default_factory=list)


def discover(
    paths: Iterable[str | os.PathLike[str]],
    pattern: str | Sequence[str] | None = None,
    *,
    allow_empty: bool = False,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
) -> list[Path]:
    """:func:`discover_files` without the skipped list."""
    return discover_files(
        paths, pattern, allow_empty=allow_empty, excludes=excludes, max_file_size=max_file_size
    ).files


def discover_files(
    paths: Iterable[str | os.PathLike[str]],
    pattern: str | Sequence[str] | None = None,
    *,
    allow_empty: bool = False,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
) -> Discovery:
    """Expand files, directories (recursively, with the ignore rules above) and globs.

    ``pattern`` (one glob or several; a file matching any is kept) filters files found
    inside directories by name or relative path. ``excludes`` are gitignore-style patterns
    relative to each directory given. ``max_file_size`` of None or 0 means no limit.
    Raises UsageError for a path that does not exist, or when nothing is found unless
    ``allow_empty`` (a refresh of a folder whose files were all deleted).
    """
    globs = [pattern] if isinstance(pattern, str) else list(pattern or [])
    found: dict[Path, None] = {}
    skipped: list[Path] = []
    given = [str(p) for p in paths]
    if not given and not allow_empty:
        raise UsageError("no paths given")

    def keep(f: Path) -> None:
        if _within_limit(f, max_file_size):
            found[_absolute(f)] = None
        else:
            skipped.append(_absolute(f))

    for raw in given:
        path = Path(raw).expanduser()
        if path.is_file():
            keep(path)
        elif path.is_dir():
            for f in _walk(path, globs, excludes):
                keep(f)
        elif _GLOB_CHARS & set(raw):
            matches = sorted(globlib.glob(os.path.expanduser(raw), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files and not allow_empty:
                raise UsageError(f"no files match {raw!r}")
            for f in files:
                keep(f)
        elif path.exists() or path.is_symlink():
            raise UsageError(f"{raw} is not a regular file or directory")
        elif not allow_empty:
            raise UsageError(f"no such file or directory: {raw}")
    if not found and not allow_empty:
        where = ", ".join(given)
        suffix = f" matching {' or '.join(map(repr, globs))}" if globs else ""
        raise UsageError(f"no files{suffix} to index in {where}")
    return Discovery(sorted(found), skipped)


def parse_size(text: str) -> int:
    """``"8MB"``, ``"512k"``, ``"1G"``, ``"1000"`` -> bytes; 0 means no limit."""
    s = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(s[-1:], 1)
    digits = s[:-1] if s[-1:] in "kmg" and s else s
    try:
        value = float(digits)
    except ValueError:
        raise UsageError(f"not a size: {text!r} (try 8MB, 512k, 1G or 0 for no limit)") from None
    if value < 0:
        raise UsageError(f"a size cannot be negative: {text!r}")
    return int(value * scale)


def _within_limit(path: Path, limit: int | None) -> bool:
    if not limit:
        return True
    try:
        size = path.stat().st_size
    except OSError:
        return True  # vanished: the reader says so, once
    allowed = limit * size_factor(path)
    if size <= allowed:
        return True
    log.warning(
        "skipping %s: %.1f MB is over the %.1f MB limit for this type (--max-file-size)",
        path, size / 1e6, allowed / 1e6,
    )  # fmt: skip
    return False


def _absolute(path: Path) -> Path:
    """An absolute path without resolving the last symlink: a document reached through a
    link is known by the link, so removing the link removes the document."""
    return Path(os.path.abspath(path))


def is_index_dir(path: Path) -> bool:
    """A semsearch index directory (never indexed as documents, even when nested)."""
    from ..store.manifest import LOCK, POINTER

    return (path / POINTER).is_file() and (path / LOCK).exists()


def is_excluded_dir(path: Path) -> bool:
    """VCS folders, dependency and cache folders, virtualenvs and semsearch indexes."""
    return (
        path.name in DEFAULT_EXCLUDED_DIRS or (path / "pyvenv.cfg").is_file() or is_index_dir(path)
    )


class _Rules:
    """Ignore files in effect for one directory: (directory, spec) pairs, outermost first.
    The deepest spec with a matching pattern decides, as in git."""

    def __init__(self, specs: list[tuple[Path, Any]]) -> None:
        self.specs = specs

    def below(self, directory: Path) -> _Rules:
        specs = list(self.specs)
        for name in IGNORE_FILES:
            spec = _load_spec(directory / name)
            if spec is not None:
                specs.append((directory, spec))
        return _Rules(specs)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in reversed(self.specs):
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            verdict = spec.check_file(rel).include
            if verdict is not None:
                return bool(verdict)
        return False


def _load_spec(path: Path) -> Any:
    if not path.is_file():
        return None
    import pathspec  # small, pure Python; loaded only when a walk meets an ignore file

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc.strerror or exc)
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ancestor_rules(root: Path) -> _Rules:
    """Ignore files above ``root`` up to its git work tree's top (git applies them too)."""
    root = Path(os.path.abspath(root))
    chain = [root]
    for parent in root.parents:
        chain.append(parent)
        if (parent / ".git").exists():
            break
    else:
        chain = [root]  # not inside a git work tree: only rules from root down apply
    rules = _Rules([])
    for directory in reversed(chain[1:]):
        rules = rules.below(directory)
        if directory != chain[-1] and rules.ignored(directory, True):
            return _Rules([])
    if rules.ignored(root, True):
        return _Rules([])  # a folder named explicitly is indexed even if git ignores it
    return rules


def _walk(root: Path, globs: Sequence[str], excludes: Sequence[str]) -> Iterator[Path]:
    exclude_spec = None
    if excludes:
        import pathspec

        exclude_spec = pathspec.GitIgnoreSpec.from_lines(list(excludes))
    root = Path(os.path.abspath(root))  # a folder given explicitly is walked, whatever it is
    rules_at: dict[Path, _Rules] = {root: _ancestor_rules(root).below(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rules = rules_at.pop(here)
        kept = []
        for d in sorted(dirnames):
            sub = here / d
            rel = sub.relative_to(root).as_posix() + "/"
            if d.startswith(".") or is_excluded_dir(sub) or rules.ignored(sub, True):
                continue
            if exclude_spec is not None and exclude_spec.match_file(rel):
                continue
            kept.append(d)
            rules_at[sub] = rules.below(sub)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if globs and not any(
                fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g) for g in globs
            ):
                continue
            if rules.ignored(path, False):
                continue
            if exclude_spec is not None and exclude_spec.match_file(rel):
                continue
            if _regular(path):
                yield path


def _regular(path: Path) -> bool:
    """Regular files only (symlinks followed): FIFOs, sockets, devices and dangling links
    are passed over silently, as git does."""
    try:
        return statmod.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
