"""Request parameters, checked once at the edge: JSON bodies and query strings become frozen
dataclasses, and anything else (wrong type, unknown field, out of range) is a ``UsageError``
with one message that the HTTP and MCP layers pass on as is."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..errors import UsageError

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
Grouping = Literal["file"]
GROUPINGS: tuple[Grouping, ...] = ("file",)
#: Largest ``k`` one query may ask for: enough for an agent, small enough to stay fast.
MAX_K = 1000
#: Most queries in one batch request.
MAX_QUERIES = 64
#: Longest query text, in characters (the model reads ~256 tokens anyway).
MAX_QUERY_CHARS = 4000
#: Most neighbouring chunks ``read`` returns on each side of a chunk.
MAX_CONTEXT = 20
#: Most documents one upsert request may carry.
MAX_UPSERT = 1000


@dataclass(frozen=True)
class SearchRequest:
    queries: tuple[str, ...]
    batch: bool
    k: int = 5
    mode: Mode = "hybrid"
    where: Mapping[str, Any] | None = None
    per_source: int | None = None
    diverse: bool = False
    min_score: float | None = None
    highlight: bool = False
    group: Grouping | None = None


@dataclass(frozen=True)
class ReadRequest:
    doc_id: str | None = None
    chunk_id: int | None = None
    context: int = 1


@dataclass(frozen=True)
class UpsertItem:
    id: str
    text: str
    metadata: Mapping[str, Any] | None


SEARCH_FIELDS = (
    "q", "queries", "k", "mode", "source", "where", "per_source", "diverse", "min_score",
    "highlight", "group",
)  # fmt: skip
READ_FIELDS = ("doc_id", "chunk_id", "context")


def search_request(raw: Mapping[str, Any]) -> SearchRequest:
    """A search from a JSON object (POST) or from query-string values (GET, via ``from_query``)."""
    _no_unknown(raw, SEARCH_FIELDS)
    if ("q" in raw) == ("queries" in raw):
        raise UsageError("give exactly one of 'q' (one query) or 'queries' (a list)")
    if "q" in raw:
        queries: tuple[str, ...] = (_query(raw["q"], "q"),)
        batch = False
    else:
        items = raw["queries"]
        if not isinstance(items, list) or not items:
            raise UsageError("'queries' must be a non-empty list of strings")
        if len(items) > MAX_QUERIES:
            raise UsageError(f"'queries' holds {len(items)} queries; at most {MAX_QUERIES}")
        queries = tuple(_query(q, "queries[]") for q in items)
        batch = True
    where = _where(raw.get("where"))
    source = raw.get("source")
    if source is not None:
        if not isinstance(source, str) or not source:
            raise UsageError("'source' must be a non-empty glob string")
        where = {**(where or {}), "source": source}
    group = raw.get("group")
    if group is not None and group not in GROUPINGS:
        raise UsageError(f"'group' must be one of {', '.join(GROUPINGS)}, got {group!r:.40}")
    mode = raw.get("mode", "hybrid")
    if mode not in MODES:
        raise UsageError(f"'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    return SearchRequest(
        queries=queries,
        batch=batch,
        k=_int(raw.get("k", 5), "k", 1, MAX_K),
        mode=cast(Mode, mode),
        where=where,
        per_source=_opt_int(raw.get("per_source"), "per_source", 1, MAX_K),
        diverse=_bool(raw.get("diverse", False), "diverse"),
        min_score=_opt_float(raw.get("min_score"), "min_score"),
        highlight=_bool(raw.get("highlight", False), "highlight"),
        group=cast(Grouping, group),
    )


def read_request(raw: Mapping[str, Any]) -> ReadRequest:
    _no_unknown(raw, READ_FIELDS)
    doc_id, chunk_id = raw.get("doc_id"), raw.get("chunk_id")
    if (doc_id is None) == (chunk_id is None):
        raise UsageError("give exactly one of 'doc_id' (a whole document) or 'chunk_id'")
    if doc_id is not None and (not isinstance(doc_id, str) or not doc_id):
        raise UsageError("'doc_id' must be a non-empty string")
    return ReadRequest(
        doc_id=doc_id,
        chunk_id=None if chunk_id is None else _int(chunk_id, "chunk_id", 0, 2**62),
        context=_int(raw.get("context", 1), "context", 0, MAX_CONTEXT),
    )


def upsert_items(raw: Mapping[str, Any]) -> list[UpsertItem]:
    _no_unknown(raw, ("documents",))
    docs = raw.get("documents")
    if not isinstance(docs, list) or not docs:
        raise UsageError("'documents' must be a non-empty list of {id, text, metadata}")
    if len(docs) > MAX_UPSERT:
        raise UsageError(f"at most {MAX_UPSERT} documents per upsert, got {len(docs)}")
    out = []
    for d in docs:
        if not isinstance(d, dict):
            raise UsageError("each document must be an object {id, text, metadata}")
        _no_unknown(d, ("id", "text", "metadata"))
        if not isinstance(d.get("id"), str) or not d["id"]:
            raise UsageError("each document needs a non-empty string 'id'")
        if not isinstance(d.get("text"), str):
            raise UsageError(f"document {d['id']!r}: 'text' must be a string")
        meta = d.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise UsageError(f"document {d['id']!r}: 'metadata' must be an object")
        out.append(UpsertItem(d["id"], d["text"], meta))
    return out


def delete_ids(raw: Mapping[str, Any]) -> list[str]:
    _no_unknown(raw, ("ids",))
    ids = raw.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise UsageError("'ids' must be a non-empty list of document ids or sources")
    return list(ids)


def from_query(pairs: Sequence[tuple[str, str]], fields: Sequence[str]) -> dict[str, Any]:
    """Query-string pairs as typed values: numbers, booleans and ``where`` JSON are parsed;
    ``q`` given more than once becomes a batch."""
    raw: dict[str, Any] = {}
    qs = [v for key, v in pairs if key == "q"]
    for key, value in pairs:
        if key == "token":
            continue  # checked (and needed) by the server's guard, not a search parameter
        if key not in fields:
            _no_unknown({key: value}, fields)
        if key == "q":
            continue
        if key in raw:
            raise UsageError(f"parameter {key!r} given more than once")
        raw[key] = _scalar(key, value)
    if len(qs) == 1:
        raw["q"] = qs[0]
    elif qs:
        raw["queries"] = qs
    return raw


def _scalar(key: str, value: str) -> Any:
    if key == "where":
        try:
            return json.loads(value)
        except ValueError:
            raise UsageError("'where' must be a JSON object") from None
    if key in ("k", "per_source", "chunk_id", "context"):
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{key!r} must be an integer, got {value!r}") from None
    if key == "min_score":
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"'min_score' must be a number, got {value!r}") from None
    if key in ("diverse", "highlight"):
        if value.lower() in ("1", "true", "yes", "on", ""):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{key!r} must be true or false, got {value!r}")
    return value


def _no_unknown(raw: Mapping[str, Any], fields: Sequence[str]) -> None:
    for key in raw:
        if key not in fields:
            raise UsageError(f"unknown field {key!r}; expected some of: {', '.join(fields)}")


def _query(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{name!r} must be a non-empty string")
    if len(value) > MAX_QUERY_CHARS:
        raise UsageError(f"a query is {len(value)} characters long; at most {MAX_QUERY_CHARS}")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name!r} must be an integer, got {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise UsageError(f"{name!r} must be between {low} and {high}, got {value}")
    return value


def _opt_int(value: Any, name: str, low: int, high: int) -> int | None:
    return None if value is None else _int(value, name, low, high)


def _opt_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{name!r} must be a finite number, got {json.dumps(value)[:40]}")
    return float(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name!r} must be true or false, got {json.dumps(value)[:40]}")
    return value


def _where(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("'where' must be an object of field: value")
    for key, v in value.items():
        if isinstance(v, dict | list) or v is None:
            raise UsageError(f"'where' value for {key!r} must be a string, number or boolean")
    return dict(value)
