"""Serving a warm index: the HTTP API and search page (``semsearch serve``) and the MCP server
(``semsearch mcp``). Only re-exports; the server libraries load when a server starts."""

from .params import ReadRequest, SearchRequest
from .run import check_binding, serve_http

__all__ = ["ReadRequest", "SearchRequest", "check_binding", "serve_http"]
