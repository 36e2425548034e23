"""Query vectors, each query text embedded once: a small LRU per embedder (:data:`CACHED`
texts) answers a repeated query (the page's live search, a second page of hits, the same
question again) without the model. The model's vector of a text is the same alone or in
any batch, so a cached vector is the one the model would give.

(Embedding in a worker thread while the keyword side runs was tried and dropped: the
worker needs the GIL back after ONNX returns and waited out the interpreter's switch
interval, ~3 ms a query; docs/segments.md.)
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from ..embed import Embedder

#: Query texts whose vectors are kept per embedder (384 floats each: 1.5 KB).
CACHED = 512

_lock = threading.Lock()
_caches: weakref.WeakKeyDictionary[Embedder, OrderedDict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def query_vectors(embedder: Embedder, queries: Sequence[str]) -> np.ndarray:
    """The unit vectors of ``queries`` (one row each); only texts not cached are embedded,
    in one batch."""
    cache = _cache_of(embedder)
    with _lock:
        missing = list(dict.fromkeys(q for q in queries if cache is None or q not in cache))
    fresh = (
        dict(zip(missing, embedder.encode(missing, kind="query"), strict=True)) if missing else {}
    )
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
