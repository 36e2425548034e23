"""``semsearch mcp``: the index as Model Context Protocol tools over stdio, on the official
``mcp`` SDK (``MCPServer``). The tools call the same :class:`SearchService` and parameter
checks as the HTTP API, so an agent gets the same answers and the same one-line errors.

Descriptions are written for the model that reads them: what the tool is for, when to use
which mode, and how to read around a hit.
"""

import inspect
import os
from typing import Annotated, Any

from ..errors import SemsearchError
from . import params as P
from .run import make_engine, one_thread_per_search, require
from .service import SearchService

INSTRUCTIONS = """\
Semantic search over the user's local documents (an offline semsearch index).
Use `search` to find passages, then `read` with a hit's chunk_id to see the text around it,
or with its doc_id to read the document page by page. `index_status` says what the index holds.
Cite every passage you use by its hit's `location`, exactly as given (e.g. "notes/a.md:12-18",
"manual.pdf p. 4"); never invent a location or a line number."""

SEARCH_DOC = """\
Find the passages in the user's indexed documents that best answer a query.

Returns up to k hits, best first. Each hit has `text` (the passage), `location` (cite this,
as given), `source` (file path), `score`, `chunk_id` (pass to `read` to see the neighbouring
passages) and `doc_id`, and where known `line_start`/`line_end` (lines of the file), `page`
(PDF page) and `section` (heading path).

mode: "hybrid" (default, best in measurements) blends meaning and exact words; "dense" finds
passages with the same meaning in other words; "keyword" (BM25) is best for exact names,
codes and rare terms. Phrase the query as the answer would be phrased, not as a command.
source: a glob on the file path to search only some files, e.g. "*.md" or "*/2024/*".
where: metadata filters, e.g. {"tags": "soup"} (a list field matches when it holds the
value), {"year": {"$gte": 2020}}, {"lang": {"$in": ["en", "de"]}}; also $nin, $ne, $gt, $lt,
$lte.
per_source: at most this many hits per file (use 1 to see more different files).
diverse: re-rank so near-duplicate passages do not crowd the list.
min_score: drop weak hits (hybrid scores are in [0, 1]).
group: "file" returns files instead of passages: one hit per file, scored by its best
passage (definitions of the names asked for count more; tests, vendored and generated
files less), with `more`: the locations of its further matching passages. Use it to find
which files to open, e.g. in a code base.
collapse (default true): copies of a passage in other files are folded into one hit whose
`also_in` lists those files."""

READ_DOC = f"""\
Read indexed text from the index itself, at most max_chars characters (default {P.READ_CHARS},
about 8k tokens) per call.

Give chunk_id (from a search hit) to get that passage with `context` passages before and
after it from the same document, in order (the hit is marked "is_hit": true); or give doc_id
(and optionally offset, a character position) to read a document. When there is more,
`next` holds the arguments for the following call (e.g. {{"doc_id": ..., "offset": ...}});
it is null at the end. Give exactly one of doc_id and chunk_id."""

STATUS_DOC = """\
What the search index holds: number of documents and chunks, the embedding model, the
index type and its path, and its phase: "phase-1" while a progressive index answers with
fast static vectors and `pending_model`'s are being computed (`phase2`: the worker's state
and done/total chunks), else "complete". Use it to check that the index covers what you are
looking for."""

#: Hit fields an agent gets (the HTTP API returns them all); empty ones are left out.
HIT_FIELDS = (
    "score", "location", "source", "text", "chunk_id", "doc_id", "line_start", "line_end",
    "page", "section", "title", "metadata", "stale", "also_in", "dense_model",
)  # fmt: skip


def _arg(schema: dict[str, Any]) -> Any:
    """A tool argument whose JSON Schema is the HTTP API's (``params.*_SCHEMA``), taken as is
    by the SDK and checked by :mod:`.params`, so a bad value is our one-line error rather
    than pydantic's report."""
    from pydantic import Field

    return Annotated[Any, Field(json_schema_extra=dict(schema))]


#: The search tool's arguments besides the query: every search option (from the one
#: request declaration) and the ``source`` glob; the page's ``highlight`` is left out.
SEARCH_ARGS = tuple(n for n in P.SEARCH_SCHEMA if n not in ("q", "queries", "highlight"))


def _signature(schemas: dict[str, dict[str, Any]], required: str) -> inspect.Signature:
    """A tool signature built from JSON Schemas, so the SDK lists exactly the declared
    arguments, with the declared defaults, and an option added to the request appears here
    with no edit."""
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if name == required else schema.get("default"),
            annotation=_arg(schema),
        )
        for name, schema in schemas.items()
    ]
    return inspect.Signature(params, return_annotation=dict[str, Any])


def create_mcp(service: SearchService) -> Any:
    """An ``MCPServer`` with the ``search``, ``read`` and ``index_status`` tools."""
    server_mod = require("mcp.server.mcpserver", "the MCP server (mcp)")
    errors = require("mcp.server.mcpserver.exceptions", "the MCP server (mcp)")
    tool_error = errors.ToolError
    mcp = server_mod.MCPServer(name="semsearch", instructions=INSTRUCTIONS, log_level="WARNING")
    S, R = P.SEARCH_SCHEMA, P.READ_SCHEMA

    def call(fn: Any, *args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = fn(*args)
            return result
        except SemsearchError as exc:  # the HTTP field 'q' is this tool's 'query'
            raise tool_error(str(exc).replace("'q'", "'query'")) from None

    def given(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    def search(query: Any, **options: Any) -> dict[str, Any]:
        raw = given(q=query, **options)
        result = call(lambda: service.search(P.search_request(raw)))
        result["hits"] = [
            {
                **{f: h[f] for f in HIT_FIELDS if h.get(f) not in (None, "", [], ())},
                **({"more": [p["location"] for p in h["more"]]} if h.get("more") else {}),
            }
            for h in result["hits"]
        ]
        result.pop("took_ms", None)
        return result

    search.__signature__ = _signature(  # type: ignore[attr-defined]
        {"query": S["q"], **{n: S[n] for n in SEARCH_ARGS}}, required="query"
    )

    def read(
        doc_id: _arg(R["doc_id"]) = None,  # type: ignore[valid-type]
        chunk_id: _arg(R["chunk_id"]) = None,  # type: ignore[valid-type]
        context: _arg(R["context"]) = 1,  # type: ignore[valid-type]
        offset: _arg(R["offset"]) = None,  # type: ignore[valid-type]
        max_chars: _arg(R["max_chars"]) = P.READ_CHARS,  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        raw = given(
            doc_id=doc_id, chunk_id=chunk_id, context=context, offset=offset, max_chars=max_chars
        )
        return call(lambda: service.read(P.read_request(raw)))

    def index_status() -> dict[str, Any]:
        return call(service.info)

    mcp.tool(description=SEARCH_DOC)(search)
    mcp.tool(description=READ_DOC)(read)
    mcp.tool(description=STATUS_DOC)(index_status)
    return mcp


def serve_mcp(index: str | os.PathLike[str], **engine: Any) -> None:
    """Load the index once and answer MCP requests on stdin/stdout until the client leaves;
    ``engine``: ``make_engine``'s arguments (``engine="ray", shards=...``)."""
    require("mcp", "the MCP server (mcp)")
    one_thread_per_search()
    backend = make_engine(index, **engine) if engine else None
    try:
        service = SearchService(index, workers=2, engine=backend)
        create_mcp(service).run("stdio")
    finally:
        if backend is not None:
            backend.close()
