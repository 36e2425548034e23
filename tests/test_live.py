"""The live-generation handle (:class:`semsearch.api.live.LiveHandle`): it picks up what
another process publishes, follows the index to the model phase 2 publishes unless a model
was named, keeps answering from the old view when the new generation is damaged, and opens
every generation through its opener (the sharded index's fans out)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.api.live import LiveHandle
from semsearch.api.view import View, open_view
from semsearch.errors import IndexFormatError, UsageError
from semsearch.indexing import Changes, build
from semsearch.indexing import writer as writer_module
from semsearch.indexing.settings import Requested
from semsearch.store.layout import IndexDir, Live
from semsearch.store.manifest import VECTORS, segment_refs

from .conftest import REPO, FakeEmbedder

TEXTS = [
    "the lighthouse keeper climbs the stairs at dusk",
    "a harbour full of sailing boats and gulls",
    "tide tables for the northern reef",
]


class Other(FakeEmbedder):
    """Another model, of another dimension: what phase 2 publishes under."""

    name = "fake-other"

    def __init__(self) -> None:
        super().__init__(dim=32)


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeEmbedder]:
    """Both fakes known to semsearch and loaded by name, as an index's word loads a model."""
    from semsearch.embed import models as known

    loaded = {FakeEmbedder.name: FakeEmbedder(), Other.name: Other()}
    monkeypatch.setattr(known, "KNOWN_MODELS", frozenset({*known.KNOWN_MODELS, Other.name}))
    monkeypatch.setattr(writer_module, "_load", lambda model, precision: loaded[model])
    return loaded


def built(path: Path, embedder: FakeEmbedder | None = None) -> SemanticIndex:
    index = SemanticIndex(embedder=embedder or FakeEmbedder(), path=path, backend="numpy")
    index.add_texts(TEXTS, ids=["a", "b", "c"])
    return index


def phase_two(path: Path, embedder: FakeEmbedder) -> None:
    """What phase 2 of a progressive build publishes: every document embedded again by
    another model (a handle cannot do it: it opens the index under its own model first)."""
    where = IndexDir(path)
    requested = Requested(model=embedder.name, precision=embedder.precision)
    writer = writer_module.open_writer(
        path, where.manifest()[1], requested, embedder=embedder, rebuild=True
    )
    assert build(where, Changes(rebuild=True), writer.engine, writer.settings).changed


def handle(path: Path, requested: Requested | None = None, **kw: object) -> LiveHandle:
    return LiveHandle(IndexDir(path), requested or Requested(), **kw)  # type: ignore[arg-type]


def hits(index: SemanticIndex, query: str = "reef tide") -> list[dict[str, object]]:
    return [asdict(h) for h in index.search(query, 3)]


def test_a_new_handle_on_an_empty_directory_has_no_view(tmp_path: Path) -> None:
    live = LiveHandle(IndexDir(tmp_path / "ix"), Requested(), embedder=FakeEmbedder())
    assert live.view is None and not live.reload_if_changed()
    with pytest.raises(UsageError, match="empty"):
        live.require()


def test_it_picks_up_what_another_process_publishes(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    built(path)
    live = handle(path, embedder=FakeEmbedder())
    first = live.require()
    assert not live.reload_if_changed()  # nothing new: the same view
    assert live.view is first
    script = (
        "import sys; from semsearch import SemanticIndex; from tests.conftest import FakeEmbedder\n"
        "ix = SemanticIndex.load(sys.argv[1], embedder=FakeEmbedder())\n"
        "ix.add_texts(['a brand new anchor text'], ids=['new'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, cwd=REPO)
    assert live.reload_if_changed()
    assert live.require() is not first and live.require().manifest.documents == 4
    assert live.require().pointer == IndexDir(path).pointer()
    assert "new" in live.require().store.document_ids()
    assert not live.reload_if_changed()


def test_an_unnamed_model_follows_phase_two_and_a_named_one_stays(
    tmp_path: Path, models: dict[str, FakeEmbedder]
) -> None:
    path = tmp_path / "ix"
    built(path, models[FakeEmbedder.name])
    follows = SemanticIndex.load(path)  # named no model: the index's own
    stays = SemanticIndex.load(path, embedder=FakeEmbedder())
    before = hits(stays)
    # Phase 2 of a progressive build: every document embedded again by another model.
    phase_two(path, models[Other.name])
    assert follows.reload_if_changed()
    assert follows.embedder is models[Other.name] and follows.live.view is not None
    assert follows.settings.model == follows.live.view.embedder.name == Other.name
    assert follows.settings.dim == 32
    want = hits(SemanticIndex.load(path))
    assert hits(follows) == want
    # A handle that named its model refuses the other one, and answers as it did.
    with pytest.raises(IndexFormatError, match="fake-other"):
        stays.reload_if_changed()
    assert stays.embedder.name == FakeEmbedder.name and hits(stays) == before


def test_a_write_follows_the_model_published_meanwhile(
    tmp_path: Path, models: dict[str, FakeEmbedder]
) -> None:
    path = tmp_path / "ix"
    built(path, models[FakeEmbedder.name])
    live = handle(path)
    given = handle(path, embedder=models[FakeEmbedder.name])  # given a model: stays on it
    assert not live.follow_model()  # the index's model is the handle's
    phase_two(path, models[Other.name])
    assert not given.follow_model() and given.embedder.name == FakeEmbedder.name
    with pytest.raises(UsageError, match="built with model fake-other"):
        given.apply(Changes(remove=frozenset({"b"})))  # refused: nothing is written
    assert IndexDir(path).manifest()[1].documents == 3
    # No reload in between: the write itself notices, and writes under the new model.
    stats = live.apply(Changes(remove=frozenset({"a"})))
    assert stats.changed and live.embedder is models[Other.name]
    assert IndexDir(path).manifest()[1].model == Other.name
    assert live.require().manifest.documents == 2 and live.require().embedder.dim == 32
    assert not live.follow_model()


def test_a_damaged_generation_on_reload_keeps_the_old_view_answering(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    writer = built(path)
    reader = SemanticIndex.load(path, embedder=FakeEmbedder())
    old, before = reader.live.view, hits(reader)
    writer.add_texts(["the reef at low tide"], ids=["d"])
    where = IndexDir(path)
    gen, manifest = where.manifest()
    vectors = gen.parent / segment_refs(gen, manifest)[-1].name / VECTORS
    assert vectors.is_file()
    vectors.write_bytes(vectors.read_bytes()[:-8])  # a torn copy, say
    with pytest.raises(IndexFormatError, match="damaged"):
        reader.reload_if_changed()
    assert reader.live.view is old and hits(reader) == before
    with pytest.raises(IndexFormatError, match="damaged"):  # and again, never half-swapped
        reader.live.reload()
    assert reader.live.view is old and hits(reader) == before


def test_every_generation_is_opened_through_the_opener(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    writer = built(path)
    opened: list[str] = []

    def counting(
        index_dir: IndexDir, embedder: FakeEmbedder, backend: str, live: Live | None
    ) -> View:
        view = open_view(index_dir, embedder, backend, live)
        opened.append(view.gen.name)
        return view

    live = handle(path, embedder=FakeEmbedder(), opener=counting)
    assert opened == [live.require().gen.name]
    assert not live.reload_if_changed() and len(opened) == 1
    writer.add_texts(["one more"], ids=["e"])
    assert live.reload_if_changed() and opened[-1] == IndexDir(path).current().name
    live.apply(Changes(remove=frozenset({"e"})))  # its own write: opened the same way
    assert len(opened) == 3 and opened[-1] == live.require().gen.name


def test_the_sharded_index_opens_every_generation_fanned_out(tmp_path: Path) -> None:
    from semsearch.shard.groups import LocalGroups
    from semsearch.shard.placement import Sharding
    from semsearch.shard.remote import ShardedIndex, ShardedSemanticIndex, ShardedStore

    path = tmp_path / "ix"
    local = built(path)
    remote = ShardedSemanticIndex.bound(Sharding(LocalGroups(str(path), 2, 1))).load(
        path, embedder=FakeEmbedder()
    )
    for step in range(2):
        view = remote.live.require()
        assert isinstance(view.index, ShardedIndex) and isinstance(view.store, ShardedStore)
        assert remote.generation == local.generation
        same(remote, local)
        local.add_texts([f"gull number {step} over the reef"], ids=[f"g{step}"])
        assert remote.reload_if_changed()
    # Its own writes publish through the same handle, and are searched fanned out too.
    remote.delete(["g0"])
    assert isinstance(remote.live.require().index, ShardedIndex)
    assert "g0" not in remote.live.require().store.document_ids()
    same(remote, SemanticIndex.load(path, embedder=FakeEmbedder()))


def same(a: SemanticIndex, b: SemanticIndex) -> None:
    """The same hits in the same order, scores within float rounding (fanned out or not)."""
    got, want = a.search("reef tide gull", 4), b.search("reef tide gull", 4)
    assert [h.chunk_id for h in got] == [h.chunk_id for h in want] and want
    assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-6)
