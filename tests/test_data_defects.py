"""Defects found by attack (issue 20): each test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from semsearch import SemanticIndex, UsageError

from .conftest import FakeEmbedder

IDS = ["a[1]", "a1", "report*", "report-2024"]


def _four(tmp_path: Path, fake: FakeEmbedder) -> SemanticIndex:
    return SemanticIndex.from_texts(
        ["first", "second", "third", "fourth"], ids=IDS, embedder=fake, path=tmp_path / "i"
    )


def _ids(index: SemanticIndex) -> set[str]:
    return {d for d in index._require_view().store.document_ids()}


# --- D7: ids are exact strings --------------------------------------------------------------


def test_delete_matches_ids_exactly(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    assert index.delete(["a[1]"]) == 1
    assert _ids(index) == {"a1", "report*", "report-2024"}
    assert index.delete(["report*"]) == 1
    assert _ids(index) == {"a1", "report-2024"}
    with pytest.raises(UsageError, match="no document"):
        index.delete(["*"])
    assert _ids(index) == {"a1", "report-2024"}


def test_delete_globs_only_when_asked(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    assert index.delete(["report*"], glob=True) == 2
    assert _ids(index) == {"a[1]", "a1"}


def test_http_delete_of_a_star_removes_nothing(tmp_path: Path, fake: FakeEmbedder) -> None:
    pytest.importorskip("starlette")
    from semsearch.serve.service import SearchService

    _four(tmp_path, fake)
    service = SearchService(tmp_path / "i", workers=1, allow_writes=True, embedder=fake)
    with pytest.raises(UsageError):
        service.delete(["*"])
    assert _ids(SemanticIndex.load(tmp_path / "i", embedder=fake)) == set(IDS)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, fake: FakeEmbedder) -> Any:
    """The CLI in-process, with indexes made by the fake embedder loading it back."""
    from semsearch.cli import main

    monkeypatch.setattr("semsearch.api.index.load_embedder", lambda *a, **k: fake)
    return main


def test_cli_remove_is_exact_unless_glob(tmp_path: Path, fake: FakeEmbedder, cli: Any) -> None:
    _four(tmp_path, fake)
    idx = str(tmp_path / "i")
    assert cli(["remove", "report*", "-i", idx]) == 0
    assert _ids(SemanticIndex.load(idx, embedder=fake)) == {"a[1]", "a1", "report-2024"}
    assert cli(["remove", "--glob", "a*", "-i", idx]) == 0
    assert _ids(SemanticIndex.load(idx, embedder=fake)) == {"report-2024"}
