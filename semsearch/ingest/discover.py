"""Find the files to index: files, directories and glob patterns, minus what is ignored.

Inside a directory, a file is skipped when git would ignore it (``.gitignore`` files at
every level, with negation and anchoring, matched by pathspec's git-exact rules), when a
``.semsearchignore`` (same syntax) or an exclude pattern says so, when it is hidden, when
it is generated or minified (:data:`DEFAULT_EXCLUDES`, each re-included by a ``!pattern``
line in ``.semsearchignore`` or an exclude pattern ``!pattern``), or when it lives in a
virtualenv (any folder holding ``pyvenv.cfg``) or a semsearch index. Glob matches pass the
same rules. A symlinked file is followed only when it resolves inside the folders being
indexed, unless asked. Files over the size limit are skipped with a warning. Only regular
files are returned (a FIFO would block the reader). A bad ignore line is skipped with one
warning, as git does.
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
from typing import Any, NamedTuple

from ..errors import UsageError
from .readers import size_factor

log = logging.getLogger("semsearch")

_GLOB_CHARS = set("*?[")
#: Text, Markdown, HTML and code files larger than this are skipped (PDF, DOCX, EPUB: 10x).
DEFAULT_MAX_FILE_SIZE = 8 * 1024 * 1024
#: Not indexed by default, wherever they are (gitignore syntax, lowest priority: a
#: ``!pattern`` in an ignore file or among the exclude patterns re-includes one).
DEFAULT_EXCLUDES: tuple[str, ...] = (
    # version control, dependency and cache folders
    "CVS/", "_darcs/", "node_modules/", "__pycache__/", "bower_components/",
    # build output
    "dist/", "build/",
    # minified code, source maps, lock files
    "*.min.js", "*.min.css", "*.map",
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock",
    "Pipfile.lock", "uv.lock", "pdm.lock", "Cargo.lock", "Gemfile.lock", "composer.lock",
    "go.sum",
    # Sphinx output: page sources, static assets, search index, general index pages
    "_sources/", "_static/", "searchindex.js", "genindex*.html",
)  # fmt: skip
IGNORE_FILES = (".gitignore", ".semsearchignore")


class Passed(NamedTuple):
    """A file or folder discovery passed over, and why (for ``index --dry-run``)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Discovery:
    """The files to read, the ones skipped for size (counted in the summary), and
    everything passed over with the reason."""

    files: list[Path]
    skipped: list[Path] = field(default_factory=list)
    passed: list[Passed] = field(default_factory=list)


def discover(
    paths: Iterable[str | os.PathLike[str]],
    pattern: str | Sequence[str] | None = None,
    *,
    allow_empty: bool = False,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    follow_symlinks: bool = False,
) -> list[Path]:
    """:func:`discover_files` without the skipped list."""
    return discover_files(
        paths, pattern, allow_empty=allow_empty, excludes=excludes,
        max_file_size=max_file_size, follow_symlinks=follow_symlinks,
    ).files  # fmt: skip


def discover_files(
    paths: Iterable[str | os.PathLike[str]],
    pattern: str | Sequence[str] | None = None,
    *,
    allow_empty: bool = False,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    follow_symlinks: bool = False,
) -> Discovery:
    """Expand files, directories (recursively, with the ignore rules above) and globs.

    ``pattern`` (one glob or several; a file matching any is kept) filters files found
    inside directories by name or relative path. ``excludes`` are gitignore-style patterns
    relative to each directory given. ``max_file_size`` of None or 0 means no limit.
    ``follow_symlinks`` follows file links wherever they point (by default only into the
    folders given). Raises UsageError for a path that does not exist, or when nothing is
    found unless ``allow_empty`` (a refresh of a folder whose files were all deleted).
    """
    globs = [pattern] if isinstance(pattern, str) else list(pattern or [])
    found: dict[Path, None] = {}
    skipped: list[Path] = []
    passed: list[Passed] = []
    given = [str(p) for p in paths]
    if not given and not allow_empty:
        raise UsageError("no paths given")
    walker = _Walker(given, excludes, follow_symlinks, passed)

    def keep(f: Path) -> None:
        if _within_limit(f, max_file_size):
            found[_absolute(f)] = None
        else:
            skipped.append(_absolute(f))
            passed.append(Passed(_absolute(f), "over the size limit"))

    for raw in given:
        path = Path(raw).expanduser()
        if path.is_file():
            if walker.valid_name(path):
                keep(path)
        elif path.is_dir():
            for f in walker.walk(path, globs):
                keep(f)
        elif _GLOB_CHARS & set(raw):
            matches = sorted(globlib.glob(os.path.expanduser(raw), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files and not allow_empty:
                raise UsageError(f"no files match {raw!r}")
            base = Path(_glob_base(os.path.expanduser(raw)))
            for f in files:
                if walker.admits(base, f):
                    keep(f)
        elif path.exists() or path.is_symlink():
            raise UsageError(f"{raw} is not a regular file or directory")
        elif not allow_empty:
            raise UsageError(f"no such file or directory: {raw}")
    if not found and not allow_empty:
        where = ", ".join(given)
        suffix = f" matching {' or '.join(map(repr, globs))}" if globs else ""
        raise UsageError(f"no files{suffix} to index in {where}")
    return Discovery(sorted(found), skipped, passed)


def _glob_base(raw: str) -> str:
    """A glob's longest leading folder without glob characters (its rules start there)."""
    fixed: list[str] = []
    for part in Path(raw).parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


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
    """Virtualenvs and semsearch indexes: never indexed, whatever the rules say."""
    return (path / "pyvenv.cfg").is_file() or is_index_dir(path)


class _Spec(NamedTuple):
    """One ignore file's rules (or the defaults, or the exclude patterns), relative to
    ``base``; ``label`` names it in a reason."""

    base: Path
    spec: Any
    label: str


class _Rules:
    """Ignore files in effect for one directory, outermost (lowest priority) first.
    The deepest spec with a matching pattern decides, as in git."""

    def __init__(self, specs: list[_Spec]) -> None:
        self.specs = specs

    def below(self, directory: Path) -> _Rules:
        specs = list(self.specs)
        for name in IGNORE_FILES:
            spec = _load_spec(directory / name)
            if spec is not None:
                specs.append(_Spec(directory, spec, str(directory / name)))
        return _Rules(specs)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        return self.why(path, is_dir) is not None

    def why(self, path: Path, is_dir: bool) -> str | None:
        """The reason ``path`` is ignored, or None when it is not."""
        for base, spec, label in reversed(self.specs):
            rel = path.relative_to(base).as_posix()
            result = spec.check_file(rel + ("/" if is_dir else ""))
            if result.include is None:
                continue
            line = spec.patterns[result.index].pattern
            if is_dir and result.include and _inside_only(line, rel):
                return None  # "a/b/**" ignores what a/b holds, not a/b: git looks inside
            return f"{label} ({line})" if result.include else None
        return None


def _inside_only(line: str, rel: str) -> bool:
    """True when ``line`` ends in ``/**`` and matches ``rel`` only as its own folder."""
    if not line.endswith("/**"):
        return False
    import pathspec

    return not pathspec.GitIgnoreSpec.from_lines([line[:-1]]).match_file(rel)


def compile_rules(lines: Sequence[str], where: str) -> Any:
    """A git-exact spec of ``lines``; a line git accepts but pathspec cannot compile
    (``!``, ``foo\\``, ``[z-a]``) is skipped with one warning, as git skips it."""
    import pathspec  # small, pure Python; loaded only when rules are met

    good = []
    for n, line in enumerate(lines, 1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except Exception as exc:  # GitIgnorePatternError, re.error: a line git ignores
            log.warning("ignoring line %d of %s (%r): %s", n, where, line, exc)
            continue
        good.append(line)
    return pathspec.GitIgnoreSpec.from_lines(good)


def _load_spec(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc.strerror or exc)
        return None
    return compile_rules(lines, str(path))


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


class _Walker:
    """The rules of one discovery, applied alike to a folder walk and to glob matches."""

    def __init__(
        self, given: Sequence[str], excludes: Sequence[str], follow: bool, passed: list[Passed]
    ) -> None:
        self.excludes = list(excludes)
        self.exclude_spec = (
            compile_rules(self.excludes, "the exclude patterns") if excludes else None
        )
        # defaults first, so the user's own "!pattern" re-includes one of them
        negated = [e for e in self.excludes if e.startswith("!")]
        self.defaults = compile_rules([*DEFAULT_EXCLUDES, *negated], "the default excludes")
        self.follow = follow
        self.passed = passed
        self.roots = [
            os.path.realpath(_glob_base(os.path.expanduser(g)) if _GLOB_CHARS & set(g) else g)
            for g in given
        ]
        self._rules: dict[Path, _Rules] = {}

    def _root_rules(self, root: Path) -> _Rules:
        ancestors = _ancestor_rules(root)
        return _Rules([_Spec(root, self.defaults, "default exclude"), *ancestors.specs]).below(root)

    def _pass(self, path: Path, reason: str) -> None:
        self.passed.append(Passed(path, reason))

    def _dir_reason(self, root: Path, rules: _Rules, sub: Path) -> str | None:
        if sub.name.startswith("."):
            return "hidden"
        if is_excluded_dir(sub):
            return "a virtualenv or semsearch index"
        why = rules.why(sub, True)
        spec = self.exclude_spec
        if why is None and spec and spec.match_file(sub.relative_to(root).as_posix() + "/"):
            why = "excluded"
        return why

    def _file_reason(
        self, root: Path, rules: _Rules, path: Path, resolve: bool = False
    ) -> str | None:
        if path.name.startswith("."):
            return "hidden"
        why = rules.why(path, False)
        spec = self.exclude_spec
        if why is None and spec and spec.match_file(path.relative_to(root).as_posix()):
            why = "excluded"
        if why is None and not self.valid_name(path):
            why = "name is not valid UTF-8"
        if why is None and not self.follow and not self._link_inside(path, resolve):
            log.warning(
                "skipping %s: a link to a file outside the folders indexed "
                "(followed only when asked)", path,
            )  # fmt: skip
            why = "symlink out of the folders indexed"
        return why

    def valid_name(self, path: Path) -> bool:
        """A name that is not valid UTF-8 cannot be stored: warned once and skipped."""
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            log.warning("skipping %r: its name is not valid UTF-8", str(path))
            return False
        return True

    def _link_inside(self, path: Path, resolve: bool) -> bool:
        """Inside the roots once links are resolved. A walk never enters a linked folder,
        so only a linked file needs resolving; a glob match (``resolve``) may have come
        through a linked folder."""
        if not resolve and not os.path.islink(path):
            return True
        target = os.path.realpath(path)
        return any(target == r or target.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)

    def walk(self, root: Path, globs: Sequence[str]) -> Iterator[Path]:
        root = Path(os.path.abspath(root))  # a folder given explicitly is walked, whatever it is
        rules_at: dict[Path, _Rules] = {root: self._root_rules(root)}
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            rules = rules_at.pop(here)
            kept = []
            for d in sorted(dirnames):
                sub = here / d
                why = self._dir_reason(root, rules, sub)
                if why is not None:
                    self._pass(sub, why)
                    continue
                kept.append(d)
                rules_at[sub] = rules.below(sub)
            dirnames[:] = kept
            for name in sorted(filenames):
                path = here / name
                rel = path.relative_to(root).as_posix()
                if globs and not any(
                    fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g) for g in globs
                ):
                    continue
                why = self._file_reason(root, rules, path)
                if why is not None:
                    self._pass(path, why)
                elif _regular(path):
                    yield path

    def admits(self, base: Path, path: Path) -> bool:
        """A glob match passes the rules a walk of ``base`` would apply to it."""
        base, path = Path(os.path.abspath(base)), Path(os.path.abspath(path))
        try:
            parts = path.relative_to(base).parts
        except ValueError:
            return True  # ".." in a glob: outside its own base, judged as a named file
        rules = self._rules.get(base)
        if rules is None:
            rules = self._rules[base] = self._root_rules(base)
        here = base
        for part in parts[:-1]:
            sub = here / part
            why = self._dir_reason(base, rules, sub)
            if why is not None:
                self._pass(path, why)
                return False
            if sub not in self._rules:
                self._rules[sub] = rules.below(sub)
            rules, here = self._rules[sub], sub
        why = self._file_reason(base, rules, path, resolve=True)
        if why is not None:
            self._pass(path, why)
        return why is None


def _regular(path: Path) -> bool:
    """Regular files only (symlinks followed): FIFOs, sockets, devices and dangling links
    are passed over silently, as git does."""
    try:
        return statmod.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
