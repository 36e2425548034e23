"""The manifest of a generation: what was built, with what, and a checksum of every file.

A manifest is untrusted input (a damaged disk, a hand edit, an attacker): every field is
checked for its type before use, file names must be one of the few files a generation holds,
and a problem becomes one :class:`IndexFormatError` line.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import IndexFormatError
from ..util import file_digest

#: 2 added pages, sections, titles, file stats and remembered roots; 3 made a generation a
#: list of segments plus tombstones; 4 shrank the segments' chunk databases (compact
#: postings, no stored chunk terms, binary hashes: ``store.postings``). Older versions are
#: still read (1 and 2 as one segment), so they can be updated or rebuilt without losing
#: what they hold; their segments are rewritten by the next write.
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
#: The index directory's pointer to the live generation, and the writers' lock file.
POINTER = "CURRENT"
LOCK = "LOCK"
#: Held by the one watcher of an index (its pid inside).
WATCH_LOCK = "WATCH"
#: Progressive indexing's one phase-2 worker: its lock (pid inside), progress and log.
PHASE2_LOCK = "PHASE2"
PHASE2_STATUS = "phase2.json"
PHASE2_LOG = "phase2.log"
#: The fingerprint of the folders last found in sync (semsearch.watch.fingerprint).
FRESH = "FRESH"
MANIFEST = "manifest.json"
CHUNKS = "chunks.sqlite"
VECTORS = "vectors.npy"
FAISS = "index.faiss"
#: Deleted document ids per segment, as of this generation (JSON: segment name -> ids).
TOMBSTONES = "tombstones.json"
#: Files a build could not read, with their stat, as of this generation (JSON list).
SKIPPED = "skipped.json"
#: The files of one segment; a generation's own segment lives in its directory.
SEGMENT_FILES = (CHUNKS, VECTORS, FAISS)
#: The only files a generation may list; anything else in a manifest is refused.
KNOWN_FILES = (*SEGMENT_FILES, TOMBSTONES, SKIPPED)
#: On every load, files up to this size are checksummed too; bigger ones only by
#: ``semsearch info --verify`` and before a build carries their rows forward.
VERIFY_ON_LOAD_BYTES = 32 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    #: What the index was built from, so it can be refreshed without being told again.
    roots: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    #: Version 3: the segments searched, oldest first (see :class:`SegmentRef`).
    segments: tuple[Mapping[str, Any], ...] = ()
    #: Follow file links wherever they point (by default only into the roots).
    follow_symlinks: bool = False
    #: Progressive indexing: the model (``{"model", "precision"}``) phase 2 re-embeds every
    #: chunk with, while the index answers with the vectors of ``model`` (phase 1). None
    #: when the index is complete.
    upgrade: Mapping[str, str] | None = None

    @property
    def phase(self) -> str:
        """``phase-1`` while transformer vectors are pending (see ``upgrade``), else
        ``complete``."""
        return "phase-1" if self.upgrade else "complete"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise IndexFormatError(f"{path}: manifest is missing") from None
        except OSError as exc:
            raise IndexFormatError(f"{path}: manifest is not valid JSON ({exc})") from None
        return cls.from_bytes(raw, path)

    @classmethod
    def from_bytes(cls, raw: bytes, path: Path) -> Manifest:
        """Parse a manifest already read (``path`` names it in errors)."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            reason = "too deeply nested" if isinstance(exc, RecursionError) else exc
            raise IndexFormatError(f"{path}: manifest is not valid JSON ({reason})") from None
        return cls.from_data(data, path)

    @classmethod
    def from_data(cls, data: Any, path: Path) -> Manifest:
        if not isinstance(data, dict):
            raise IndexFormatError(f"{path}: manifest is not a JSON object")
        version = data.get("format_version")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise IndexFormatError(
                f"{path}: index format version {version!r} is not supported "
                f"(this semsearch reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                "build a new index"
            )
        required = [n for n, f in cls.__dataclass_fields__.items() if _required(f)]
        missing = sorted(set(required) - data.keys())
        if missing:
            raise IndexFormatError(f"{path}: manifest lacks {', '.join(missing)}")
        values = {}
        for name in cls.__dataclass_fields__:
            if name in data:
                values[name] = _check_field(name, data[name], path)
        _check_files(values.get("files", {}), path, version >= 3)
        for seg in values.get("segments", ()):
            _check_segment(seg, path)
        if version >= 3:
            _check_own(values.get("files", {}), values.get("segments", ()), path)
        return cls(**values)


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


_INTS = {"format_version", "dim", "chunk_tokens", "overlap", "documents", "chunks", "next_chunk_id"}
_STRS = {"semsearch_version", "model", "precision", "backend", "index_type"}
_LISTS = {"roots", "globs", "excludes"}


def _check_field(name: str, value: Any, path: Path) -> Any:
    def bad(expected: str) -> IndexFormatError:
        return IndexFormatError(f"{path}: manifest field {name!r} is not {expected}")

    if name in _INTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a non-negative integer")
        return value
    if name in _STRS:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if name in _LISTS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if name == "follow_symlinks":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if name in ("created", "recall_at_10"):
        if value is None and name == "recall_at_10":
            return None
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise bad("a number")
        return float(value)
    if name in ("index_params", "files"):
        if not isinstance(value, dict):
            raise bad("an object")
        return value
    if name == "upgrade":
        if value is None:
            return None
        if (
            not isinstance(value, dict)
            or set(value) != {"model", "precision"}
            or not all(isinstance(v, str) and v for v in value.values())
        ):
            raise bad("an object naming a model and a precision")
        return dict(value)
    if name == "segments":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise bad("a list of objects")
        return tuple(value)
    raise bad("known")  # pragma: no cover - every declared field is handled above


def _check_files(files: Mapping[str, Any], path: Path, segmented: bool = False) -> None:
    """File entries name only a generation's own files, with a size and a SHA-256."""
    for name, entry in files.items():
        if name not in KNOWN_FILES:
            raise IndexFormatError(f"{path}: manifest lists an unknown file {name!r}")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("size"), int)
            or isinstance(entry.get("size"), bool)
            or entry["size"] < 0
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256.fullmatch(entry["sha256"])
        ):
            raise IndexFormatError(f"{path}: manifest entry for {name} is malformed")
    if segmented:  # a generation may only delete (no segment of its own) or hold nothing yet
        if CHUNKS in files and VECTORS not in files:
            raise IndexFormatError(f"{path}: manifest does not list {VECTORS}")
        return
    for name in (CHUNKS, VECTORS):
        if files and name not in files:
            raise IndexFormatError(f"{path}: manifest does not list {name}")
    if not files:
        raise IndexFormatError(f"{path}: manifest lists no files")


class SegmentRef(NamedTuple):
    """One segment a generation searches: the generation directory holding its files,
    its row count (dead rows included) and its files' sizes and checksums."""

    name: str
    rows: int
    files: Mapping[str, Mapping[str, Any]]
    #: Live documents and chunks in this generation (tombstones applied); -1: not recorded.
    documents: int = -1
    chunks: int = -1

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "files": dict(self.files),
                "documents": self.documents, "chunks": self.chunks}  # fmt: skip


def segment_refs(gen: Path, m: Manifest) -> tuple[SegmentRef, ...]:
    """The segments of generation ``gen``; a version 1 or 2 generation is one segment."""
    if m.format_version < 3:
        own = {n: f for n, f in m.files.items() if n in SEGMENT_FILES}
        return (SegmentRef(gen.name, m.chunks, own, m.documents, m.chunks),)
    return tuple(
        SegmentRef(s["name"], s["rows"], s["files"], _count(s, "documents"), _count(s, "chunks"))
        for s in m.segments
    )


def _count(seg: Mapping[str, Any], key: str) -> int:
    value = seg.get(key, -1)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


_SEGMENT_NAME = re.compile(r"gen-\d{6,}")


def _check_segment(seg: Mapping[str, Any], path: Path) -> None:
    name, rows = seg.get("name"), seg.get("rows")
    if not isinstance(name, str) or not _SEGMENT_NAME.fullmatch(name):
        raise IndexFormatError(f"{path}: manifest names a segment {str(name)[:40]!r}")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise IndexFormatError(f"{path}: manifest segment {name} has no row count")
    files = seg.get("files")
    if not isinstance(files, dict) or set(files) - set(SEGMENT_FILES):
        raise IndexFormatError(f"{path}: manifest segment {name} lists unknown files")
    _check_files(files, path)


def _check_own(files: Mapping[str, Any], segments: Sequence[Mapping[str, Any]], path: Path) -> None:
    """A generation searches at least one segment; its own is listed with its own files."""
    if not segments:
        raise IndexFormatError(f"{path}: manifest lists no segments")
    own = [s for s in segments if s.get("name") == path.parent.name]
    mine = {n: f for n, f in files.items() if n in SEGMENT_FILES}
    if (own and own[0].get("files") != mine) or (mine and not own):
        raise IndexFormatError(f"{path}: manifest does not list its own segment's files")


def check_files(gen: Path, manifest: Manifest, *, checksums: bool = False) -> list[str]:
    """Problems with a generation's files and its segments': missing, not a plain file, wrong
    size, or wrong checksum (always for small files, for every file when ``checksums``).
    A problem in another generation's segment is named ``gen-NNNNNN/file: ...``."""
    problems = _check_dir(gen, manifest.files, checksums)
    if manifest.format_version >= 3:
        for seg in segment_refs(gen, manifest):
            if seg.name != gen.name:
                found = _check_dir(gen.parent / seg.name, seg.files, checksums)
                problems += [f"{seg.name}/{p}" for p in found]
    return problems


def _check_dir(gen: Path, files: Mapping[str, Any], checksums: bool) -> list[str]:
    problems = []
    if gen.is_symlink():
        return [f"{gen.name}: is a symbolic link"]
    for name, info in sorted(files.items()):
        path = gen / name
        if path.is_symlink() or not path.is_file():
            problems.append(f"{name}: missing or not a regular file")
            continue
        st = path.stat()
        if st.st_size != info["size"]:
            problems.append(f"{name}: size {st.st_size} bytes, manifest says {info['size']}")
        elif (checksums or st.st_size <= VERIFY_ON_LOAD_BYTES) and not _intact(path, st, info):
            problems.append(f"{name}: checksum does not match the manifest (file altered)")
    return problems


#: Files found intact in this process. A segment's files never change once published, so
#: an unchanged (inode, size, mtime) need not be read again when the next generation (or
#: reader) lists the same segment: opening after a small write costs the new files only.
_VERIFIED: set[tuple[str, int, int, int, str]] = set()


def _intact(path: Path, st: os.stat_result, info: Mapping[str, Any]) -> bool:
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, str(info["sha256"]))
    if key in _VERIFIED:
        return True
    if file_digest(path) != info["sha256"]:
        return False
    if len(_VERIFIED) > 100_000:
        _VERIFIED.clear()
    _VERIFIED.add(key)
    return True


def file_ok(seg: Path, files: Mapping[str, Mapping[str, Any]], name: str) -> bool:
    """Full check of one file of a segment against its checksum, whatever its size."""
    info = files.get(name)
    path = seg / name
    if info is None or path.is_symlink() or not path.is_file():
        return False
    return path.stat().st_size == info["size"] and file_digest(path) == info["sha256"]
