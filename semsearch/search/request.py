"""The one declaration of a search's options: each field carries its default, bounds and help,
and every front end takes them from here (an instance is valid by construction,
the CLI's option help and bounds, the HTTP parameters and OpenAPI schema, the MCP tool schema).

Adding an option means one field here and one use where it acts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import UsageError

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
Grouping = Literal["file"]
GROUPINGS: tuple[Grouping, ...] = ("file",)
#: Default retrieval mode, chosen by measurement on four collections (README, "Ranking quality").
DEFAULT_MODE: Mode = "hybrid"
#: The most hits one query may ask for: bounds memory and time whatever the caller sends.
MAX_K = 10_000


def _opt(
    help: str,
    kind: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A field's declaration: ``kind`` is its JSON Schema type."""
    return {"help": help, "kind": kind, "low": low, "high": high, "choices": choices}


@dataclass(frozen=True)
class SearchOptions:
    """Everything a search can be asked besides its query text."""

    k: int = field(default=5, metadata=_opt("hits per query", "integer", low=1, high=MAX_K))
    mode: Mode = field(
        default=DEFAULT_MODE,
        metadata=_opt(
            "hybrid (meaning and words, fused; measured best), dense (meaning) or keyword (BM25)",
            "string",
            choices=MODES,
        ),
    )
    where: Mapping[str, Any] | None = field(
        default=None,
        metadata=_opt(
            "metadata filters: field: value, or field: {op: value} with op one of"
            " $in $nin $ne $gt $gte $lt $lte; source: a glob on the path",
            "object",
        ),
    )
    per_source: int | None = field(
        default=None,
        metadata=_opt("at most this many hits per source file", "integer", low=1, high=MAX_K),
    )
    diverse: bool = field(
        default=False,
        metadata=_opt("re-rank so near-duplicate passages do not crowd the list (MMR)", "boolean"),
    )
    min_score: float | None = field(
        default=None, metadata=_opt("drop hits whose score is below this", "number")
    )
    group: Grouping | None = field(
        default=None,
        metadata=_opt(
            "file: one hit per file (best chunk first), its further matching chunks in 'more'",
            "string",
            choices=GROUPINGS,
        ),
    )
    collapse: bool = field(
        default=True,
        metadata=_opt(
            "fold copies of one passage in several files into one hit (also_in names the others)",
            "boolean",
        ),
    )

    def __post_init__(self) -> None:
        """Raise one ``UsageError`` for the first field that breaks its declaration: an
        options object that exists is a valid one, so nothing downstream checks again."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None or f.default is not None:  # None means "not asked"
                _check(f.name, value, f.metadata)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SearchOptions:
        """Options from a JSON object (names as the fields'); absent ones keep their default."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def option_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(SearchOptions)


def option_help(name: str) -> str:
    return str(_field(name).metadata["help"])


def option_default(name: str) -> Any:
    return _field(name).default


def option_bounds(name: str) -> tuple[Any, Any]:
    """The field's (lowest, highest) allowed value, None where unbounded."""
    m = _field(name).metadata
    return m["low"], m["high"]


def json_schema() -> dict[str, dict[str, Any]]:
    """Each option as a JSON Schema property (for OpenAPI and the MCP tool)."""
    out: dict[str, dict[str, Any]] = {}
    for f in option_fields():
        m = f.metadata
        prop: dict[str, Any] = {"type": m["kind"], "description": m["help"]}
        if m["low"] is not None:
            prop["minimum"] = m["low"]
        if m["high"] is not None:
            prop["maximum"] = m["high"]
        if m["choices"]:
            prop["enum"] = list(m["choices"])
        if f.default is not None:
            prop["default"] = f.default
        out[f.name] = prop
    return out


def _field(name: str) -> dataclasses.Field[Any]:
    return next(f for f in option_fields() if f.name == name)


def _check(name: str, value: Any, m: Mapping[str, Any]) -> None:
    kind = m["kind"]
    shown = f"{value!r:.40}"
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{name} must be an integer, got {shown}")
    elif kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise UsageError(f"{name} must be a finite number, got {shown}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise UsageError(f"{name} must be true or false, got {shown}")
    elif kind == "object" and not isinstance(value, Mapping):
        raise UsageError(f"{name} must be an object, got {shown}")
    if m["choices"] and value not in m["choices"]:
        raise UsageError(f"{name} must be one of {', '.join(m['choices'])}, got {shown}")
    low, high = m["low"], m["high"]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UsageError(f"{name} must be {bounds}, got {value}")
