"""Building an index: plan what changed, chunk and embed it (locally or on Ray), write a
generation.

Names load on first use (PEP 562): opening an index to search it reaches
:mod:`.writer` and :mod:`.settings` only, never the build machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .builder import build
    from .engine import Engine, LocalEngine, Processed
    from .manifests import new_manifest
    from .settings import BuildStats, Changes, ChunkParams, Item, Progress, Requested, Settings

_WHERE = {
    "build": ".builder",
    "new_manifest": ".manifests",
    **dict.fromkeys(("Engine", "LocalEngine", "Processed"), ".engine"),
    **dict.fromkeys(
        ("BuildStats", "Changes", "ChunkParams", "Item", "Progress", "Requested", "Settings"),
        ".settings",
    ),
}

__all__ = [
    "BuildStats",
    "Changes",
    "ChunkParams",
    "Engine",
    "Item",
    "LocalEngine",
    "Processed",
    "Progress",
    "Requested",
    "Settings",
    "build",
    "new_manifest",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
