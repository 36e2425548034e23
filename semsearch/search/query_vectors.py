"""Query vectors: each query text embedded once, and off the calling thread when there is
other work to do meanwhile.

* A small LRU per embedder (:data:`CACHED` texts) answers a repeated query (the page's
  live search, a second page of hits, the same question again) without the model. The
  model's vector of a text is the same alone or in any batch, so a cached vector is the one
  the model would give.
* :func:`query_vectors` with ``background`` runs the model in a worker thread: ONNX Runtime
  releases the GIL, so the keyword side of a hybrid query runs beside it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..embed import Embedder

#: Query texts whose vectors are kept per embedder (384 floats each: 1.5 KB).
CACHED = 512

_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary[Embedder, OrderedDict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_pool: tuple[int, ThreadPoolExecutor] | None = None


def query_vectors(
    embedder: Embedder, queries: Sequence[str], *, background: bool = False
) -> Future[np.ndarray]:
    """The unit vectors of ``queries`` (one row each), as a future: already done when every
    text was cached or ``background`` is false, else computed by a worker thread."""
    cache = _cache_of(embedder)
    with _lock:
        missing = list(dict.fromkeys(q for q in queries if cache is None or q not in cache))
    if not missing:
        done: Future[np.ndarray] = Future()
        done.set_result(_rows(embedder, cache, queries, missing, None))
        return done
    if not background:
        done = Future()
        done.set_result(_compute(embedder, cache, queries, missing))
        return done
    return _executor().submit(_compute, embedder, cache, queries, missing)


def _compute(
    embedder: Embedder,
    cache: OrderedDict[str, np.ndarray] | None,
    queries: Sequence[str],
    missing: list[str],
) -> np.ndarray:
    vecs = embedder.encode(missing, kind="query")
    return _rows(embedder, cache, queries, missing, vecs)


def _rows(
    embedder: Embedder,
    cache: OrderedDict[str, np.ndarray] | None,
    queries: Sequence[str],
    missing: list[str],
    vecs: np.ndarray | None,
) -> np.ndarray:
    """Each query's row: from ``vecs`` (the vectors of ``missing``) or the cache."""
    fresh = {} if vecs is None else dict(zip(missing, vecs, strict=True))
    out = np.empty((len(queries), embedder.dim), np.float32)
    with _lock:
        for i, q in enumerate(queries):
            if q in fresh:
                out[i] = fresh[q]
            else:
                assert cache is not None  # only uncached texts are missing without a cache
                out[i] = cache[q]
                cache.move_to_end(q)
        if cache is not None:
            for q, v in fresh.items():
                cache[q] = v.copy()
                cache.move_to_end(q)
            while len(cache) > CACHED:
                cache.popitem(last=False)
    return out


def _cache_of(embedder: Embedder) -> OrderedDict[str, np.ndarray] | None:
    """The embedder's cache, made on first use (None for an object that cannot be weakly
    referenced or hashed: then nothing is cached)."""
    with _lock:
        try:
            cache = _caches.get(embedder)
            if cache is None:
                cache = _caches[embedder] = OrderedDict()
        except TypeError:
            return None
    return cache


def clear() -> None:
    """Forget every cached query vector."""
    with _lock:
        for cache in _caches.values():
            cache.clear()


def _executor() -> ThreadPoolExecutor:
    """The worker threads (made again in a forked child, where the parent's are gone)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            workers = max(2, os.cpu_count() or 2)
            _pool = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="semsearch-q"))
        return _pool[1]
