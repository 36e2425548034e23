"""Searching: dense, keyword and hybrid candidates, fused and shaped into a page of hits.

Names load on first use (PEP 562), so the light :mod:`.request` (the search options every
front end declares its flags and schemas from) imports without numpy or the store. The
ranking function is ``semsearch.search.retrieve.retrieve`` (the package attribute of that
name is its module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..util import lazy_exports

if TYPE_CHECKING:
    from .request import DEFAULT_MODE, GROUPINGS, MAX_K, MODES, Grouping, Mode, SearchOptions
    from .retrieve import CANDIDATES, Options, Ranked

_WHERE = {
    **dict.fromkeys(
        ("DEFAULT_MODE", "GROUPINGS", "MAX_K", "MODES", "Grouping", "Mode", "SearchOptions"),
        ".request",
    ),
    **dict.fromkeys(("CANDIDATES", "Options", "Ranked"), ".retrieve"),
}

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
    "SearchOptions",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
