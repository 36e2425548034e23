"""What a front end may ask of an index directory without opening the index: whether one is
there, a cheap stamp of its live generation, a checksum check of its files, and the folders
it remembers. The directory's layout (file names, the pointer) stays in :mod:`semsearch.store`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import config as _config
from ..store.layout import IndexDir
from ..store.manifest import check_files

PathLike = str | os.PathLike[str]


def default_index_dir() -> Path:
    """``$SEMSEARCH_INDEX``, else ``$XDG_DATA_HOME/semsearch/index`` (~/.local/share/...)."""
    return _config.load().index_dir


def sample_index_dir() -> Path:
    """Where the bundled sample articles are indexed: apart from the user's own index, so
    they never show up among the user's results; one per seeds folder, so a reinstall that
    moves them (``seeds/`` or ``semsearch/_seeds``) gets an index of the files it has."""
    seeds = str(_config.bundled_seeds()).encode("utf-8", "surrogateescape")
    return _config.load().cache_dir / f"samples-index-{hashlib.sha256(seeds).hexdigest()[:12]}"


def start_loading_model(where: PathLike) -> None:
    """Load the model the index at ``where`` records, as opening it does (the writer's own
    loader, so the same shared instance), before the caller imports the rest of what opening
    and searching need: the ONNX session, made in a thread of its own, is then ready sooner.
    Any failure (no index, a model loaded only when named) is left for the opening to
    report."""
    from ..embed import load_recorded

    try:
        m = IndexDir(where).live().manifest
        load_recorded(m.model, m.precision, m.dim, Path(where))
    except Exception:  # nothing was cached: opening meets it again, and says it
        return


def index_exists(where: PathLike) -> bool:
    """True when ``where`` holds an index (a live-generation pointer)."""
    return IndexDir(where).exists()


def check_index(where: PathLike) -> None:
    """Nothing when ``where`` has a live generation; else the error naming what is wrong
    (no directory, not an index, a damaged pointer)."""
    IndexDir(where).current()


def live_stamp(where: PathLike) -> tuple[int, int, int]:
    """Changes whenever a new generation goes live (one stat; compare with ``==``).
    OSError when the index directory or its pointer is gone."""
    return IndexDir(where).stamp()


def verify_files(where: PathLike) -> tuple[str, list[str]]:
    """The live generation's name and every file problem found by checking sizes and
    checksums against its manifest (empty when all match). Works on an index too damaged
    to open."""
    gen, manifest = IndexDir(where).manifest()
    return gen.name, list(check_files(gen, manifest, checksums=True))


def indexed_roots(where: PathLike) -> frozenset[str]:
    """The folders and files the index at ``where`` was built from (empty when none yet)."""
    index_dir = IndexDir(Path(where))
    return frozenset(index_dir.manifest()[1].roots) if index_dir.exists() else frozenset()
