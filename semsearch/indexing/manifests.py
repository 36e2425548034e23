"""What a generation's manifest says: its settings, the vector index built, and the
sources (roots, globs, excludes) a later refresh walks again."""

from __future__ import annotations

import time
from typing import Any

from .._version import __version__
from ..index import VectorIndex
from ..store.manifest import FORMAT_VERSION, Manifest
from .settings import Changes, Settings


def remembered_sources(
    old: Manifest | None, changes: Changes
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]:
    """Roots the index was built from (old ones kept), and the latest discovery options."""
    roots = dict.fromkeys(old.roots if old else ())
    roots.update(dict.fromkeys(str(r) for r in changes.roots))
    if changes.roots:
        return tuple(roots), tuple(changes.globs), tuple(changes.excludes), changes.follow_symlinks
    if old is None:
        return tuple(roots), (), (), False
    return tuple(roots), old.globs, old.excludes, old.follow_symlinks


def new_manifest(
    s: Settings,
    documents: int,
    chunks: int,
    next_chunk_id: int,
    index: VectorIndex,
    **sources: Any,
) -> Manifest:
    """A manifest for a generation built with settings ``s`` into ``index``."""
    return Manifest(
        format_version=FORMAT_VERSION,
        semsearch_version=__version__,
        model=s.model,
        precision=s.precision,
        dim=s.dim,
        chunk_tokens=s.chunk_tokens,
        overlap=s.overlap,
        backend=s.backend,
        index_type=index.index_type,
        index_params={**index.params, "requested": s.index_type},
        recall_at_10=index.recall,
        documents=documents,
        chunks=chunks,
        next_chunk_id=next_chunk_id,
        created=time.time(),
        **sources,
    )
