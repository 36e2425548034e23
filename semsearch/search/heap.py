"""A searching process's heap: glibc's allocator told to keep a search's temporaries.

A hybrid query allocates a few blocks of 0.5-1.5 MB (the re-scored rows, the pool's vectors,
the candidates' vectors) and frees them all at its end. glibc serves blocks that size by
``mmap`` or from the top of its heap, and gives the freed top back to the system once more
than its (dynamic) trim threshold is free: the next query then faults every page in again.
Measured at 100k chunks (cached query vectors, 300 queries, load 6.6): 252-255 minor faults
and 5.5-5.6 ms of CPU per hybrid query, against 0 faults and 4.6-4.7 ms with the thresholds
below set (docs/segments.md, "Seventh round"). Which query faults depends on the order of
earlier frees (qlat3 saw 0 in its runs, this round 90-370), so the thresholds are set once,
at a process's second search: a one-query process (a CLI query) never changes them.

Set: blocks below :data:`MMAP_AT` come from the heap, and up to :data:`TRIM_AT` of free heap
top is kept. A process that searches holds at most that much more memory; blocks above
:data:`MMAP_AT` are still mapped and returned at once. glibc on Linux only; a value the
user gave in ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` is left alone.
"""

from __future__ import annotations

import os
import sys
import threading

#: glibc's ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes are mapped on their own.
MMAP_AT = 4 << 20
#: Free bytes at the heap's top kept rather than given back.
TRIM_AT = 64 << 20
#: The search (per process) at which the thresholds are set.
SET_AT_SEARCH = 2

_lock = threading.Lock()
_searches = 0


def searched() -> bool:
    """Count a search; at the :data:`SET_AT_SEARCH`-th, set the thresholds. True when this
    call set them."""
    global _searches
    with _lock:
        if _searches >= SET_AT_SEARCH:
            return False
        _searches += 1
        if _searches < SET_AT_SEARCH:
            return False
    return keep_temporaries()


def keep_temporaries() -> bool:
    """Set glibc's thresholds (see the module's note); False where nothing was set."""
    if not sys.platform.startswith("linux"):
        return False
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc's; musl has no such thresholds)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_AT)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_AT))
