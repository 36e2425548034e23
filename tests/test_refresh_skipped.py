"""Skipped files (binary, corrupt, unreadable) are remembered with their stat, so a tree
holding one is not re-read, counted as added, or published again while it is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

from semsearch import index_paths
from semsearch.api.operations import refresh_index
from semsearch.store import IndexDir
from semsearch.watch import check

from .conftest import FakeEmbedder

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _tree(root: Path) -> None:
    root.mkdir()
    (root / "a.txt").write_text("apples and pears\n")
    (root / "b.md").write_text("# Bees\n\nbees make honey\n")
    (root / "pic.png").write_bytes(PNG)
    (root / "blob.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)


def test_unchanged_tree_with_skipped_files_publishes_nothing(
    tmp_path: Path, fake: FakeEmbedder, monkeypatch
) -> None:
    root, idx = tmp_path / "docs", tmp_path / "idx"
    _tree(root)
    first = index_paths([root], idx, embedder=fake)
    assert (first.added, first.skipped, first.documents) == (2, 2, 2)
    pointer = IndexDir(idx).pointer()
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: fake)
    again = refresh_index(idx)
    assert not again.changed
    assert (again.added, again.unchanged, again.skipped) == (0, 2, 2)
    assert IndexDir(idx).pointer() == pointer
    delta = check(IndexDir(idx), full=True)
    assert not delta.changed and delta.pending == 0
    # index with the same paths again: nothing added, nothing published
    third = index_paths([root], idx, embedder=fake)
    assert (third.changed, third.added, third.skipped) == (False, 0, 2)
    assert IndexDir(idx).pointer() == pointer


def test_skipped_file_remembered_with_stat_and_reason(tmp_path: Path, fake: FakeEmbedder) -> None:
    root, idx = tmp_path / "docs", tmp_path / "idx"
    _tree(root)
    index_paths([root], idx, embedder=fake)
    store = IndexDir(idx).open_store()  # kept with the generation (skipped.json)
    try:
        skipped = store.skipped_files()
    finally:
        store.close()
    png = skipped[str(root / "pic.png")]
    st = os.stat(root / "pic.png")
    assert (png.size, png.mtime_ns, png.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert "binary" in png.reason


def test_summary_adds_up_and_changed_skipped_file_is_tried_again(
    tmp_path: Path, fake: FakeEmbedder
) -> None:
    root, idx = tmp_path / "docs", tmp_path / "idx"
    _tree(root)
    index_paths([root], idx, embedder=fake)
    (root / "c.txt").write_text("cherries\n")
    stats = index_paths([root], idx, embedder=fake)
    assert (stats.added, stats.unchanged, stats.skipped, stats.documents) == (1, 2, 2, 3)
    # the PNG becomes text: read again and indexed
    (root / "pic.png").write_text("now plain text about plums\n")
    stats = index_paths([root], idx, embedder=fake)
    assert (stats.added, stats.skipped, stats.documents) == (1, 1, 4)
