"""The sharded searcher on a local Ray cluster (2 CPUs, shard replicas as actor processes):
answers equal the local searcher's in every mode, a killed replica is replaced by another
mid-stream, and a group with no replica left is a clear 503 within the timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semsearch.errors import ServiceUnavailable
from semsearch.serve.http import _status
from semsearch.serve.params import search_request
from semsearch.serve.service import SearchService
from semsearch.shard.groups import RayGroups, ShardUnavailable
from semsearch.shard.placement import Sharding
from semsearch.shard.remote import ShardedSemanticIndex
from semsearch.shard.serving import RayServing

from .conftest import FakeEmbedder
from .test_shard import OPTIONS, QUERIES, build, same

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(  # "local": never another session's cluster on the machine
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def kill(ray: Any, actor: Any) -> None:
    """Kill ``actor`` and wait until a call to it fails: ``ray.kill`` returns before the
    actor is gone, and on a loaded machine a call made at once could still be answered."""
    ray.kill(actor)
    for _ in range(120):
        try:
            ray.get(actor.ping.remote(), timeout=1)
        except ray.exceptions.RayActorError:
            return
        except ray.exceptions.GetTimeoutError:
            pass
        time.sleep(0.25)
    raise AssertionError("a killed replica still answers")


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeEmbedder, Any]:
    emb = FakeEmbedder()
    return tmp_path / "ix", emb, build(tmp_path / "ix", emb, monkeypatch)


def test_ray_shards_answer_as_the_local_searcher_and_survive_a_killed_replica(
    ray_cluster: Any, built: Any
) -> None:
    path, emb, local = built
    groups = RayGroups(str(path), 2, 2, timeout=20)
    try:
        remote = ShardedSemanticIndex.bound(Sharding(groups)).load(path, embedder=emb)
        pids = {ray_cluster.get(m.ping.remote()) for g in groups.members for m in g}
        assert len(pids) == 4  # four actor processes
        for opts in OPTIONS:
            for w, g in zip(
                local.search_with(QUERIES, opts), remote.search_with(QUERIES, opts), strict=True
            ):
                same(w, g)
        want = local.search_with(QUERIES, OPTIONS[2])
        answers: list[Any] = []
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                for _ in range(6):
                    answers.append(remote.search_with(QUERIES, OPTIONS[2]))
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=ask)
        t.start()
        time.sleep(0.2)
        kill(ray_cluster, groups.members[0][0])  # one replica of group 0 dies while queries run
        kill(ray_cluster, groups.members[1][1])
        t.join(timeout=120)
        assert not t.is_alive() and not errors
        assert len(answers) == 6
        for got in answers:  # every answer whole and equal, whichever replica gave it
            for w, g in zip(want, got, strict=True):
                same(w, g)
        groups.ping()
        assert {(0, 0), (1, 1)} <= groups.lost and groups.unavailable() is None
    finally:
        groups.close()


def test_a_lost_shard_is_reported_by_health_and_queries_get_503(
    ray_cluster: Any, built: Any
) -> None:
    path, emb, local = built
    engine = RayServing(path, shards=2, replicas=1, timeout=5)
    try:
        service = SearchService(path, workers=1, embedder=emb, engine=engine)
        req = search_request({"q": "reef anchor", "k": 5, "mode": "hybrid"})
        answer = service.search(req)
        assert answer["generation"] == local.generation
        health = service.health()
        assert health["status"] == "ok" and [s["live"] for s in health["shards"]] == [1, 1]
        # A generation published by another writer: the next request answers from it, named.
        local.upsert(["quokka harbour brand new"], ids=["fresh"])
        fresh = service.search(search_request({"q": "quokka", "k": 1, "mode": "keyword"}))
        assert fresh["generation"] == local.generation != answer["generation"]
        assert fresh["hits"][0]["doc_id"] == "fresh"
        answer = service.search(req)
        kill(ray_cluster, engine.groups.members[1][0])
        t0 = time.monotonic()
        with pytest.raises(ShardUnavailable, match="shard 1 of 2 has no live replica") as caught:
            service.search(req)
        assert time.monotonic() - t0 < 30  # bounded by the call timeout, never a hang
        assert _status(caught.value) == 503
        with pytest.raises(ServiceUnavailable, match="shard 1 of 2"):
            service.health()
    finally:
        engine.close()
