"""Vector files: ``.npy`` written in blocks and memory-mapped back without ``ast`` or pickle.

NumPy parses headers with ``ast.literal_eval``, which on CPython 3.11 can fail with
"AST constructor recursion depth mismatch" when threads parse at once (a reader thread
opening an index while a writer works). Our headers are simple enough to read exactly.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import re
import sys
import threading
import weakref
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, UsageError
from ..util import first_line

_MAGIC = b"\x93NUMPY"
_HEADER = re.compile(
    r"""\{\s*'descr':\s*'(?P<descr>[<>|=]?[a-zA-Z]\d*)',\s*"""
    r"""'fortran_order':\s*(?P<fortran>True|False),\s*"""
    r"""'shape':\s*\((?P<shape>[\d\s,]*)\),?\s*\}\s*$"""
)


def memmap_npy(path: Path) -> np.ndarray:
    """A read-only memory map of a 2-D, C-order, plain-dtype ``.npy`` (never unpickles).

    Raises ValueError naming what is wrong with the file.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 10 or head[:6] != _MAGIC:
            raise ValueError("not a .npy file")
        major = head[6]
        if major == 1:
            length, start = int.from_bytes(head[8:10], "little"), 10
        elif major in (2, 3):
            length, start = int.from_bytes(head[8:12], "little"), 12
        else:
            raise ValueError(f"unknown .npy version {major}")
        f.seek(start)
        header = f.read(length).decode("latin1")
    m = _HEADER.match(header.strip())
    if m is None:
        raise ValueError("unsupported .npy header (object arrays are refused)")
    if m["fortran"] == "True":
        raise ValueError("Fortran-ordered arrays are not supported")
    shape = tuple(int(x) for x in m["shape"].replace(" ", "").split(",") if x)
    dtype = np.dtype(m["descr"])
    if dtype.hasobject:
        raise ValueError("object arrays are refused")
    offset = start + length
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"file is {size} bytes, its header implies {expected}")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def load_vectors(path: Path, dim: int, *, shared: bool = False) -> np.ndarray:
    """Memory-map a ``.npy`` of float32 rows, checking its shape (never unpickles).

    ``shared``: for a file that is never changed in place (a segment's): while a map of it
    is alive in this process, opening it again returns that map, so a generation opened
    after a write reads its unchanged segments through the pages already mapped (and
    :func:`warm`-ed) instead of faulting them in again."""
    if not shared:
        return _load_vectors(path, dim)
    try:
        st = os.stat(path)
    except OSError:
        return _load_vectors(path, dim)
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, dim)
    with _lock:
        ref = _shared.get(key)
        found = ref() if ref is not None else None
    if found is not None:
        return found
    vectors = _load_vectors(path, dim)
    if isinstance(vectors, np.memmap):
        with _lock:
            _shared[key] = weakref.ref(vectors, functools.partial(_forget, key))
    return vectors


def _forget(key: tuple[object, ...], _: object = None) -> None:
    """Drop a shared map's entry once the map is gone (not one made since)."""
    with _lock:
        ref = _shared.get(key)
        if ref is not None and ref() is None:
            del _shared[key]


def _load_vectors(path: Path, dim: int) -> np.ndarray:
    try:
        vectors = memmap_npy(path)
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: file is missing") from None
    except (ValueError, OSError, EOFError) as exc:
        raise IndexFormatError(f"{path}: not a valid vector file ({first_line(exc)})") from None
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != dim:
        raise IndexFormatError(
            f"{path}: expected float32 vectors of dimension {dim}, "
            f"found {vectors.dtype} {vectors.shape}"
        )
    return vectors


def release(vectors: np.ndarray) -> None:
    """Drop the pages of a memory-mapped array from this process's resident memory.

    They stay in the OS page cache and the next read maps them back in, so a pass over a
    large ``vectors.npy`` in blocks keeps the process's RSS at about one block instead of
    growing to the whole file. Arrays held in memory are left alone."""
    mm = getattr(vectors, "_mmap", None)
    if isinstance(mm, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):  # a hint: the OS reclaims them later
            mm.madvise(mmap.MADV_DONTNEED)


#: Linux 5.14+: fill the page tables of a mapping from the page cache (reading what is not
#: cached). Python's mmap module names it only from 3.13.
_MADV_POPULATE_READ = 22
_lock = threading.Lock()
#: Live shared maps by file identity (:func:`load_vectors`), and the maps already warmed.
_shared: dict[tuple[object, ...], weakref.ref[np.ndarray]] = {}
_warmed: set[int] = set()


def warm(vectors: np.ndarray) -> threading.Thread | None:
    """Map every page of a memory-mapped array, once per map, in a background thread.

    Re-scoring candidates reads ~1,000 rows scattered over ``vectors.npy``, and the first
    touch of each page is a page fault: at 1M rows (1.5 GB) gathering 1,024 random rows
    of a fresh map took 7.8 ms, of a mapped one 0.5-0.9 ms (docs/segments.md).
    ``madvise(MADV_POPULATE_READ)`` maps them all in one call, off the calling thread
    (ctypes releases the GIL): 0.14 s of CPU at 1M. The pages are the file's, shared with
    the OS page cache, not a copy. Returns the thread, or None when there is nothing to do
    (an array in memory, a map already warmed, or no such call on this system)."""
    mm = getattr(vectors, "_mmap", None)
    if not isinstance(mm, mmap.mmap) or len(mm) == 0 or not sys.platform.startswith("linux"):
        return None
    with _lock:
        if id(mm) in _warmed:
            return None
        _warmed.add(id(mm))
    weakref.finalize(vectors, _warmed.discard, id(mm))
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        view = np.frombuffer(mm, dtype=np.uint8)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    address, length = view.ctypes.data, len(mm)

    def populate() -> None:
        libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(length), _MADV_POPULATE_READ)
        _ = view  # keeps the buffer export (and so the mapping) alive while it runs

    thread = threading.Thread(target=populate, name="semsearch-warm", daemon=True)
    thread.start()
    return thread


class RowFile:
    """Rows of a memory-mapped ``.npy`` read with ``pread``: through the page cache, never
    mapped into this process, so a build's passes over ``vectors.npy`` do not count its pages
    in the process's resident memory.

    Releasing mapped pages (:func:`release`) is not enough for scattered rows: the kernel maps
    the whole page-cache folio around a faulting row (up to 2 MB on Linux 6.18 once a
    sequential pass has read the file), so 4 tuning queries' 4,096 candidates mapped 1.1 GB
    of a 1.5 GB file before the next release (measured at 1M rows)."""

    def __init__(self, path: str, offset: int, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.path, self.offset, self.shape, self.dtype = path, offset, shape, dtype
        self._row = shape[1] * dtype.itemsize

    @classmethod
    def of(cls, vectors: np.ndarray) -> RowFile | None:
        """The reader of a whole-file memory map (as :func:`memmap_npy` returns), else None
        (arrays in memory, and views of part of a map, whose offset numpy does not keep)."""
        name = getattr(vectors, "filename", None)
        offset = getattr(vectors, "offset", None)
        if name is None or offset is None or vectors.ndim != 2 or not vectors.flags.c_contiguous:
            return None
        try:
            size = os.stat(name).st_size
        except OSError:
            return None
        if offset + vectors.nbytes != size:
            return None
        return cls(str(name), int(offset), (int(vectors.shape[0]), int(vectors.shape[1])),
                   vectors.dtype)  # fmt: skip

    def __len__(self) -> int:
        return self.shape[0]

    def block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop-1`` (clipped to the file), read at once."""
        return self.take(np.arange(start, min(stop, self.shape[0]), dtype=np.int64))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows, in the order given (repeats allowed): one read per run of
        consecutive rows."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError("row out of range")
        ascending = len(rows) < 2 or bool(np.all(rows[1:] > rows[:-1]))
        wanted, back = (rows, None) if ascending else np.unique(rows, return_inverse=True)
        out = np.empty((len(wanted), self.shape[1]), dtype=self.dtype)
        if len(wanted):
            breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
            starts = np.r_[0, breaks].tolist()
            ends = np.r_[breaks, len(wanted)].tolist()
            view = out.reshape(-1).view(np.uint8).data
            with open(self.path, "rb", buffering=0) as f:
                fd = f.fileno()
                for a, b in zip(starts, ends, strict=True):
                    _read_exactly(fd, view[a * self._row : b * self._row],
                                  self.offset + int(wanted[a]) * self._row)  # fmt: skip
        return out if back is None else out[back]


def _read_exactly(fd: int, into: memoryview, offset: int) -> None:
    while len(into):
        got = os.preadv(fd, [into], offset)
        if got <= 0:
            raise OSError(f"short read of the vector file at byte {offset}")
        into, offset = into[got:], offset + got


class VectorWriter:
    """Appends float32 rows to a ``.npy`` file without holding them in memory.

    A fixed-size header is reserved up front and rewritten with the final shape on close.
    """

    _HEADER = 128

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim, self.rows = path, dim, 0
        self._f = open(path, "wb")  # noqa: SIM115 - stays open across append() calls
        self._f.write(b"\0" * self._HEADER)

    def append(self, vectors: np.ndarray) -> None:
        v = np.ascontiguousarray(vectors, dtype="<f4")
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise UsageError(f"vectors must have shape (n, {self.dim}), got {v.shape}")
        self._f.write(v.reshape(-1).view(np.uint8).data)  # no copy of the block
        self.rows += len(v)

    def close(self) -> None:
        header = repr({"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.dim)})
        body_len = self._HEADER - 10
        body = header.encode("latin1").ljust(body_len - 1) + b"\n"
        self._f.seek(0)
        self._f.write(b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + body)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
