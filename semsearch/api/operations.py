"""Whole operations on an index directory, as the CLI and scripts use them."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import config as _config
from .. import indexing as _build
from ..embed import Embedder
from ..errors import IndexFormatError
from ..indexing import writer as _writer
from ..indexing.settings import Requested
from ..ingest.discover import DEFAULT_MAX_FILE_SIZE, discover_files
from ..ingest.discover import parse_size as parse_size  # "10MB" -> bytes, for front ends
from ..ingest.read import expand_items
from ..store.layout import IndexDir
from ..store.manifest import Manifest
from . import names, reading
from .directory import sample_index_dir
from .hits import IndexInfo, file_state
from .index import SemanticIndex

log = logging.getLogger("semsearch")


def index_paths(
    paths: Sequence[str | os.PathLike[str]],
    index: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    backend: str = "auto",
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    glob: str | Sequence[str] | None = None,
    progress: _build.Progress | None = None,
    embedder: Embedder | None = None,
    index_type: str | None = None,
    precision: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    rebuild: bool = False,
    excludes: Sequence[str] = (),
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    text_field: str | None = None,
    follow_symlinks: bool = False,
    progressive: bool = False,
) -> _build.BuildStats:
    """Build or update the on-disk index at ``index`` from files, streaming in batches.

    Settings left as None keep the existing index's own; naming a different one is an error
    unless ``rebuild``, which re-embeds every document already indexed under the new
    settings. File links are followed only into ``paths`` unless ``follow_symlinks``.
    ``engine="ray"`` hands reading, chunking and embedding to a Ray cluster.
    ``progressive`` builds a new index as phase 1 (keyword + static vectors, searchable at
    once); :func:`semsearch.api.progressive.upgrade_index` then brings it to the
    transformer's quality (see :mod:`semsearch.api.progressive`).
    """
    cfg = _config.load()
    globs = names.globs(glob)
    found = discover_files(
        paths, globs, excludes=excludes, max_file_size=max_file_size,
        follow_symlinks=follow_symlinks,
    )  # fmt: skip
    files = expand_items(found.files, text_field)
    roots = names.roots(paths)
    index_dir = IndexDir(index if index is not None else cfg.index_dir)
    manifest = _readable_manifest(index_dir)
    requested = Requested(model, precision, chunk_tokens, overlap, backend, index_type)
    upgrade = None
    if progressive:
        from .progressive import phase_one

        requested, upgrade = phase_one(requested, manifest)
    writer = _writer.open_writer(
        index_dir.path, manifest, requested, embedder=embedder, rebuild=rebuild,
        engine=engine, ray_address=ray_address, ray_workers=ray_workers,
    )  # fmt: skip
    changes = _build.Changes(
        items=files, roots=roots, rebuild=rebuild, globs=globs, excludes=tuple(excludes),
        follow_symlinks=follow_symlinks, upgrade=upgrade,
    )  # fmt: skip
    try:
        stats = _build.build(index_dir, changes, writer.engine, writer.settings, progress=progress)
        return dataclasses.replace(stats, skipped=stats.skipped + len(found.skipped))
    finally:
        writer.close()


def _readable_manifest(index_dir: IndexDir) -> Manifest | None:
    """The index's manifest; None when there is none yet, or when it is damaged (the build
    then stops with the full reason before changing anything)."""
    if not index_dir.exists():
        return None
    try:
        return index_dir.manifest()[1]
    except IndexFormatError:
        return None


def refresh_index(
    index: str | os.PathLike[str] | None = None,
    *,
    progress: _build.Progress | None = None,
    rebuild: bool = False,
) -> _build.BuildStats:
    """Bring an index up to date with the folders and files it was built from: new and
    changed files are embedded, deleted ones dropped. A root that is missing right now
    (an unmounted disk) is skipped with a warning and its documents kept.

    The check comes first and costs a walk and a ``stat`` per file; the model is loaded and
    the embedding cache opened only when something changed (see :mod:`semsearch.watch`).
    """
    from ..watch import delta as _delta

    cfg = _config.load()
    index_dir = IndexDir(index if index is not None else cfg.index_dir)
    if rebuild:
        return _rebuild_remembered(index_dir, progress)
    result = _delta.refresh(index_dir, _writer.engine_maker(index_dir.path), progress=progress)
    _delta.warn_missing(result.missing)
    return result.stats


def _rebuild_remembered(index_dir: IndexDir, progress: _build.Progress | None) -> _build.BuildStats:
    """``semsearch index --rebuild`` with no paths: re-embed everything from the remembered
    roots (no cheap check: every document is embedded again anyway)."""
    from ..watch import delta as _delta

    delta = _delta.check(index_dir, full=True)  # every file listed, never the fingerprint
    _delta.warn_missing(delta.missing)
    manifest = delta.manifest
    changes = _build.Changes(
        items=delta.items, roots=[Path(r) for r in delta.roots], rebuild=True,
        globs=manifest.globs, excludes=manifest.excludes,
        follow_symlinks=manifest.follow_symlinks,
    )  # fmt: skip
    writer = _writer.open_writer(index_dir.path, manifest, rebuild=True)
    try:
        return _build.build(index_dir, changes, writer.engine, writer.settings, progress=progress)
    finally:
        writer.close()


def remove_documents(
    sources: Sequence[str], index: str | os.PathLike[str] | None = None, *, glob: bool = False
) -> int:
    """Remove documents by exact source path or id (or by glob when ``glob``) from the
    on-disk index."""
    return SemanticIndex.load(index).delete(sources, glob=glob)


def index_info(index: str | os.PathLike[str] | None = None) -> IndexInfo:
    """What the index at ``index`` holds, read from its manifest and file list: neither the
    model nor the embedding cache is touched (``semsearch info`` on a read-only cache)."""
    from ..index import resolve_backend
    from ..store.manifest import FAISS, check_files, segment_refs

    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    gen, manifest = index_dir.manifest()
    problems = [p for p in check_files(gen, manifest) if FAISS not in p.split(":", 1)[0]]
    if problems:
        raise IndexFormatError(f"index at {index_dir.path} is damaged: {problems[0]}")
    faiss = any(FAISS in s.files for s in segment_refs(gen, manifest))
    backend = resolve_backend("auto") if faiss else "numpy"
    return reading.describe_generation(gen, manifest, backend, index_dir.path)


def optimize_index(index: str | os.PathLike[str] | None = None) -> _build.BuildStats:
    """Merge every segment of the on-disk index into one, dropping deleted rows. A segment
    whose chunk database is damaged is left out with a warning, so the intact ones make a
    working index again (index the left-out files again to get them back)."""
    cfg = _config.load()
    index_dir = IndexDir(index if index is not None else cfg.index_dir)
    from ..watch.delta import LazyEngine

    manifest = index_dir.manifest()[1]
    writer = _writer.open_writer(index_dir.path, manifest)
    engine = LazyEngine(lambda _: writer.engine, manifest)  # model: damaged vectors only
    try:
        return _build.build(index_dir, _build.Changes(compact=True), engine, writer.settings)
    finally:
        engine.close()


def ensure_sample_index(progress: _build.Progress | None = None) -> tuple[Path, bool]:
    """The bundled samples' own index, built on first use; returns (path, built now)."""
    where = sample_index_dir()
    if IndexDir(where).exists():
        return where, False
    index_paths([_config.bundled_seeds()], where, progress=progress)
    return where, True


@dataclass(frozen=True)
class SourceStatus:
    """One indexed document as ``semsearch ls`` shows it. ``status`` compares the file on
    disk with what was indexed: ok, changed, missing, or "text" (not from a file)."""

    doc_id: str
    source: str
    kind: str
    title: str
    chunks: int
    size: int | None
    status: str


def list_sources(index: str | os.PathLike[str] | None = None) -> list[SourceStatus]:
    """Every document of the index at ``index`` with its type, chunks, size and status."""

    cfg = _config.load()
    store = IndexDir(index if index is not None else cfg.index_dir).open_store()
    out = []
    try:
        for d in store.documents():
            if d.size is None:
                status = "text"
            else:
                indexed = (d.size, d.mtime_ns or 0, d.inode or 0)
                state = file_state(d.source, indexed, d.sha256)
                status = {None: "ok", "deleted": "missing"}.get(state, "changed")
            out.append(
                SourceStatus(d.doc_id, d.source, d.kind, d.title, d.n_chunks, d.size, status)
            )
    finally:
        store.close()
    return out
