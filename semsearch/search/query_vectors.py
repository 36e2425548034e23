"""Query vectors, each query text embedded once: a small LRU per embedder (:data:`CACHED`
texts) answers a repeated query (the page's live search, a second page of hits, the same
question again) without the model. The model's vector of a text is the same alone or in
any batch, so a cached vector is the one the model would give.

:func:`vectors_soon` embeds in a worker thread while the caller goes on (a hybrid search's
keyword side): ONNX Runtime releases the GIL while the model runs. The caller waits until
the worker has started (2 ms at most), so the worker does not wait out the interpreter's
switch interval (5 ms) for the GIL while the caller runs Python (why a first attempt lost
~3 ms a query; docs/segments.md). One worker per process: when it is busy (concurrent
searches already use the cores) the vectors are computed by the caller, when it asks.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..embed import Embedder

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

#: Query texts whose vectors are kept per embedder (384 floats each: 1.5 KB).
CACHED = 512
#: Worker threads that embed queries beside their callers (per process).
WORKERS = 1
#: Seconds a caller waits at most for the worker to start.
START_WAIT = 0.002
#: Seconds per query text an embedder must have taken for its queries to be embedded in
#: the worker: handing work over costs 40-110 us, more than a static model's whole query.
WORTH_A_THREAD = 0.0003

_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary[Embedder, OrderedDict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
#: Each embedder's last measured seconds per query text.
_costs: weakref.WeakKeyDictionary[Embedder, float] = weakref.WeakKeyDictionary()


def query_vectors(embedder: Embedder, queries: Sequence[str]) -> np.ndarray:
    """The unit vectors of ``queries`` (one row each); only texts not cached are embedded,
    in one batch."""
    cache = _cache_of(embedder)
    with _lock:
        missing = list(dict.fromkeys(q for q in queries if cache is None or q not in cache))
    fresh = _embedded(embedder, missing) if missing else {}
    out = np.empty((len(queries), embedder.dim), np.float32)
    with _lock:
        for i, q in enumerate(queries):
            if q in fresh:
                out[i] = fresh[q]
            elif cache is not None and q in cache:
                out[i] = cache[q]
                cache.move_to_end(q)
            else:  # evicted by another thread meanwhile: embed it alone
                out[i] = embedder.encode([q], kind="query")[0]
        if cache is not None:
            for q, v in fresh.items():
                cache[q] = v.copy()
                cache.move_to_end(q)
            while len(cache) > CACHED:
                cache.popitem(last=False)
    return out


def _embedded(embedder: Embedder, texts: list[str]) -> dict[str, np.ndarray]:
    """The model's vector of each text, its cost per text noted."""
    start = time.perf_counter()
    vecs = embedder.encode(texts, kind="query")
    with _lock, contextlib.suppress(TypeError):  # (an embedder that cannot be weakly keyed)
        _costs[embedder] = (time.perf_counter() - start) / len(texts)
    return dict(zip(texts, vecs, strict=True))


def vectors_soon(embedder: Embedder, queries: Sequence[str]) -> Callable[[], np.ndarray]:
    """:func:`query_vectors` of ``queries``, started now in the worker thread when it is
    free, some text is not cached and the embedder was slow enough (:data:`WORTH_A_THREAD`)
    last time; call the result for the vectors (the same ones: the model's vector of a text
    does not depend on the thread). Errors are raised there."""
    cache = _cache_of(embedder)
    with _lock:
        cached = cache is not None and all(q in cache for q in queries)
    if cached or _cost_of(embedder) < WORTH_A_THREAD or not _free.acquire(blocking=False):
        return lambda: query_vectors(embedder, queries)
    started = threading.Event()

    def job() -> np.ndarray:
        started.set()
        try:
            return query_vectors(embedder, queries)
        finally:
            _free.release()

    try:
        future = _worker().submit(job)
    except RuntimeError:  # the interpreter is shutting down: no new threads
        _free.release()
        return lambda: query_vectors(embedder, queries)
    # Hand the GIL over until the worker runs (see the module's note), but not for long: on
    # a busy machine the worker may wait for a core, and the caller has work of its own.
    started.wait(START_WAIT)
    return future.result


def _cost_of(embedder: Embedder) -> float:
    """The embedder's last seconds per query text (0 before its first)."""
    with _lock:
        try:
            return _costs.get(embedder, 0.0)
        except TypeError:
            return 0.0


_free = threading.BoundedSemaphore(WORKERS)
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _worker() -> ThreadPoolExecutor:
    """The process's worker pool (made again in a forked child, which has no threads;
    imported here: a cold query, whose embedder has no cost measured yet, never asks)."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(WORKERS, "semsearch-query"))
        return _pool[1]


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
