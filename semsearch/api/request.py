"""The search request every front end builds: declared once in :mod:`semsearch.search.request`
and offered here, to the layers above the API (CLI, servers), which reach nothing below it."""

from ..search.request import (
    DEFAULT_MODE,
    GROUPINGS,
    MAX_K,
    MODES,
    Grouping,
    Mode,
    SearchOptions,
    json_schema,
    option_bounds,
    option_default,
    option_help,
)

__all__ = [
    "DEFAULT_MODE",
    "GROUPINGS",
    "MAX_K",
    "MODES",
    "Grouping",
    "Mode",
    "SearchOptions",
    "json_schema",
    "option_bounds",
    "option_default",
    "option_help",
]
