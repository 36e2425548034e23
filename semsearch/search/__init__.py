"""Searching: dense, keyword and hybrid candidates, fused and shaped into a page of hits."""

from .retrieve import (
    CANDIDATES,
    DEFAULT_MODE,
    GROUPINGS,
    MAX_K,
    MODES,
    Grouping,
    Mode,
    Options,
    Ranked,
    retrieve,
)

__all__ = [
    "CANDIDATES",
    "DEFAULT_MODE",
    "GROUPINGS",
    "MAX_K",
    "MODES",
    "Grouping",
    "Mode",
    "Options",
    "Ranked",
    "retrieve",
]
