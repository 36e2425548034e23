"""One write path (issue 21): every writer opens the index through
``semsearch.indexing.writer.open_writer``, and the index's own backend and index type
survive every kind of write."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import semsearch.api.operations as operations
from semsearch import SemanticIndex, index_paths
from semsearch.indexing import LocalEngine
from semsearch.indexing import writer as writer_module
from semsearch.store import IndexDir
from semsearch.watch import Watcher

from .conftest import FakeEmbedder


def _kept(idx: Path) -> tuple[str, str]:
    m = IndexDir(idx).manifest()[1]
    return m.backend, str(m.index_params.get("requested", "auto"))


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every call of the one maker, with its keyword arguments; the model loads as the fake."""
    calls: list[dict[str, Any]] = []
    real = writer_module.open_writer
    emb = FakeEmbedder()

    def spy(*a: Any, **k: Any) -> writer_module.Writer:
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(writer_module, "open_writer", spy)
    monkeypatch.setattr(writer_module, "load_embedder", lambda *a, **k: emb)
    return calls


@pytest.mark.parametrize(("backend", "index_type"), [("numpy", "auto"), ("faiss", "flat")])
def test_every_writer_goes_through_open_writer_and_keeps_backend(
    tmp_path: Path, opened: list[dict[str, Any]], backend: str, index_type: str
) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    for n in range(4):
        (docs / f"n{n}.txt").write_text(f"note {n} about owls and bats number {n}")
    want = (backend, index_type)
    it = None if index_type == "auto" else index_type

    def step(name: str, write: Callable[[], object]) -> None:
        before = len(opened)
        write()
        assert len(opened) > before, f"{name} did not open the index through open_writer"
        assert _kept(idx) == want, f"{name} changed the backend or index type"

    step("index", lambda: index_paths([docs], idx, backend=backend, index_type=it))
    (docs / "n4.txt").write_text("a new note about deserts")
    step("index again", lambda: index_paths([docs], idx))
    (docs / "n0.txt").write_text("rewritten: glaciers")
    step("update", lambda: operations.refresh_index(idx))
    step("rebuild", lambda: operations.refresh_index(idx, rebuild=True))
    step("upsert", lambda: SemanticIndex.load(idx).upsert(["cats"], ids=["t1"]))
    (docs / "n1.txt").write_text("rewritten: volcanoes")
    step("query --refresh", lambda: SemanticIndex.load(idx).refresh())
    step("optimize", lambda: operations.optimize_index(idx))
    step("SemanticIndex.optimize", lambda: SemanticIndex.load(idx).optimize())
    manifest = IndexDir(idx).manifest()[1]
    before = len(opened)
    engine = Watcher(idx)._make_engine(manifest)
    assert isinstance(engine, LocalEngine) and len(opened) == before + 1
    assert _kept(idx) == want


def test_ray_engine_is_made_by_the_writer(
    tmp_path: Path, opened: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []
    fake = FakeEmbedder()

    def ray_engine(model: str | None, **k: Any) -> LocalEngine:
        made.append(k)
        return LocalEngine(fake)

    monkeypatch.setattr("semsearch.indexing.ray.RayEngine", ray_engine)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("owls at night")
    index_paths([docs], tmp_path / "idx", embedder=fake, engine="ray", backend="numpy")
    assert [k.get("engine") for k in opened] == ["ray"]
    assert made and made[0]["expect"] == (fake.name, fake.precision, fake.dim)
    assert _kept(tmp_path / "idx") == ("numpy", "auto")


def test_no_other_maker_of_embedder_or_engine() -> None:
    """Outside the writer, nothing in the write layers loads a model or makes an engine."""
    root = Path(__file__).resolve().parents[1] / "semsearch"
    makers = re.compile(r"\b(load_embedder|LocalEngine|EmbeddingCache)\(")
    found = [
        f"{p.relative_to(root)}:{n}"
        for folder in ("api", "indexing", "watch")
        for p in sorted((root / folder).rglob("*.py"))
        if p.name not in ("writer.py", "ray_worker.py", "ray.py", "pipeline.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if makers.search(line) and not line.lstrip().startswith(("class ", "def "))
    ]
    assert found == []


def test_opening_an_index_reads_current_and_the_manifest_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.store.layout import IndexDir as Dir
    from semsearch.store.manifest import Manifest

    docs, idx, emb = tmp_path / "docs", tmp_path / "idx", FakeEmbedder()
    docs.mkdir()
    (docs / "a.txt").write_text("owls hunt at night")
    index_paths([docs], idx, embedder=emb)
    SemanticIndex.load(idx, embedder=emb).add_texts(["bats"])  # two segments
    reads = {"CURRENT": 0, "manifest": 0, "parsed": 0}
    pointer, checked, parse = Dir._pointer, Dir._checked_manifest, Manifest.from_data.__func__

    def count(key: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any, **k: Any) -> Any:
            reads[key] += 1
            return real(*a, **k)

        return counted

    monkeypatch.setattr(Dir, "_pointer", count("CURRENT", pointer))
    monkeypatch.setattr(Dir, "_checked_manifest", count("manifest", checked))
    monkeypatch.setattr(Manifest, "from_data", classmethod(count("parsed", parse)))
    index = SemanticIndex.load(idx, embedder=emb)
    assert reads == {"CURRENT": 1, "manifest": 1, "parsed": 1}
    assert len(index.search("owls", k=1)) == 1
    assert index.reload_if_changed() is False and reads["CURRENT"] == 2  # a check: one read
