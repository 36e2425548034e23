"""``semsearch mcp``: the index as Model Context Protocol tools over stdio, on the official
``mcp`` SDK (``MCPServer``). The tools call the same :class:`SearchService` and parameter
checks as the HTTP API, so an agent gets the same answers and the same one-line errors.

Descriptions are written for the model that reads them: what the tool is for, when to use
which mode, and how to read around a hit.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from ..errors import SemsearchError
from . import params as P
from .run import one_thread_per_search, require
from .service import SearchService

INSTRUCTIONS = """\
Semantic search over the user's local documents (an offline semsearch index).
Use `search` to find passages, then `read` with a hit's chunk_id to see the text around it,
or with its doc_id for the whole document. `index_status` says what the index holds.
Cite hits by their `location` (file path and line numbers)."""

SEARCH_DOC = """\
Find the passages in the user's indexed documents that best answer a query.

Returns up to k hits, best first. Each hit has `text` (the passage), `source` (file path),
`location` ("path:first_line-last_line", cite this), `score`, `chunk_id` (pass to `read` to
see the neighbouring passages) and `doc_id`.

mode: "hybrid" (default, best in measurements) blends meaning and exact words; "dense" finds
passages with the same meaning in other words; "keyword" (BM25) is best for exact names,
codes and rare terms. Phrase the query as the answer would be phrased, not as a command.
source: a glob on the file path to search only some files, e.g. "*.md" or "*/2024/*".
per_source: at most this many hits per file (use 1 to see more different files).
diverse: re-rank so near-duplicate passages do not crowd the list.
min_score: drop weak hits (hybrid scores are in [0, 1]).
group: "file" returns files instead of passages: one hit per file, scored by all its
matching passages (definitions of the names asked for count more; tests, vendored and
generated files less), with `more`: the locations of its further matching passages. Use it
to find which files to open, e.g. in a code base."""

READ_DOC = """\
Read indexed text around a search hit, from the index itself.

Give chunk_id (from a search hit) to get that passage with `context` passages before and
after it from the same document, in order (the hit is marked "is_hit": true); or give doc_id
to get the whole document's text. Give exactly one of the two."""

STATUS_DOC = """\
What the search index holds: number of documents and chunks, the embedding model, the
index type and its path. Use it to check that the index covers what you are looking for."""


def create_mcp(service: SearchService) -> Any:
    """An ``MCPServer`` with the ``search``, ``read`` and ``index_status`` tools."""
    server_mod = require("mcp.server.mcpserver", "the MCP server (mcp)")
    errors = require("mcp.server.mcpserver.exceptions", "the MCP server (mcp)")
    tool_error = errors.ToolError
    mcp = server_mod.MCPServer(name="semsearch", instructions=INSTRUCTIONS, log_level="WARNING")

    def call(fn: Any, *args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = fn(*args)
            return result
        except SemsearchError as exc:
            raise tool_error(str(exc)) from None

    @mcp.tool(description=SEARCH_DOC)
    def search(
        query: str,
        k: int = 5,
        mode: Literal["hybrid", "dense", "keyword"] = "hybrid",
        source: str | None = None,
        per_source: int | None = None,
        diverse: bool = False,
        min_score: float | None = None,
        group: Literal["file"] | None = None,
    ) -> dict[str, Any]:
        raw: dict[str, Any] = {"q": query, "k": k, "mode": mode, "diverse": diverse}
        for key, value in (
            ("source", source),
            ("per_source", per_source),
            ("min_score", min_score),
            ("group", group),
        ):
            if value is not None:
                raw[key] = value
        result = call(lambda: service.search(P.search_request(raw)))
        keep = ("score", "location", "source", "text", "chunk_id", "doc_id", "metadata")
        result["hits"] = [
            {
                **{k: h[k] for k in keep if k in h},
                **({"more": [_location(p) for p in h["more"]]} if h.get("more") else {}),
            }
            for h in result["hits"]
        ]
        result.pop("took_ms", None)
        return result

    @mcp.tool(description=READ_DOC)
    def read(
        doc_id: str | None = None, chunk_id: int | None = None, context: int = 1
    ) -> dict[str, Any]:
        raw: dict[str, Any] = {"context": context}
        if doc_id is not None:
            raw["doc_id"] = doc_id
        if chunk_id is not None:
            raw["chunk_id"] = chunk_id
        return call(lambda: service.read(P.read_request(raw)))

    @mcp.tool(description=STATUS_DOC)
    def index_status() -> dict[str, Any]:
        return call(service.info)

    return mcp


def _location(passage: dict[str, Any]) -> str:
    """``path:first-last`` of a grouped hit's further passage, as hits cite theirs."""
    lines = f"{passage['line_start']}" + (
        f"-{passage['line_end']}" if passage["line_end"] != passage["line_start"] else ""
    )
    return f"{passage['source']}:{lines}"


def serve_mcp(index: str | os.PathLike[str]) -> None:
    """Load the index once and answer MCP requests on stdin/stdout until the client leaves."""
    require("mcp", "the MCP server (mcp)")
    one_thread_per_search()
    service = SearchService(index, workers=2)
    create_mcp(service).run("stdio")
