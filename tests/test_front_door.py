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


# --- one location, the same hits through every front end (the done-when test) -------

HTML = """<html><head><title>Clocks</title></head><body>
<h1>Clocks</h1>
<h2>Pendulum escapements</h2>
<p>The anchor escapement lets a pendulum clock keep time by releasing one gear tooth per
swing; its recoil was later removed by the deadbeat escapement.</p>
</body></html>
"""
MARKDOWN = """# Garden notes

Some lines about the garden.

## Tomatoes

Tomato plants need staking and regular watering; pinch out the side shoots so the
pendulum of growth goes to the fruit.
"""
CODE = '''"""Timekeeping helpers."""


def escapement_period(length_m: float) -> float:
    """Period of a pendulum clock of this length, in seconds."""
    import math

    return 2 * math.pi * math.sqrt(length_m / 9.81)
'''


def _mixed(root: Path) -> Path:
    from .fixtures import make_pdf

    docs = root / "docs"
    docs.mkdir()
    (docs / "clocks.html").write_text(HTML, encoding="utf-8")
    (docs / "garden.md").write_text(MARKDOWN, encoding="utf-8")
    (docs / "timing.py").write_text(CODE, encoding="utf-8")
    (docs / "manual.pdf").write_bytes(
        make_pdf(
            [
                ["Manual for the wall clock."],
                ["Adjusting the pendulum: raise the bob to make the clock run faster."],
            ]
        )
    )
    return docs


def _comparable(hits: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must agree; MCP leaves out empty fields, so empty and absent are one."""
    keys = ("chunk_id", "score", "location", "source", "page", "section", "line_start")
    return [tuple(h.get(k) if h.get(k) != "" else None for k in keys) for h in hits]


@pytest.mark.slow
def test_same_query_same_hits_and_locations_through_api_cli_http_and_mcp(
    tmp_path: Path,
) -> None:
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("mcp")
    from mcp import Client

    from semsearch.api.hits import hit_record
    from semsearch.serve.mcp_server import create_mcp
    from semsearch.serve.service import SearchService

    from .conftest import REPO
    from .test_serve_http import Server

    docs = _mixed(tmp_path)
    ix = tmp_path / "ix"
    assert main(["index", str(docs), "--index", str(ix)]) == 0
    query, k = "pendulum clock", 6

    api_hits = SemanticIndex.load(ix).search(query, k=k)
    api = [hit_record(h) for h in api_hits]
    kinds = {h.kind for h in api_hits}
    assert {"pdf", "html", "markdown", "code"} <= kinds, kinds

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "semsearch", "query", query, "-k", str(k), "--index", str(ix),
         "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    cli = json.loads(out)

    service = SearchService(ix, workers=1)
    server = Server(service)
    try:
        status, body = server.post("/search", {"q": query, "k": k})
    finally:
        server.stop()
    assert status == 200
    http = body["hits"]

    async def ask() -> Any:
        async with Client(create_mcp(service)) as client:
            return await client.call_tool("search", {"query": query, "k": k})

    result = anyio.run(ask)
    assert not result.is_error, result.content
    data = result.structured_content or json.loads(result.content[0].text)
    mcp = data.get("result", data)["hits"]

    assert _comparable(cli) == _comparable(api)
    assert _comparable(http) == _comparable(api)
    assert _comparable(mcp) == _comparable(api)

    by_kind = {h.kind: hit_record(h) for h in reversed(api_hits)}  # the best of each kind
    pdf, html, md, code = (by_kind[x] for x in ("pdf", "html", "markdown", "code"))
    assert "bob" in pdf["text"] and pdf["location"] == f"{docs / 'manual.pdf'} p. 2"
    assert pdf["line_start"] is None
    assert html["location"] == f"{docs / 'clocks.html'} › Clocks › Pendulum escapements"
    assert html["line_start"] is None  # extracted lines are not the file's
    assert md["location"].startswith(f"{docs / 'garden.md'}:")
    assert md["location"].endswith("› Garden notes › Tomatoes")
    first = 1 + next(n for n, line in enumerate(MARKDOWN.splitlines()) if "staking" in line)
    assert md["line_start"] <= first <= md["line_end"]
    lines_at = f"{docs / 'timing.py'}:{code['line_start']}-{code['line_end']}"
    assert code["location"] in (lines_at, f"{lines_at} › {code['section']}")
    lines = CODE.splitlines()[code["line_start"] - 1 : code["line_end"]]
    assert code["text"].strip().splitlines()[0].strip() in {x.strip() for x in lines}


# --- copies of one passage in several files fold into one hit ------------------------------

COPIES = {
    "html/clock.html": "The anchor escapement releases one gear tooth per pendulum swing.",
    "_sources/clock.rst.txt": "The ``anchor`` escapement releases *one* gear tooth per pendulum "
    "swing.",
    "birds.txt": "Pelicans nest by the harbour and eat fish.",
    "gears.txt": "A gear tooth wears down after many years of pendulum swings.",
}


def test_copies_in_other_files_fold_into_one_hit_that_names_them() -> None:
    from semsearch.api.hits import hit_record

    index = SemanticIndex.from_texts(
        list(COPIES.values()), ids=list(COPIES), embedder=FakeEmbedder()
    )
    hits = index.search("anchor escapement gear tooth", k=3, mode="dense")
    sources = [h.source for h in hits]
    assert len(hits) == 3  # k is still filled after folding
    (folded,) = [h for h in hits if h.also_in]
    pair = {"html/clock.html", "_sources/clock.rst.txt"}
    assert {folded.source, *folded.also_in} == pair and len(pair & set(sources)) == 1
    assert list(hit_record(folded)["also_in"]) == [next(iter(pair - {folded.source}))]
    every = index.search("anchor escapement gear tooth", k=3, mode="dense", collapse=False)
    assert pair <= {h.source for h in every} and not any(h.also_in for h in every)
