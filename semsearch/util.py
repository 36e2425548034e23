"""Small helpers every layer shares: JSON files, atomic writes, digests, one-line reasons."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path``, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_json_object(path: Path) -> dict[str, Any] | None:
    data = read_json(path)
    return data if isinstance(data, dict) else None


def write_atomic(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: A scratch folder older than this was left by a killed process: the work done in one (a
#: model export, a distillation, a mapped copy) takes seconds to a few minutes.
STALE_SCRATCH_SECONDS = 3600


@contextlib.contextmanager
def scratch_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder ``parent/.{prefix}*.tmp`` for files to be renamed into place, removed on
    the way out. It lives in ``parent`` (our own cache, never the system's temporary
    directory, and on the same file system, so renames are atomic); the ones a killed process
    left there are removed first, once old enough not to be another's still at work."""
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - STALE_SCRATCH_SECONDS
    for old in parent.glob(f".{prefix}*.tmp"):
        with contextlib.suppress(OSError):
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{prefix}", suffix=".tmp", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_synced(path: Path, data: bytes) -> None:
    """Write and fsync ``path`` in place (inside a directory not yet published)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_text(value: str, what: str) -> str:
    """``value`` unless it holds lone surrogates (bytes that were not UTF-8, as argv or a
    JSON ``\\ud800`` escape delivers them): those cannot be stored or compared, so they are
    a usage error naming ``what``."""
    from .errors import UsageError

    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise UsageError(f"{what} is not valid UTF-8: {shown[:80]!r}") from None
    return value


def lazy_exports(
    package: str, where: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__``: each name in ``where`` is
    imported from its module (relative to ``package``) on first use and kept, so importing
    a package costs nothing until a name is needed (the CLI's start-up)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # resolved once
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of integers (flattened, ascending, each once), by a sort: numpy
    2's ``np.unique`` imports ``numpy.ma`` on its first call, ~13 ms of a cold query."""
    import numpy as np

    ordered = np.sort(values, axis=None)
    keep = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
