"""The on-disk index: a directory of immutable generations and a pointer to the live one.

    INDEX_DIR/
      CURRENT              name of the live generation, replaced atomically
      LOCK                 flock held by the one writer
      gen-000007/          manifest.json, chunks.sqlite, vectors.npy [, index.faiss]

A writer builds a new generation in a temporary directory beside the others, fsyncs
it, renames it into place and only then swaps ``CURRENT``. A crash at any point leaves
the previous generation live and loadable; readers see one whole generation or the
other. Nothing is pickled: JSON, SQLite, ``.npy`` (``allow_pickle=False``) and faiss's
own format only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexFormatError, IndexLockedError, UsageError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.sqlite"
VECTORS = "vectors.npy"
_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-"
#: Generations kept besides the live one, so a reader that just resolved CURRENT can finish.
_KEEP_OLD = 1


@dataclass(frozen=True)
class Manifest:
    """Everything needed to check an index before trusting it. Keys are declared once, here."""

    format_version: int
    semsearch_version: str
    model: str
    precision: str
    dim: int
    chunk_tokens: int
    overlap: int
    backend: str
    index_type: str
    index_params: Mapping[str, Any]
    recall_at_10: float | None
    documents: int
    chunks: int
    next_chunk_id: int
    created: float
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexFormatError(f"{path}: manifest is missing") from None
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{path}: manifest is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise IndexFormatError(f"{path}: manifest is not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: index format version {version!r} is not supported "
                f"(this semsearch reads version {FORMAT_VERSION}); rebuild the index"
            )
        names = set(cls.__dataclass_fields__)
        missing = sorted(names - data.keys())
        if missing:
            raise IndexFormatError(f"{path}: manifest lacks {', '.join(missing)}")
        return cls(**{k: data[k] for k in names})


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        self._f.write(v.tobytes())
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


class IndexDir:
    """One index directory: finds the live generation, locks writers, publishes new ones."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def exists(self) -> bool:
        return (self.path / "CURRENT").is_file()

    def current(self) -> Path:
        """The live generation's directory, or IndexFormatError naming what is missing."""
        pointer = self.path / "CURRENT"
        if not self.path.exists():
            raise IndexFormatError(
                f"no index at {self.path} (build one with: semsearch index PATH)"
            )
        try:
            name = pointer.read_text(encoding="utf-8").split()[0]
        except FileNotFoundError:
            raise IndexFormatError(
                f"{self.path} is not a semsearch index (no CURRENT file)"
            ) from None
        except (IndexError, UnicodeDecodeError):
            raise IndexFormatError(f"{self.path}: CURRENT file is damaged") from None
        gen = self.path / name
        if not name.startswith(_GEN_PREFIX) or "/" in name or not gen.is_dir():
            raise IndexFormatError(f"{self.path}: CURRENT names a missing generation {name!r}")
        return gen

    def manifest(self, gen: Path | None = None) -> tuple[Path, Manifest]:
        """The live generation and its manifest, checked against the digest kept in CURRENT."""
        gen = gen or self.current()
        try:
            parts = (self.path / "CURRENT").read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError):
            parts = []
        path = gen / MANIFEST
        checkable = len(parts) == 2 and parts[0] == gen.name and path.is_file()
        if checkable and hashlib.sha256(path.read_bytes()).hexdigest() != parts[1]:
            raise IndexFormatError(f"{path}: manifest checksum does not match CURRENT (altered)")
        return gen, Manifest.from_file(path)

    @contextlib.contextmanager
    def lock(self, timeout: float = 10.0) -> Iterator[None]:
        """Exclusive writer lock; waits up to ``timeout`` seconds, then fails clearly."""
        self._check_ours()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexLockedError(
                            f"{self.path} is being written by another process; try again later"
                        ) from None
                    time.sleep(0.1)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _check_ours(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path} exists and is not a directory")
        if self.path.is_dir() and not self.exists():
            foreign = [
                p.name
                for p in self.path.iterdir()
                if p.name != "LOCK" and not p.name.startswith((_TMP_PREFIX, _GEN_PREFIX))
            ]
            if foreign:
                raise UsageError(
                    f"{self.path} is not empty and not a semsearch index; choose another --index"
                )

    def new_tmp(self) -> Path:
        """A fresh temporary generation directory (call under :meth:`lock`)."""
        tmp = self.path / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        return tmp

    def publish(self, tmp: Path, manifest: Manifest) -> Path:
        """Seal ``tmp`` (checksums, manifest, fsync), rename it live, swap CURRENT, tidy up."""
        files = {
            p.name: {"size": p.stat().st_size, "sha256": file_digest(p)}
            for p in sorted(tmp.iterdir())
            if p.is_file() and p.name != MANIFEST
        }
        manifest = Manifest(**{**asdict(manifest), "files": files})
        manifest_bytes = manifest.to_json().encode()
        _write_synced(tmp / MANIFEST, manifest_bytes)
        for p in tmp.iterdir():
            _fsync_path(p)
        _fsync_path(tmp)
        number = max((_gen_number(p.name) for p in self.path.iterdir()), default=0) + 1
        gen = self.path / f"{_GEN_PREFIX}{number:06d}"
        os.rename(tmp, gen)
        pointer_tmp = self.path / f"{_TMP_PREFIX}CURRENT-{os.getpid()}"
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        _write_synced(pointer_tmp, f"{gen.name} {digest}\n".encode())
        os.replace(pointer_tmp, self.path / "CURRENT")
        _fsync_path(self.path)
        self.cleanup(keep=gen)
        return gen

    def cleanup(self, keep: Path | None = None) -> None:
        """Remove interrupted builds and generations older than the last ``_KEEP_OLD``."""
        gens = sorted(
            (p for p in self.path.iterdir() if p.name.startswith(_GEN_PREFIX)),
            key=lambda p: _gen_number(p.name),
        )
        live = keep.name if keep else None
        old = [g for g in gens if g.name != live]
        for g in old[: max(len(old) - _KEEP_OLD, 0)]:
            shutil.rmtree(g, ignore_errors=True)
        for p in self.path.iterdir():
            if p.name.startswith(_TMP_PREFIX) and not p.name.startswith(
                f"{_TMP_PREFIX}{os.getpid()}-"
            ):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    def size_on_disk(self) -> int:
        gen = self.current()
        return sum(p.stat().st_size for p in gen.iterdir() if p.is_file())


#: On every load, files up to this size are checksummed too; bigger ones only by
#: ``semsearch info --verify``, so opening a million-vector index stays fast.
VERIFY_ON_LOAD_BYTES = 32 << 20


def check_files(gen: Path, manifest: Manifest, *, checksums: bool = False) -> list[str]:
    """Problems with a generation's files: missing, wrong size, or wrong checksum (always
    for small files, for every file when ``checksums``)."""
    problems = []
    for name, info in sorted(manifest.files.items()):
        path = gen / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        size = path.stat().st_size
        if size != info.get("size"):
            problems.append(f"{name}: size {size} bytes, manifest says {info.get('size')}")
        elif (checksums or size <= VERIFY_ON_LOAD_BYTES) and file_digest(path) != info.get(
            "sha256"
        ):
            problems.append(f"{name}: checksum does not match the manifest (file altered)")
    return problems


def _gen_number(name: str) -> int:
    if name.startswith(_GEN_PREFIX) and name[len(_GEN_PREFIX) :].isdigit():
        return int(name[len(_GEN_PREFIX) :])
    return 0


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
