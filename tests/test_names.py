"""The names a write is given, resolved against the generation searched (api/names.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.api.names import check_new, globs, named_documents, new_text_ids, roots
from semsearch.errors import UsageError

from .conftest import FakeEmbedder


@pytest.fixture
def index(tmp_path: Path) -> SemanticIndex:
    ix = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "ix", backend="numpy")
    ix.add_texts(
        ["one", "two", "three", "four", "five"], ids=["text-3", "text-10", "text-x", "a[1]", "a-2"]
    )
    return ix


def test_nothing_indexed_yet() -> None:
    assert new_text_ids(None, 3) == ["text-0", "text-1", "text-2"]
    check_new(None, ["text-0"])
    with pytest.raises(UsageError, match="no document in the index matches 'a'"):
        named_documents(None, ["a"], glob=False)


def test_new_text_ids_follow_the_highest_number(index: SemanticIndex) -> None:
    view = index.live.require()
    assert new_text_ids(view, 2) == ["text-11", "text-12"]  # text-x is not numbered
    assert new_text_ids(view, 0) == []
    index.add_texts(["six", "seven"])
    assert {"text-11", "text-12"} <= set(index.live.require().store.document_ids())


def test_ids_already_present_are_refused(index: SemanticIndex) -> None:
    view = index.live.require()
    check_new(view, ["text-4", "b"])
    with pytest.raises(UsageError, match=r"'text-10' is already in the index \(use upsert\)"):
        check_new(view, ["b", "text-10", "text-3"])
    with pytest.raises(UsageError, match="already in the index"):
        index.add_texts(["again"], ids=["a-2"])


def test_a_removal_names_ids_exactly_or_by_glob(
    index: SemanticIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = index.live.require()
    assert named_documents(view, ["a[1]", "text-3"], glob=False) == {"a[1]", "text-3"}
    assert named_documents(view, ["a*"], glob=True) == {"a[1]", "a-2"}
    assert named_documents(view, ["text-1*", "text-10"], glob=True) == {"text-10"}
    with pytest.raises(UsageError, match="matches 'a\\*'"):
        named_documents(view, ["a*"], glob=False)  # exact: no id is a*
    with pytest.raises(UsageError, match="matches 'text-9'"):
        named_documents(view, ["text-3", "text-9"], glob=False)
    # A relative path names the file it resolves to.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.txt").write_text("a note on gulls")
    index.add_paths([tmp_path / "notes"])
    monkeypatch.chdir(tmp_path)
    named = named_documents(index.live.require(), [os.path.join("notes", "n.txt")], glob=False)
    assert len(named) == 1
    assert index.delete([os.path.join("notes", "n.txt")]) == 1
    assert index.info().documents == 5


def test_roots_are_absolute_and_globs_a_tuple(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert roots(["notes", Path("a/../b"), "~/docs"]) == [
        tmp_path / "notes",
        tmp_path / "b",
        tmp_path / "home" / "docs",
    ]
    assert globs(None) == () and globs("*.md") == ("*.md",)
    assert globs(["*.md", "*.txt"]) == ("*.md", "*.txt")
