"""One front door: the search options declared once and used by the API, the CLI, HTTP and
MCP with the same limits; one location per hit whichever front end prints it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import anyio
import pytest

from semsearch import SemanticIndex
from semsearch.api.request import MAX_K, SearchOptions, json_schema
from semsearch.cli import main
from semsearch.errors import UsageError
from semsearch.serve import params as P

from .conftest import FakeEmbedder

TEXTS = ["trade between countries fell", "pelicans nest by the harbour", "tariffs and trade"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "ix"
    SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder()).save(path)
    return path


def test_k_has_one_limit_in_the_api_http_and_cli(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MAX_K == 10_000
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    assert len(index.search("trade", k=MAX_K)) == len(TEXTS)
    with pytest.raises(UsageError, match="k must be between 1 and 10000"):
        index.search("trade", k=MAX_K + 1)
    assert P.search_request({"q": "trade", "k": MAX_K}).options.k == MAX_K  # was capped at 1000
    with pytest.raises(UsageError, match="'k' must be between 1 and 10000"):
        P.search_request({"q": "trade", "k": MAX_K + 1})
    assert main(["query", "trade", "--index", str(small), "-k", str(MAX_K + 1)]) == 2
    assert "10000" in capsys.readouterr().err


def test_every_option_is_in_the_http_schema_and_the_mcp_tool() -> None:
    """Adding a field to SearchOptions is enough for HTTP (parsing and OpenAPI) and MCP."""
    from semsearch.serve.mcp_server import create_mcp

    pytest.importorskip("mcp")
    from mcp import Client

    names = [f.name for f in dataclasses.fields(SearchOptions)]
    for name, schema in json_schema().items():
        assert P.SEARCH_SCHEMA[name]["type"] == schema["type"]
        assert P.SEARCH_SCHEMA[name].get("maximum") == schema.get("maximum")
    assert set(names) <= set(P.SEARCH_SCHEMA)

    class Service:  # the tool listing needs no index
        pass

    async def tools() -> Any:
        async with Client(create_mcp(Service())) as client:  # type: ignore[arg-type]
            return (await client.list_tools()).tools

    (search,) = [t for t in anyio.run(tools) if t.name == "search"]
    props = search.input_schema["properties"]
    assert set(names) <= set(props)
    assert props["k"]["maximum"] == MAX_K and props["k"]["default"] == 5
    assert search.input_schema["required"] == ["query"]


def test_the_options_object_is_valid_by_construction() -> None:
    with pytest.raises(UsageError, match="mode must be one of dense, keyword, hybrid"):
        SearchOptions(mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="min_score must be a finite number"):
        SearchOptions(min_score=float("nan"))
    with pytest.raises(UsageError, match="per_source must be between 1"):
        SearchOptions(per_source=0)
    assert SearchOptions.from_mapping({"k": 3, "diverse": True}) == SearchOptions(k=3, diverse=True)
