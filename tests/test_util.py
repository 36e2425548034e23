"""``util.scratch_dir``: work folders in our own cache, removed after use, and the ones a
killed process left removed once stale."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from semsearch.util import STALE_SCRATCH_SECONDS, scratch_dir


def _aged(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_scratch_is_inside_the_parent_and_gone_after(tmp_path: Path) -> None:
    parent = tmp_path / "cache" / "model"  # made when missing
    with scratch_dir(parent, "export-") as tmp:
        assert tmp.parent == parent and tmp.name.startswith(".export-") and tmp.is_dir()
        (tmp / "part").write_bytes(b"x")
    assert list(parent.iterdir()) == []


def test_scratch_is_removed_when_the_work_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), scratch_dir(tmp_path, "static-") as tmp:
        (tmp / "part").write_bytes(b"x")
        raise RuntimeError("killed half way")
    assert list(tmp_path.iterdir()) == []


def test_stale_leftovers_of_the_same_prefix_go_and_the_rest_stay(tmp_path: Path) -> None:
    stale = tmp_path / ".export-killed.tmp"
    young = tmp_path / ".export-running.tmp"
    other = tmp_path / ".static-killed.tmp"  # another prefix: another maker's business
    published = tmp_path / "int8"
    for folder in (stale, young, other, published):
        folder.mkdir()
        (folder / "f").write_bytes(b"x")
    for folder in (stale, other, published):
        _aged(folder, STALE_SCRATCH_SECONDS + 60)
    with scratch_dir(tmp_path, "export-"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [young.name, other.name, published.name]
    )
