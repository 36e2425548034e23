"""The OpenAPI 3.1 description of the HTTP API, written out (the parameters are checked by
:mod:`.params`, not by a schema library), and a plain HTML rendering of it at ``/docs`` that
needs no CDN."""

from __future__ import annotations

import html
import json
from typing import Any

from .._version import __version__
from . import params as P

_ERROR = {
    "description": "bad request: one message",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}

_HIT = {
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "text": {"type": "string"},
        "source": {"type": "string"},
        "location": {"type": "string", "description": "source:line_start-line_end"},
        "doc_id": {"type": "string"},
        "chunk_id": {"type": "integer"},
        "start": {"type": "integer"},
        "end": {"type": "integer"},
        "line_start": {"type": "integer"},
        "line_end": {"type": "integer"},
        "metadata": {"type": ["object", "null"]},
        "highlight": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "[start, end) of the best sentence in text (with highlight=true)",
        },
    },
}

_SEARCH_PROPS: dict[str, Any] = {
    "q": {"type": "string", "description": "one query (GET: repeat q for a batch)"},
    "queries": {"type": "array", "items": {"type": "string"}, "maxItems": P.MAX_QUERIES},
    "k": {"type": "integer", "minimum": 1, "maximum": P.MAX_K, "default": 5},
    "mode": {"type": "string", "enum": list(P.MODES), "default": "hybrid"},
    "source": {"type": "string", "description": "glob on the source path, e.g. *.md"},
    "where": {"type": "object", "description": "metadata equality filters (GET: JSON text)"},
    "per_source": {"type": "integer", "minimum": 1, "description": "cap hits per source"},
    "diverse": {"type": "boolean", "default": False, "description": "MMR re-ranking"},
    "min_score": {"type": "number", "description": "drop hits scoring below this"},
    "highlight": {"type": "boolean", "default": False, "description": "best sentence span"},
    "group": {
        "type": "string",
        "enum": list(P.GROUPINGS),
        "description": "file: one hit per file, its further chunks in 'more'",
    },
}

_READ_PROPS: dict[str, Any] = {
    "doc_id": {"type": "string", "description": "a whole document"},
    "chunk_id": {"type": "integer", "description": "a chunk (with context chunks around it)"},
    "context": {"type": "integer", "minimum": 0, "maximum": P.MAX_CONTEXT, "default": 1},
}


def _op(summary: str, props: dict[str, Any] | None, method: str, result: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": result}}},
            "4XX": _ERROR,
        },
    }
    if props and method == "get":
        op["parameters"] = [
            {"name": name, "in": "query", "schema": schema} for name, schema in props.items()
        ]
    elif props:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": props, "additionalProperties": False}
                }
            },
        }
    return op


def openapi_spec(writes: bool) -> dict[str, Any]:
    search_result = {
        "type": "object",
        "properties": {"query": {"type": "string"}, "hits": {"type": "array", "items": _HIT}},
    }
    obj = {"type": "object"}
    strings = {"type": "array", "items": {"type": "string"}}
    doc = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "text": {"type": "string"},
            "metadata": {"type": "object"},
        },
        "required": ["id", "text"],
    }
    docs = {"type": "array", "items": doc}
    table: list[tuple[str, str, str, dict[str, Any] | None, Any]] = [
        ("/search", "get", "Search: best k chunks for q", _SEARCH_PROPS, search_result),
        ("/search", "post", "Search: one query (q) or a batch", _SEARCH_PROPS, search_result),
        ("/read", "get", "Read a document, or a chunk and its neighbours", _READ_PROPS, obj),
        ("/read", "post", "Read (JSON body)", _READ_PROPS, obj),
        ("/info", "get", "What the index holds", None, obj),
        ("/health", "get", "Liveness and the number of chunks", None, obj),
    ]
    if writes:
        table += [
            ("/upsert", "post", "Add or replace documents", {"documents": docs}, obj),
            ("/delete", "post", "Remove documents by id or source glob", {"ids": strings}, obj),
            ("/refresh", "post", "Re-check indexed files; reopen the newest generation", None, obj),
        ]  # fmt: skip
    paths: dict[str, Any] = {}
    for path, method, summary, props, result in table:
        paths.setdefault(path, {})[method] = _op(summary, props, method, result)
    return {
        "openapi": "3.1.0",
        "info": {"title": "semsearch", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }


def docs_html(spec: dict[str, Any]) -> str:
    """The spec as a readable page: one section per operation, every string escaped."""
    parts = [
        "<!doctype html><meta charset=utf-8><title>semsearch API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}code,pre{background:#f4f4f4;padding:0 .2em}pre{padding:.5em;"
        "overflow:auto}h2{font-size:1.1rem;margin-top:2rem}</style>",
        f"<h1>semsearch API {html.escape(spec['info']['version'])}</h1>",
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a>. Errors are "
        '<code>{"error": "..."}</code> with a 4xx status.</p>',
    ]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            parts.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code> "
                f"{html.escape(op['summary'])}</h2>"
            )
            params = op.get("parameters") or [
                {"name": k, "schema": v}
                for k, v in op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("properties", {})
                .items()
            ]
            if params:
                parts.append("<ul>")
                for p in params:
                    schema = json.dumps(p["schema"], ensure_ascii=False)
                    parts.append(
                        f"<li><code>{html.escape(p['name'])}</code> {html.escape(schema)}</li>"
                    )
                parts.append("</ul>")
    return "\n".join(parts)
