"""Memory-map a ``.npy`` file without ``ast``: a strict parser for the plain headers we write.

NumPy parses headers with ``ast.literal_eval``, which on CPython 3.11 can fail with
"AST constructor recursion depth mismatch" when threads parse at once (a reader thread
opening an index while a writer works). Our headers are simple enough to read exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

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
