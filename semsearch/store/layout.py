"""The on-disk index: a directory of immutable generations and a pointer to the live one.

    INDEX_DIR/
      CURRENT              name of the live generation and its manifest's SHA-256
      LOCK                 file lock held by the one writer
      WATCH                file lock held by the one watcher (its pid inside)
      FRESH                fingerprint of the folders last found in sync (semsearch.watch)
      gen-000007/          manifest.json [, tombstones.json]
                           [, chunks.sqlite, vectors.npy, index.faiss: its own segment]

A generation searches a list of segments (its manifest names them, oldest first): its own,
holding what the write that made it added or merged, and segments of earlier generations,
which it references without copying; ``tombstones.json`` hides the documents deleted or
replaced since they were written. A writer builds a new generation in a temporary
directory beside the others, fsyncs it, renames it into place and only then swaps
``CURRENT``. A crash at any point leaves the previous generation live and loadable;
readers see one whole generation or the other. A generation directory is removed once no
kept generation searches its segment. Nothing is pickled: JSON, SQLite, ``.npy``
(``allow_pickle=False``) and faiss's own format only.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import IndexFormatError, IndexLockedError, UsageError
from ..util import file_digest, fsync_path, write_synced
from .manifest import (
    FRESH,
    LOCK,
    MANIFEST,
    POINTER,
    SEGMENT_FILES,
    SKIPPED,
    TOMBSTONES,
    VECTORS,
    WATCH_LOCK,
    Manifest,
    SegmentRef,
    segment_refs,
)
from .records import SkippedFile
from .segments import SegmentedStore

log = logging.getLogger("semsearch")

if TYPE_CHECKING:
    from filelock import BaseFileLock

_GEN_PREFIX = "gen-"
_TMP_PREFIX = ".tmp-"
#: Generations kept besides the live one, so a reader that just resolved CURRENT can finish.
_KEEP_OLD = 1
#: A superseded generation is also kept this long, so readers that resolved CURRENT just
#: before a burst of writes still find it (they retry on a newer one otherwise).
_GRACE_SECONDS = 2.0


class Live(NamedTuple):
    """The live generation as one read saw it: CURRENT's words, the directory, the manifest."""

    pointer: tuple[str, ...]
    gen: Path
    manifest: Manifest


class IndexDir:
    """One index directory: finds the live generation, locks writers, publishes new ones."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def exists(self) -> bool:
        """True when the directory holds an index (a CURRENT pointer that is a plain file)."""
        pointer = self.path / POINTER
        return pointer.is_file() and not pointer.is_symlink()

    def has_generations(self) -> bool:
        """True when the directory holds generations or a CURRENT entry of any kind, i.e. it
        is (or was) an index, even if its pointer is now damaged or missing."""
        if not self.path.is_dir():
            return False
        return any(p.name == POINTER or p.name.startswith(_GEN_PREFIX) for p in self.path.iterdir())

    def current(self) -> Path:
        """The live generation's directory, or IndexFormatError naming what is wrong.

        CURRENT and the generation must be plain entries inside this directory: a symlink
        could make a reader trust files from anywhere on the machine.
        """
        self._check_dir()
        return self._gen_of(self._pointer())

    def _gen_of(self, parts: Sequence[str]) -> Path:
        """The generation directory CURRENT's words ``parts`` name, checked."""
        name = parts[0]
        gen = self.path / name
        if not name.startswith(_GEN_PREFIX) or not name[len(_GEN_PREFIX) :].isdigit():
            raise IndexFormatError(f"{self.path}: CURRENT names no generation ({name[:40]!r})")
        if gen.is_symlink():
            raise IndexFormatError(f"{self.path}: {name} is a symbolic link; refusing to read it")
        if not gen.is_dir():
            raise IndexFormatError(f"{self.path}: CURRENT names a missing generation {name!r}")
        return gen

    def live(self) -> Live:
        """The live generation, read once: CURRENT read, its manifest parsed and checked
        against the digest CURRENT keeps, each one time."""
        self._check_dir()
        parts = self._pointer()
        gen = self._gen_of(parts)
        return Live(tuple(parts), gen, self._checked_manifest(gen, parts))

    def _check_dir(self) -> None:
        if not self.path.exists():
            raise IndexFormatError(
                f"no index at {self.path} (build one with: semsearch index PATH)"
            )
        if not self.path.is_dir():
            raise UsageError(f"{self.path} is not a directory")

    def stamp(self) -> tuple[int, int, int]:
        """CURRENT's identity as one stat sees it (inode, mtime, size): every publish
        replaces the file, so a changed stamp means a new live generation. Cheap enough to
        check per request; OSError when the pointer (or the directory) is gone."""
        st = os.stat(self.path / POINTER)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def pointer(self) -> tuple[str, ...]:
        """CURRENT's content (generation name and manifest digest): cheap to compare."""
        return tuple(self._pointer())

    def _pointer(self) -> list[str]:
        """CURRENT's words: the generation's name and its manifest's SHA-256."""
        pointer = self.path / POINTER
        if pointer.is_symlink():
            raise IndexFormatError(f"{self.path}: CURRENT is a symbolic link; refusing to follow")
        try:
            with open(pointer, "rb") as f:
                raw = f.read(4096)
            parts = raw.decode("utf-8").split()
        except FileNotFoundError:
            raise IndexFormatError(
                f"{self.path} is not a semsearch index (no CURRENT file)"
            ) from None
        except IsADirectoryError:
            raise IndexFormatError(f"{self.path}: CURRENT is a directory, not a file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{self.path}: CURRENT cannot be read ({exc})") from None
        if not parts:
            raise IndexFormatError(f"{self.path}: CURRENT file is empty or damaged")
        return parts

    def manifest(self, gen: Path | None = None) -> tuple[Path, Manifest]:
        """The live generation (or ``gen``) and its manifest, checked against the digest
        kept in CURRENT."""
        if gen is None:
            live = self.live()
            return live.gen, live.manifest
        return gen, self._checked_manifest(gen, self._pointer())

    def _checked_manifest(self, gen: Path, parts: Sequence[str]) -> Manifest:
        path = gen / MANIFEST
        if path.is_symlink():
            raise IndexFormatError(f"{path}: manifest is a symbolic link; refusing to read it")
        checkable = len(parts) == 2 and parts[0] == gen.name and path.is_file()
        if not checkable:
            return Manifest.from_file(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise IndexFormatError(f"{path}: manifest cannot be read ({exc})") from None
        if hashlib.sha256(raw).hexdigest() != parts[1]:
            raise IndexFormatError(f"{path}: manifest checksum does not match CURRENT (altered)")
        return Manifest.from_bytes(raw, path)

    @contextlib.contextmanager
    def lock(self, timeout: float = 10.0) -> Iterator[None]:
        """Exclusive writer lock (between processes and between threads of one process);
        waits up to ``timeout`` seconds, then fails clearly."""
        from filelock import FileLock, Timeout  # writers only: not on the search path

        self._check_ours()
        lock = FileLock(self.path / LOCK, preserve_lock_file=True)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=timeout, poll_interval=0.1)
        except Timeout:
            raise IndexLockedError(
                f"{self.path} is being written by another process; try again later"
            ) from None
        except OSError as exc:
            raise UsageError(
                f"cannot use {self.path} as an index directory: {exc.strerror or exc}"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def watch_lock(self, on_acquired: Callable[[int], None] | None = None) -> BaseFileLock:
        """The one-watcher-per-index lock, not yet taken (``acquire(timeout=0)`` it);
        ``on_acquired(fd)`` may write to the lock file, which the holder keeps."""
        from filelock import FileLock

        return FileLock(self.path / WATCH_LOCK, preserve_lock_file=True, on_acquired=on_acquired)

    @property
    def fresh_file(self) -> Path:
        """Where the fingerprint of folders last found in sync is kept."""
        return self.path / FRESH

    def _check_ours(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path} exists and is not a directory")
        if self.path.is_dir() and not self.exists():
            foreign = [
                p.name
                for p in self.path.iterdir()
                if p.name != LOCK and not p.name.startswith((_TMP_PREFIX, _GEN_PREFIX))
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

    def publish(
        self,
        tmp: Path,
        manifest: Manifest,
        kept: Sequence[SegmentRef] = (),
        tombstones: Mapping[str, Sequence[str]] | None = None,
        own_live: tuple[int, int] = (-1, -1),
        skipped: Sequence[SkippedFile] = (),
    ) -> Path:
        """Seal ``tmp`` (tombstones, checksums, manifest, fsync), rename it live, swap CURRENT,
        tidy up. The generation searches the ``kept`` segments of earlier generations, then
        its own (the segment files in ``tmp``, if any); ``tombstones`` hide documents in
        kept segments. A manifest of an older format (a copy) is published as it is."""
        gen = self._next()
        manifest_bytes = _seal(tmp, manifest, gen.name, kept, tombstones, own_live, skipped)
        os.rename(tmp, gen)
        pointer_tmp = self.path / f"{_TMP_PREFIX}CURRENT-{os.getpid()}"
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        try:
            write_synced(pointer_tmp, f"{gen.name} {digest}\n".encode())
            os.replace(pointer_tmp, self.path / POINTER)
        except BaseException:  # not published: CURRENT still names the previous generation
            pointer_tmp.unlink(missing_ok=True)
            shutil.rmtree(gen, ignore_errors=True)
            raise
        try:  # published: a failure from here on must not be reported as "unchanged"
            fsync_path(self.path)
            self.cleanup(keep=gen)
        except OSError as exc:
            log.warning("published %s, but could not sync or tidy %s: %s", gen.name,
                        self.path, exc.strerror or exc)  # fmt: skip
        return gen

    def add_segment(self, tmp: Path, manifest: Manifest) -> SegmentRef:
        """Seal ``tmp`` (segment files) as a generation of its own that CURRENT does not
        name: a segment for the generation published next (which must list it)."""
        gen = self._next()
        _seal(tmp, manifest, gen.name, (), None)
        os.rename(tmp, gen)
        return segment_refs(gen, Manifest.from_file(gen / MANIFEST))[0]

    def _next(self) -> Path:
        number = max((_gen_number(p.name) for p in self.path.iterdir()), default=0) + 1
        return self.path / f"{_GEN_PREFIX}{number:06d}"

    def cleanup(self, keep: Path | None = None) -> None:
        """Remove interrupted builds and generations older than the last ``_KEEP_OLD``."""
        gens = sorted(
            (p for p in self.path.iterdir() if p.name.startswith(_GEN_PREFIX)),
            key=lambda p: _gen_number(p.name),
        )
        live = keep.name if keep else None
        now = time.time()
        superseded = list(itertools.pairwise(gens))[: max(len(gens) - 1 - _KEEP_OLD, 0)]
        doomed = {
            g.name
            for g, successor in superseded
            if g.name != live and now - _published_at(successor) > _GRACE_SECONDS
        }
        # A generation's segment lives on while a generation kept still searches it.
        used = {s for g in gens if g.name not in doomed for s in _segments_of(g)}
        for g in gens:
            if g.name in doomed and g.name not in used and "*" not in used:
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
        gen, m = self.manifest()
        return generation_size(gen, m)

    def open_store(self) -> SegmentedStore:
        """The live generation's documents and chunks, for reading (close it after)."""
        gen, m = self.manifest()
        return SegmentedStore.open(gen, m)


def generation_size(gen: Path, m: Manifest) -> int:
    """Bytes of a generation's own files and of the segments it searches."""
    total = sum(p.stat().st_size for p in gen.iterdir() if p.is_file())
    for seg in segment_refs(gen, m):
        if seg.name != gen.name:
            total += sum(int(f["size"]) for f in seg.files.values())
    return total


def _seal(
    tmp: Path,
    manifest: Manifest,
    name: str,
    kept: Sequence[SegmentRef],
    tombstones: Mapping[str, Sequence[str]] | None,
    own_live: tuple[int, int] = (-1, -1),
    skipped: Sequence[SkippedFile] = (),
) -> bytes:
    """Write tombstones, skipped files and the manifest (with every file's checksum) into
    ``tmp``, fsync."""
    if tombstones:
        write_synced(tmp / TOMBSTONES, json.dumps(tombstones, sort_keys=True).encode())
    if skipped:
        rows = sorted(list(f) for f in skipped)
        write_synced(tmp / SKIPPED, json.dumps(rows, ensure_ascii=False).encode())
    files = {
        p.name: {"size": p.stat().st_size, "sha256": file_digest(p)}
        for p in sorted(tmp.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    fields: dict[str, object] = {**asdict(manifest), "files": files}
    if manifest.format_version >= 3:
        own = {n: f for n, f in files.items() if n in SEGMENT_FILES}
        refs = [*kept, SegmentRef(name, _rows_of(tmp), own, *own_live)] if own else list(kept)
        fields["segments"] = tuple(r.to_data() for r in refs)
    manifest_bytes = Manifest(**fields).to_json().encode()  # type: ignore[arg-type]
    write_synced(tmp / MANIFEST, manifest_bytes)
    for p in tmp.iterdir():
        fsync_path(p)
    fsync_path(tmp)
    return manifest_bytes


def _rows_of(seg: Path) -> int:
    """Rows of a segment's vector file (its header says; checked again when it is opened)."""
    from .npy import memmap_npy

    try:
        return int(memmap_npy(seg / VECTORS).shape[0])
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{seg / VECTORS}: cannot be read ({exc})") from None


def _segments_of(gen: Path) -> set[str]:
    """Names of the segments a generation searches (read without trusting it: a damaged
    manifest keeps every segment, since what it referenced cannot be known)."""
    try:
        m = Manifest.from_file(gen / MANIFEST)
    except IndexFormatError:
        return {"*"} if gen.is_dir() else set()
    return {s.name for s in segment_refs(gen, m)}


def _published_at(gen: Path) -> float:
    """When ``gen`` went live (its manifest is the last file written before the swap)."""
    try:
        return (gen / MANIFEST).stat().st_mtime
    except OSError:
        return 0.0


def _gen_number(name: str) -> int:
    if name.startswith(_GEN_PREFIX) and name[len(_GEN_PREFIX) :].isdigit():
        return int(name[len(_GEN_PREFIX) :])
    return 0
