"""The OpenAPI 3.1 description of the HTTP API, written out (the parameters are checked by
:mod:`.params`, not by a schema library), and a plain HTML rendering of it at ``/docs`` that
needs no CDN."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
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

_HIT_FIELDS: dict[str, dict[str, Any]] = {
    "score": {"type": "number", "description": "ranking score of the mode"},
    "text": {"type": "string", "description": "the passage"},
    "source": {"type": "string", "description": "file path (or the id given at upsert)"},
    "location": {
        "type": "string",
        "description": "where to cite it: path:12-18 (text, code), path p. 4 (PDF),"
        " path › Section (HTML)",
    },
    "doc_id": {"type": "string", "description": "pass to /read for the document"},
    "chunk_id": {"type": "integer", "description": "pass to /read for the text around"},
    "start": {"type": "integer", "description": "first character in the document"},
    "end": {"type": "integer", "description": "character after the last"},
    "line_start": {
        "type": ["integer", "null"],
        "description": "first line in the file (null where extracted lines are not the file's)",
    },
    "line_end": {"type": ["integer", "null"], "description": "last line in the file"},
    "page": {"type": ["integer", "null"], "description": "PDF page"},
    "section": {"type": "string", "description": "heading path, if the file has headings"},
    "title": {"type": "string", "description": "document title"},
    "kind": {"type": "string", "description": "the reader: text, code, markdown, pdf, ..."},
    "metadata": {"type": ["object", "null"], "description": "front matter or upsert metadata"},
    "dense_score": {"type": ["number", "null"], "description": "cosine similarity part"},
    "keyword_score": {"type": ["number", "null"], "description": "BM25 part"},
    "dense_weight": {
        "type": ["number", "null"],
        "description": "hybrid: score = w * dense_score + (1 - w) * keyword_score",
    },
    "stale": {
        "type": ["string", "null"],
        "description": "changed or deleted when the file differs from what was indexed",
    },
    "dense_model": {
        "type": ["string", "null"],
        "description": "the model whose vectors answered (static in a progressive phase 1)",
    },
    "also_in": {
        "type": "array",
        "items": {"type": "string"},
        "description": "other files holding the same passage, folded into this hit",
    },
    "highlight": {
        "type": "array",
        "items": {"type": "integer"},
        "description": "[start, end) of the best sentence in text (with highlight=true)",
    },
    "more": {
        "type": "array",
        "items": {"type": "object"},
        "description": "group=file: the file's further matching chunks (passages with lines)",
    },
}
_HIT = {"type": "object", "properties": _HIT_FIELDS}


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
        ("/search", "get", "Search: best k chunks for q", P.SEARCH_SCHEMA, search_result),
        ("/search", "post", "Search: one query (q) or a batch", P.SEARCH_SCHEMA, search_result),
        ("/read", "get", "Read a document, or a chunk and its neighbours", P.READ_SCHEMA, obj),
        ("/read", "post", "Read (JSON body)", P.READ_SCHEMA, obj),
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


_DOCS_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:1.5rem auto;padding:0 1rem;"
    "color:#1d1d1f}code,pre{font-family:ui-monospace,monospace;background:#f4f4f6;"
    "padding:0 .25em;border-radius:3px}pre{padding:.6em;overflow:auto}h2{font-size:1.1rem;"
    "margin-top:2.2rem;border-top:1px solid #d9d9de;padding-top:1rem}table{border-collapse:"
    "collapse;width:100%;margin:.5rem 0}th,td{text-align:left;vertical-align:top;padding:"
    ".3rem .5rem;border-bottom:1px solid #e6e6ea}th{font-weight:600;background:#fafafa}"
    "td:first-child{white-space:nowrap}.m{color:#6e6e73}nav a{margin-right:.8rem}"
    "@media (max-width:600px){td,th{padding:.25rem}table{font-size:.9rem}}"
)


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _limits(schema: dict[str, Any]) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    for key, word in (("minimum", "≥"), ("maximum", "≤")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    for key, word in (("maxItems", "items"), ("maxLength", "characters")):
        if key in schema:
            parts.append(f"at most {schema[key]} {word}")
    return "; ".join(parts)


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """An HTML table; every cell is escaped here."""
    e = html.escape
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        first, *rest = row
        out.append(
            f"<tr><td><code>{e(first)}</code></td>" + "".join(f"<td>{e(c)}</td>" for c in rest)
        )
    out.append("</table>")
    return "".join(out)


def _params(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "parameters" in op:
        return "Query string", {p["name"]: p["schema"] for p in op["parameters"]}
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    return "JSON body", body.get("schema", {}).get("properties", {})


def docs_html(spec: dict[str, Any]) -> str:
    """The spec as a page people read: one section per operation with a table of its
    parameters (type, default, limits, meaning) and of the hit fields. No script, no CDN;
    every string from the spec is escaped."""
    e = html.escape
    ops = [(path, method, op) for path, m in spec["paths"].items() for method, op in m.items()]
    anchor = {(path, method): f"{method}{path.replace('/', '-')}" for path, method, _ in ops}
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>semsearch API</title><style>{_DOCS_STYLE}</style>",
        f"<h1>semsearch API <span class=m>{e(spec['info']['version'])}</span></h1>",
        "<p>JSON over HTTP. A server started with a token wants "
        "<code>Authorization: Bearer TOKEN</code> on every request. Every error is "
        '<code>{"error": "one line"}</code> with a 4xx status (503 when the server is busy or a '
        f"request runs past its deadline). At most {P.MAX_QUERIES} queries per request, and "
        f"queries × k at most {P.MAX_RESULTS}. Machine-readable: "
        "<a href=/openapi.json>/openapi.json</a>; the search page: <a href=/>/</a>.</p>",
        "<p>Example: <code>curl 'http://127.0.0.1:8765/search?q=trade+routes&amp;k=3'</code></p>",
        "<nav>"
        + "".join(
            f"<a href=#{anchor[(p, m)]}><code>{m.upper()} {e(p)}</code></a>" for p, m, _ in ops
        )
        + "</nav>",
    ]
    for path, method, op in ops:
        parts.append(
            f"<h2 id={anchor[(path, method)]}><code>{method.upper()} {e(path)}</code> "
            f"— {e(op['summary'])}</h2>"
        )
        where, params = _params(op)
        if params:
            rows = [
                (
                    name,
                    _type(schema),
                    json.dumps(schema["default"]) if "default" in schema else "",
                    _limits(schema),
                    schema.get("description", ""),
                )
                for name, schema in params.items()
            ]
            parts.append(f"<p class=m>{e(where)}:</p>")
            parts.append(_table(("name", "type", "default", "limits", "meaning"), rows))
        else:
            parts.append("<p class=m>No parameters.</p>")
    hit_rows = [
        (name, _type(schema), schema.get("description", "")) for name, schema in _HIT_FIELDS.items()
    ]
    parts.append("<h2 id=hits>Fields of a hit</h2>")
    parts.append(_table(("field", "type", "meaning"), hit_rows))
    return "\n".join(parts)
