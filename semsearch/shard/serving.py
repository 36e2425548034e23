"""``semsearch serve --engine ray``: the service's readers fan out to shard groups of Ray
actors (:mod:`.groups`), each memory-mapping its segments from the index directory every node
sees. The HTTP API, the page and MCP are the local ones; /health names each group's live
replicas and answers 503 when a group has none.

Plain Ray actors rather than Ray Serve: Serve would bring its own HTTP proxy in front of
ours (our limits, tokens and page would have to move) and some forty more packages (gRPC,
FastAPI, OpenTelemetry, aiohttp); what we need of it, replicas and retries, is a page of
code here (docs/ray-serving.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..api import SemanticIndex
from ..indexing.ray import RayEngine
from ..indexing.ray_logs import ray_log_lines_hidden
from .groups import CALL_TIMEOUT, RayGroups, ShardUnavailable
from .placement import Sharding
from .remote import ShardedSemanticIndex

log = logging.getLogger("semsearch.shard")

#: Seconds between two checks that every replica is alive (what /health reports).
PING_EVERY = 2.0


class RayServing:
    """The service's engine on Ray: joins (or starts) Ray, starts ``shards x replicas``
    actors, opens readers bound to them, checks them in the background."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        shards: int = 2,
        replicas: int = 1,
        address: str | None = None,
        verbose: bool = False,
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(ray_log_lines_hidden(not verbose))
        self._ray = RayEngine(None, address=address, verbose=verbose)
        try:
            self._ray.connect()
            root = str(Path(path).expanduser().resolve())
            self.groups = RayGroups(root, shards, replicas, timeout=timeout)
        except BaseException:
            self._ray.close()
            self._quiet.close()
            raise
        self.sharding = Sharding(self.groups)
        self._reader = ShardedSemanticIndex.bound(self.sharding)
        self._stop = threading.Event()
        self._pinger = threading.Thread(target=self._watch, name="shard-ping", daemon=True)
        self._pinger.start()

    def open(self, path: Path, embedder: Any) -> SemanticIndex:
        return self._reader.load(path, embedder=embedder)

    def health(self) -> dict[str, Any]:
        missing = self.groups.unavailable()
        if missing:
            raise ShardUnavailable(missing)
        shards = [h._asdict() for h in self.groups.health()]
        return {"engine": "ray", "shards": shards}

    def _watch(self) -> None:
        while not self._stop.wait(PING_EVERY):
            try:
                self.groups.ping()
            except Exception as exc:
                log.debug("shard check failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        # A ping under way is bounded by the call timeout: wait it out, so no Ray call is
        # made after Ray is shut down (Ray ends the whole process when one is).
        self._pinger.join(timeout=PING_EVERY + self.groups.timeout + 1)
        self.groups.close()
        self._ray.close()
        self._quiet.close()
