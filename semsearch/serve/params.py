"""Request parameters, checked once at the edge: JSON bodies and query strings become frozen
dataclasses, and anything else (wrong type, unknown field, out of range) is a ``UsageError``
with one message that the HTTP and MCP layers pass on as is."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.reading import MAX_CONTEXT
from ..api.request import SearchOptions, json_schema
from ..errors import UsageError

#: Most queries in one batch request.
MAX_QUERIES = 64
#: Most hits one request may ask for in all (queries × k): 64 queries × k=1000 held every
#: worker for minutes on a 104-chunk index.
MAX_RESULTS = 10_000
#: Hits of each query that get a ``highlight`` span (the page shows 10): each costs an
#: embedding of every sentence of the hit.
HIGHLIGHT_HITS = 10
#: Longest query text, in characters (the model reads ~256 tokens anyway).
MAX_QUERY_CHARS = 4000
#: Characters one ``read`` returns unless asked otherwise: about 8k tokens, a page an agent's
#: context can take; the rest comes with the ``next`` cursor.
READ_CHARS = 32_000
#: Most characters one ``read`` may ask for.
MAX_READ_CHARS = 200_000
#: Most documents one upsert request may carry.
MAX_UPSERT = 1000
#: Deepest nesting a ``where`` filter may have (operators such as ``{"$in": [...]}`` need 3).
MAX_WHERE_DEPTH = 8
#: Most values (keys, list items, scalars) in one ``where`` filter.
MAX_WHERE_ITEMS = 1000


@dataclass(frozen=True)
class SearchRequest:
    """The queries (one, or a batch) and the options (:class:`SearchOptions`, checked)."""

    queries: tuple[str, ...]
    batch: bool
    options: SearchOptions
    highlight: bool = False


@dataclass(frozen=True)
class ReadRequest:
    """A document from ``offset`` (a character range), or a chunk with ``context`` chunks
    on each side; at most ``max_chars`` characters of text either way."""

    doc_id: str | None = None
    chunk_id: int | None = None
    context: int = 1
    offset: int = 0
    max_chars: int = READ_CHARS


@dataclass(frozen=True)
class UpsertItem:
    id: str
    text: str
    metadata: Mapping[str, Any] | None


#: JSON Schema of each search field: the OpenAPI parameters and the MCP tool arguments.
#: The options' own schemas come from :class:`SearchOptions`; only the front end's
#: additions (the query text, ``source`` as a short form of ``where``, the page's
#: ``highlight``) are declared here.
SEARCH_SCHEMA: dict[str, dict[str, Any]] = {
    "q": {
        "type": "string",
        "maxLength": MAX_QUERY_CHARS,
        "description": "one query (GET: repeat q for a batch)",
    },
    "queries": {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": MAX_QUERIES,
        "description": f"a batch of queries; queries × k is at most {MAX_RESULTS}",
    },
    **json_schema(),
    "source": {"type": "string", "description": "glob on the source path, e.g. *.md or */2024/*"},
    "highlight": {
        "type": "boolean",
        "default": False,
        "description": f"[start, end) of the best sentence in each of the first {HIGHLIGHT_HITS}"
        " hits",
    },
}
SEARCH_SCHEMA["where"]["description"] += " (GET: JSON text)"

#: JSON Schema of each read field.
READ_SCHEMA: dict[str, dict[str, Any]] = {
    "doc_id": {
        "type": "string",
        "description": "a document (a character range of it, from offset)",
    },
    "chunk_id": {
        "type": "integer",
        "minimum": 0,
        "description": "a chunk, with context chunks around it",
    },
    "context": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_CONTEXT,
        "default": 1,
        "description": "chunks on each side of chunk_id",
    },
    "offset": {
        "type": "integer",
        "minimum": 0,
        "default": 0,
        "description": "first character of the document to return (with doc_id)",
    },
    "max_chars": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_READ_CHARS,
        "default": READ_CHARS,
        "description": "most characters of text returned; 'next' holds the arguments of the"
        " following read",
    },
}

SEARCH_FIELDS = tuple(SEARCH_SCHEMA)
READ_FIELDS = tuple(READ_SCHEMA)


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
    options = _options({**raw, "where": where})
    if len(queries) * options.k > MAX_RESULTS:
        raise UsageError(
            f"{len(queries)} queries × k={options.k} asks for {len(queries) * options.k} hits;"
            f" at most {MAX_RESULTS} per request (send fewer queries or a smaller k)"
        )
    return SearchRequest(
        queries, batch, options, highlight=_bool(raw.get("highlight", False), "highlight")
    )


def _options(raw: Mapping[str, Any]) -> SearchOptions:
    """The options, checked once by their own declaration; its messages name the field,
    quoted here as the other parameter errors are."""
    try:
        return SearchOptions.from_mapping(raw)
    except UsageError as exc:
        name = str(exc).split(" ", 1)[0]
        raise UsageError(str(exc).replace(name, f"{name!r}", 1)) from None


def read_request(raw: Mapping[str, Any]) -> ReadRequest:
    _no_unknown(raw, READ_FIELDS)
    doc_id, chunk_id = raw.get("doc_id"), raw.get("chunk_id")
    if (doc_id is None) == (chunk_id is None):
        raise UsageError("give exactly one of 'doc_id' (a whole document) or 'chunk_id'")
    if doc_id is not None and (not isinstance(doc_id, str) or not doc_id):
        raise UsageError("'doc_id' must be a non-empty string")
    if chunk_id is not None and "offset" in raw:
        raise UsageError("'offset' goes with 'doc_id' (a character range of a document)")
    return ReadRequest(
        doc_id=doc_id,
        chunk_id=None if chunk_id is None else _int(chunk_id, "chunk_id", 0, 2**62),
        context=_int(raw.get("context", 1), "context", 0, MAX_CONTEXT),
        offset=_int(raw.get("offset", 0), "offset", 0, 2**62),
        max_chars=_int(raw.get("max_chars", READ_CHARS), "max_chars", 1, MAX_READ_CHARS),
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


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON text from a client (a body, a ``where`` parameter): any failure, deep nesting
    included, is one ``UsageError``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise UsageError(f"malformed JSON in {what}: {reason}") from None


def _scalar(key: str, value: str) -> Any:
    if key == "where":
        return parse_json(value, "'where'")
    kind = (SEARCH_SCHEMA.get(key) or READ_SCHEMA.get(key) or {}).get("type")
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{key!r} must be an integer, got {value!r}") from None
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"{key!r} must be a number, got {value!r}") from None
    if kind == "boolean":
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


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name!r} must be true or false, got {json.dumps(value)[:40]}")
    return value


def _where(value: Any) -> dict[str, Any] | None:
    """The filter as given: its operators are the API's to check; here only its shape (an
    object) and its size and depth are bounded."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("'where' must be an object of field: value or field: {operator: value}")
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > MAX_WHERE_ITEMS:
            raise UsageError(f"'where' holds more than {MAX_WHERE_ITEMS} values")
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        if children and depth >= MAX_WHERE_DEPTH:
            raise UsageError(f"'where' is nested more than {MAX_WHERE_DEPTH} levels deep")
        stack.extend((c, depth + 1) for c in children)
    return dict(value)
