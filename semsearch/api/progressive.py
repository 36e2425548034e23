"""Progressive indexing: searchable in seconds, then upgraded in place to full quality.

Phase 1 is a normal build with the static model (keyword + static vectors), whose manifest
records the transformer it will be upgraded to. Phase 2 (:func:`upgrade_index`) embeds every
stored chunk again with that transformer, through the embedding cache, and publishes the
result as one generation: queries use the static vectors until that instant and the
transformer's from then on, never both. The chunks are the same (the static model chunks
with its teacher's tokenizer and limit) and so are their ids and terms, so the upgraded
index equals a transformer build of the same files. A killed phase 2 leaves phase 1
answering; run again, it finds the chunks already embedded in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from .. import config as _config
from .. import indexing as _build
from ..embed import DEFAULT_PRECISION, STATIC_MODEL, check_recorded_model, models
from ..embed.models import STATIC_TEACHER
from ..errors import UsageError
from ..indexing import writer as _writer
from ..indexing.settings import Requested
from ..store.layout import IndexDir
from ..store.manifest import Manifest


def phase_one(
    requested: Requested, manifest: Manifest | None
) -> tuple[Requested, Mapping[str, str] | None]:
    """The request for phase 1 and the upgrade to record: a new index is built with the
    static model, to be upgraded to the transformer asked (the static model's teacher, the
    only one that chunks a tree as it does). An index that exists keeps its own model: a
    static one without a pending upgrade gets one, anything else is only updated."""
    if not _is_teacher(requested.model):
        raise UsageError(
            f"progressive indexing upgrades the static model to {STATIC_TEACHER}, the model "
            "it is distilled from (and chunks like); it cannot upgrade to another model"
        )
    target = {
        "model": STATIC_TEACHER,
        "precision": requested.precision or DEFAULT_PRECISION,
    }
    if manifest is None:
        return replace(requested, model=STATIC_MODEL, precision=None), target
    own = replace(requested, model=None, precision=None)  # the index's own model
    return own, target if manifest.model == STATIC_MODEL and not manifest.upgrade else None


def _is_teacher(model: str | None) -> bool:
    """The static model's teacher (the bundled model), by any of its names."""
    return STATIC_TEACHER == models.DEFAULT_MODEL and models.is_default_model(model)


def pending_upgrade(index: str | os.PathLike[str] | None = None) -> str | None:
    """The model phase 2 will re-embed the index with; None when the index is complete
    (or there is no index)."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    if not index_dir.exists():
        return None
    upgrade = index_dir.manifest()[1].upgrade
    return upgrade["model"] if upgrade else None


def upgrade_index(
    index: str | os.PathLike[str] | None = None, *, progress: _build.Progress | None = None
) -> _build.BuildStats | None:
    """Phase 2: embed every chunk again with the transformer the index is waiting for and
    publish it at once (``progress`` counts chunks). None when no upgrade is pending."""
    index_dir = IndexDir(index if index is not None else _config.load().index_dir)
    manifest = index_dir.manifest()[1]
    if not manifest.upgrade:
        return None
    model, precision = manifest.upgrade["model"], manifest.upgrade["precision"]
    check_recorded_model(model, index_dir.path)  # loaded on the index's word: known only
    writer = _writer.open_writer(
        index_dir.path, manifest, Requested(model=model, precision=precision), rebuild=True
    )
    try:
        return _build.build(
            index_dir, _build.Changes(reembed=True), writer.engine, writer.settings,
            progress=progress,
        )  # fmt: skip
    finally:
        writer.close()
