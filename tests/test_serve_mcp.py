"""The MCP server, driven by the SDK's own client: in process for the tool behaviour, and
once as a real ``semsearch mcp`` subprocess over stdio."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="pip install 'semsearch[serve]'")

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from semsearch import SemanticIndex
from semsearch.serve.mcp_server import create_mcp
from semsearch.serve.service import SearchService

from .conftest import REPO, SEEDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "index"
    SemanticIndex(path=path, embedder=real_embedder).add_paths([SEEDS])
    return path


@pytest.fixture(scope="module")
def mcp_server(seed_index: Path, real_embedder: Any) -> Any:
    return create_mcp(SearchService(seed_index, workers=2, embedder=real_embedder))


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def test_tools_are_listed_with_agent_descriptions(mcp_server: Any) -> None:
    async def go() -> Any:
        async with Client(mcp_server) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in anyio.run(go)}
    assert set(tools) == {"search", "read", "index_status"}
    assert "chunk_id" in tools["search"].description and "keyword" in tools["search"].description
    props = tools["search"].input_schema["properties"]
    assert {"query", "k", "mode", "source", "per_source", "diverse", "min_score"} <= set(props)
    assert tools["search"].input_schema["required"] == ["query"]


def test_search_read_and_status_match_the_api(
    mcp_server: Any, seed_index: Path, real_embedder: Any
) -> None:
    oracle = SemanticIndex.load(seed_index, embedder=real_embedder)
    want = oracle.search("foreign minister meeting", k=3, mode="dense")

    async def go() -> tuple[Any, Any, Any, Any]:
        async with Client(mcp_server) as client:
            found = await client.call_tool(
                "search", {"query": "foreign minister meeting", "k": 3, "mode": "dense"}
            )
            hit = _payload(found)["hits"][0]
            around = await client.call_tool("read", {"chunk_id": hit["chunk_id"], "context": 1})
            doc = await client.call_tool("read", {"doc_id": hit["doc_id"]})
            status = await client.call_tool("index_status", {})
            return found, around, doc, status

    found, around, doc, status = anyio.run(go)
    hits = _payload(found)["hits"]
    assert [h["chunk_id"] for h in hits] == [h.chunk_id for h in want]
    assert {"score", "location", "source", "text"} <= set(hits[0])
    assert hits[0]["location"].startswith(want[0].source)
    chunks = _payload(around)["chunks"]
    assert [c["chunk_id"] for c in chunks if c["is_hit"]] == [want[0].chunk_id]
    assert want[0].text in _payload(doc)["text"]
    info = _payload(status)
    assert info["documents"] == 5 and info["chunks"] == len(oracle)


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("search", {"query": "trade", "k": 0}, "between 1 and 10000"),
        ("search", {"query": "  "}, "non-empty string"),
        ("search", {"query": "trade", "mode": "magic"}, ""),
        ("read", {}, "exactly one of"),
        ("read", {"chunk_id": 10**9}, "no chunk"),
        ("read", {"doc_id": "/etc/passwd"}, "no document"),
    ],
)
def test_bad_arguments_are_tool_errors_with_one_message(
    mcp_server: Any, tool: str, args: dict[str, Any], message: str
) -> None:
    async def go() -> Any:
        async with Client(mcp_server) as client:
            bad = await client.call_tool(tool, args)
            good = await client.call_tool("index_status", {})
            return bad, good

    bad, good = anyio.run(go)
    assert bad.is_error
    text = bad.content[0].text
    assert message in text and "Traceback" not in text
    assert not good.is_error  # the server keeps answering


def test_semsearch_mcp_over_stdio(seed_index: Path) -> None:
    """The real command, as an MCP client configuration would start it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "semsearch", "mcp", "--index", str(seed_index)],
        env=env,
        cwd=str(REPO),
    )

    async def go() -> tuple[Any, Any]:
        with anyio.fail_after(120):
            async with Client(params) as client:
                tools = await client.list_tools()
                result = await client.call_tool("search", {"query": "trade", "k": 2})
                return tools, result

    tools, result = anyio.run(go)
    assert {t.name for t in tools.tools} == {"search", "read", "index_status"}
    hits = _payload(result)["hits"]
    assert len(hits) == 2 and all(h["text"] for h in hits)
