"""Ignore rules against git itself: ``git check-ignore`` on a tricky tree is the oracle."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pathspec
import pytest

from semsearch.errors import UsageError
from semsearch.ingest.discover import DEFAULT_EXCLUDES, discover, discover_files, parse_size

from .conftest import semsearch_messages

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ROOT_IGNORE = """\
# comment line
*.log
!keep.log
/gen/
docs/*.tmp
**/cache/
secret*
!secret-ok.txt
dir_only/
*.bak
outdir/
!outdir/re.txt
\\#hash.txt
"""
SUB_IGNORE = """\
!important.bak
local.txt
/anchored.txt
"""
FILES = [
    "a.txt",
    "x.log",
    "keep.log",
    "sub/y.log",
    "sub/keep.log",
    "gen/out.txt",
    "sub/gen/out.txt",
    "docs/a.tmp",
    "docs/deep/b.tmp",
    "x/cache/c.txt",
    "secret.txt",
    "secret-ok.txt",
    "dir_only/f.txt",
    "sub/dir_only",
    "a.bak",
    "sub/important.bak",
    "sub/local.txt",
    "sub/anchored.txt",
    "sub/deeper/anchored.txt",
    "sub/deeper/local.txt",
    "outdir/re.txt",
    "#hash.txt",
    "name with space.txt",
    "sub/note.draft",
]
DEFAULT_EXCLUDED = [
    "node_modules/pkg/index.js",
    "myenv/lib/site.py",
    "pkg/__pycache__/m.cpython-311.pyc",
    ".hidden/h.txt",
    ".dotfile",
]


def _git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    ).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in FILES + DEFAULT_EXCLUDED:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content of {rel}\n")
    (root / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / ".gitignore").write_text(ROOT_IGNORE)
    (root / "sub" / ".gitignore").write_text(SUB_IGNORE)
    (root / ".semsearchignore").write_text("*.draft\n")
    _git(root, "init", "-q")
    return root


def git_kept(root: Path, start: Path) -> set[str]:
    """Files under ``start`` git does not ignore, minus semsearch's own default excludes."""
    everything = sorted(
        p.relative_to(root).as_posix()
        for p in start.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    ignored = set(_git(root, "check-ignore", "--stdin", stdin="\n".join(everything)).split("\n"))
    defaults = pathspec.GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES)
    kept = {f for f in everything if f not in ignored and not defaults.match_file(f)}
    # what semsearch skips on top of git: hidden entries, ignore files, default excludes,
    # and .semsearchignore patterns
    return {
        f
        for f in kept
        if not any(part.startswith(".") for part in f.split("/"))
        and f.split("/")[0] not in ("node_modules", "myenv")
        and "__pycache__" not in f
        and not f.endswith(".draft")
    }


def rel(root: Path, files: list[Path]) -> set[str]:
    return {f.relative_to(root).as_posix() for f in files}


def test_walk_agrees_with_git_check_ignore(tree: Path) -> None:
    expected = git_kept(tree, tree)
    got = rel(tree, discover([tree]))
    assert got == expected
    # the tricky cases are really exercised, both ways
    for kept in (
        "keep.log",
        "sub/gen/out.txt",
        "docs/deep/b.tmp",
        "secret-ok.txt",
        "sub/dir_only",
        "sub/important.bak",
        "sub/deeper/anchored.txt",
    ):
        assert kept in got
    for ignored in (
        "x.log",
        "gen/out.txt",
        "docs/a.tmp",
        "x/cache/c.txt",
        "outdir/re.txt",
        "sub/local.txt",
        "sub/deeper/local.txt",
        "#hash.txt",
        "sub/note.draft",
        "node_modules/pkg/index.js",
        "myenv/lib/site.py",
    ):
        assert ignored not in got


def test_a_subfolder_of_a_repository_uses_the_ignore_files_above_it(tree: Path) -> None:
    got = rel(tree, discover([tree / "sub"]))
    assert got == git_kept(tree, tree / "sub")
    assert "sub/y.log" not in got  # *.log comes from the repository root's .gitignore


def test_excludes_and_repeated_globs(tree: Path) -> None:
    got = rel(tree, discover([tree], ["*.txt", "*.bak"], excludes=["sub/deeper/", "a.*"]))
    assert "sub/important.bak" in got and "secret-ok.txt" in got
    assert not any(f.startswith("sub/deeper/") for f in got)
    assert "a.txt" not in got and "keep.log" not in got
    assert got == {f for f in git_kept(tree, tree) if f.endswith((".txt", ".bak"))} - {
        "a.txt",
        "sub/deeper/anchored.txt",
    }


def test_size_limit_skips_with_a_warning_and_pdfs_get_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 3000)
    (tmp_path / "small.txt").write_bytes(b"x" * 10)
    (tmp_path / "manual.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 3000)
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        found = discover_files([tmp_path], max_file_size=1000)
    assert rel(tmp_path, found.files) == {"small.txt", "manual.pdf"}
    assert rel(tmp_path, found.skipped) == {"big.txt"}
    messages = semsearch_messages(caplog)
    assert len(messages) == 1 and "big.txt" in messages[0]
    assert len(discover([tmp_path], max_file_size=0)) == 3


def test_fifos_and_special_files_are_never_returned(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "real.txt").write_text("hello")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere")
    assert rel(tmp_path, discover([tmp_path])) == {"real.txt"}


SIZES = [("8MB", 8 << 20), ("512k", 512 << 10), ("1G", 1 << 30), ("1000", 1000), ("0", 0)]


@pytest.mark.parametrize(("text", "size"), SIZES)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_rejects_nonsense() -> None:
    with pytest.raises(UsageError):
        parse_size("lots")


def test_a_folder_named_explicitly_is_walked_even_if_git_ignores_it(tree: Path) -> None:
    (tree / "gen" / "deep").mkdir(parents=True)
    (tree / "gen" / "deep" / "x.txt").write_text("x")
    (tree / "gen" / "deep" / "y.log").write_text("y")
    (tree / "gen" / ".gitignore").write_text("*.tmp\n")
    (tree / "gen" / "z.tmp").write_text("z")
    got = rel(tree, discover([tree / "gen"]))
    # the rules above it are what ignore it, so they are set aside; its own still apply
    assert got == {"gen/out.txt", "gen/deep/x.txt", "gen/deep/y.log"}
