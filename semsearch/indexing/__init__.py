"""Building an index: plan what changed, chunk and embed it (locally or on Ray), write a
generation."""

from .builder import build, new_manifest
from .engine import Engine, LocalEngine, Processed
from .settings import BuildStats, Changes, ChunkParams, Item, Progress, Requested, Settings

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
