"""Discovery on real trees: generated and minified files left out by default (each one
re-included by a ``!pattern``), bad ignore lines skipped as git skips them, glob paths under
the same rules as a walk, symlinks kept inside the folders indexed, odd file names."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from semsearch.ingest.discover import discover, discover_files

JUNK = [
    "app.min.js",
    "style.min.css",
    "app.js.map",
    "package-lock.json",
    "yarn.lock",
    "poetry.lock",
    "Cargo.lock",
    "uv.lock",
    "searchindex.js",
    "genindex.html",
    "genindex-A.html",
    "_sources/page.rst.txt",
    "_static/basic.css",
    "node_modules/pkg/readme.md",
    "dist/out.txt",
    "build/lib/mod.py",
    "pkg/__pycache__/m.txt",
]
PAGES = ["index.html", "library/os.html", "app.js", "style.css", "notes.md"]


def _make(root: Path, names: list[str]) -> None:
    for rel in names:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content of {rel}\n")


def _rel(root: Path, files: list[Path]) -> set[str]:
    return {f.relative_to(root).as_posix() for f in files}


def test_generated_and_minified_files_are_left_out_by_default(tmp_path: Path) -> None:
    _make(tmp_path, JUNK + PAGES)
    found = discover_files([tmp_path])
    assert _rel(tmp_path, found.files) == set(PAGES)
    reasons = {p.path.relative_to(tmp_path).as_posix(): p.reason for p in found.passed}
    assert reasons["app.min.js"] == "default exclude (*.min.js)"
    assert reasons["_sources"] == "default exclude (_sources/)"


def test_a_default_exclude_is_reincluded_by_a_negation(tmp_path: Path) -> None:
    _make(tmp_path, JUNK + PAGES)
    (tmp_path / ".semsearchignore").write_text("!*.map\n!_sources/\n")
    got = _rel(tmp_path, discover([tmp_path], excludes=["!yarn.lock"]))
    assert got == set(PAGES) | {"app.js.map", "_sources/page.rst.txt", "yarn.lock"}


def test_bad_ignore_lines_are_skipped_with_one_warning_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _make(tmp_path, ["a.txt", "b.log", "c.txt"])
    (tmp_path / ".gitignore").write_text("!\nfoo\\\n\\\n[z-a]\n*.log\n")
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        got = _rel(tmp_path, discover([tmp_path], excludes=["\\", "c.txt"]))
    assert got == {"a.txt"}
    bad = [r for r in caplog.records if "ignoring line" in r.getMessage()]
    assert len(bad) == 5, [r.getMessage() for r in bad]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_reinclusion_inside_a_starstar_folder_matches_git(tmp_path: Path) -> None:
    _make(tmp_path, ["a/b/nested.md", "a/b/other.md", "a/b/c/deep.md", "a/top.md"])
    (tmp_path / ".gitignore").write_text("a/b/**\n!a/b/nested.md\n!a/b/c/deep.md\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    everything = ["a/b/nested.md", "a/b/other.md", "a/b/c/deep.md", "a/top.md"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--stdin"], cwd=tmp_path, input="\n".join(everything),
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    git_kept = {f for f in everything if f not in ignored}
    assert "a/b/nested.md" in git_kept
    assert _rel(tmp_path, discover([tmp_path])) == git_kept


def test_a_glob_path_applies_the_walk_rules(tmp_path: Path, fake) -> None:
    from semsearch import index_paths

    notes = tmp_path / "notes"
    _make(notes, ["a.md", "sub/b.md", "app.min.js", ".hidden/h.md"])
    index_paths([notes], notes / "idx", embedder=fake)
    got = _rel(notes, discover([f"{notes}/**"]))
    assert got == {"a.md", "sub/b.md"}


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_warning(
    tmp_path: Path, fake, caplog: pytest.LogCaptureFixture
) -> None:
    from semsearch import index_paths

    root = tmp_path / "d"
    root.mkdir()
    (root / "ok.txt").write_text("plain text here\n")
    bad = os.path.join(os.fsencode(root), b"caf\xe9.txt")
    with open(bad, "wb") as f:
        f.write(b"coffee\n")
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        stats = index_paths([root], tmp_path / "idx", embedder=fake)
    assert stats.documents == 1
    assert any("not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_symlinked_files_are_followed_only_inside_the_roots(tmp_path: Path) -> None:
    secret = tmp_path / "secret" / "id_rsa"
    _make(tmp_path, ["secret/id_rsa", "notes/a.txt", "notes/sub/b.txt"])
    notes = tmp_path / "notes"
    (notes / "key.txt").symlink_to(secret)
    (notes / "alias.txt").symlink_to(notes / "sub" / "b.txt")
    assert _rel(notes, discover([notes])) == {"a.txt", "sub/b.txt", "alias.txt"}
    assert _rel(notes, discover([f"{notes}/*.txt"])) == {"a.txt", "alias.txt"}
    followed = _rel(notes, discover([notes], follow_symlinks=True))
    assert followed == {"a.txt", "sub/b.txt", "alias.txt", "key.txt"}
    # a glob's ** goes through a linked folder: what it reaches outside stays out
    (notes / "ext").symlink_to(tmp_path / "secret", target_is_directory=True)
    assert _rel(notes, discover([f"{notes}/**"])) == {"a.txt", "sub/b.txt", "alias.txt"}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "semsearch", *args], cwd=cwd, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_dry_run_lists_types_and_reasons_and_writes_nothing(tmp_path: Path) -> None:
    import json

    _make(tmp_path / "d", JUNK + PAGES)
    idx = tmp_path / "idx"
    out = _cli("index", "d", "-i", str(idx), "--dry-run", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["files"] == len(PAGES)
    assert {t["kind"]: t["files"] for t in plan["types"]} == {".html": 2, ".js": 1, ".css": 1,
                                                               ".md": 1}  # fmt: skip
    reasons = {s["reason"]: s["count"] for s in plan["skipped"]}
    assert reasons["default exclude (genindex*.html)"] == 2
    assert not idx.exists()
    text = _cli("index", "d", "-i", str(idx), "--dry-run", cwd=tmp_path)
    assert text.returncode == 0 and "Would index 5 files" in text.stdout
    assert "default exclude (_sources/): d/_sources" in text.stdout
    assert not idx.exists()


def test_follow_symlinks_is_remembered_for_refresh(tmp_path: Path, fake, monkeypatch) -> None:
    from semsearch import index_paths
    from semsearch.api.operations import refresh_index

    _make(tmp_path, ["outside/target.txt", "notes/a.txt"])
    (tmp_path / "notes" / "link.txt").symlink_to(tmp_path / "outside" / "target.txt")
    idx = tmp_path / "idx"
    assert index_paths([tmp_path / "notes"], idx, embedder=fake).documents == 1
    stats = index_paths([tmp_path / "notes"], idx, embedder=fake, follow_symlinks=True)
    assert stats.documents == 2
    (tmp_path / "notes" / "b.txt").write_text("another note\n")
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: fake)
    assert refresh_index(idx).documents == 3  # the link is still followed
