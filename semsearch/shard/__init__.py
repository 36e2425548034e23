"""Serving one index from shard groups on Ray: segments spread over groups of replicas, each
query fanned out and merged so that answers equal the local searcher's (docs/ray-serving.md).
Only re-exports, lazily: Ray loads when a sharded server starts."""

from ..util import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RayEngine": ".serving",
        "ShardedSemanticIndex": ".remote",
        "ShardUnavailable": ".groups",
    },
)
