"""The MCP tools on a small mixed folder indexed with the fake embedder (issue 22): ``read``
pages with a default cap and a ``next`` cursor, ``search`` filters by ``where`` and
``source``, bad arguments are one-line tool errors, and hits carry their page, section and
lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="pip install 'semsearch[serve]'")

from mcp import Client

from semsearch import SemanticIndex
from semsearch.api.request import MAX_K, MODES
from semsearch.serve import params as P
from semsearch.serve.mcp_server import create_mcp
from semsearch.serve.service import SearchService

from .conftest import FakeEmbedder
from .fixtures import make_pdf

LONG = "".join(
    f"Paragraph {i}: the orchard ledger counts apples and pears.\n\n" for i in range(2500)
)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp-tools")
    docs = root / "docs"
    docs.mkdir()
    (docs / "long.txt").write_text(LONG, encoding="utf-8")
    (docs / "guide.md").write_text(
        "# Guide\n\nIntro line.\n\n## Pelicans\n\nPelicans gather at the harbour at dawn.\n",
        encoding="utf-8",
    )
    (docs / "manual.pdf").write_bytes(
        make_pdf([["Alpha page one."], ["The harbour crane lifts containers."]], title="Manual")
    )
    path = root / "index"
    index = SemanticIndex(path=path, embedder=FakeEmbedder())
    index.add_paths([docs])
    index.upsert(
        ["Harbour notes in English.", "Harbour notes in French."],
        ids=["note-en", "note-fr"],
        metadata=[{"lang": "en"}, {"lang": "fr"}],
    )
    return path


@pytest.fixture(scope="module")
def server(index_path: Path) -> Any:
    return create_mcp(SearchService(index_path, workers=2, embedder=FakeEmbedder()))


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    if data is not None:
        return data.get("result", data) if set(data) == {"result"} else data  # type: ignore[no-any-return]
    return json.loads(result.content[0].text)  # type: ignore[no-any-return]


def _calls(server: Any, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def go() -> list[Any]:
        async with Client(server) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def _doc_id(server: Any, source: str) -> str:
    (found,) = _calls(server, ("search", {"query": "orchard ledger", "source": source}))
    return str(_payload(found)["hits"][0]["doc_id"])


def test_read_of_a_long_document_is_capped_and_pages_with_next(server: Any) -> None:
    doc_id = _doc_id(server, "long.txt")
    (first,) = _calls(server, ("read", {"doc_id": doc_id}))
    page = _payload(first)
    assert len(page["text"]) == P.READ_CHARS < len(LONG)
    assert page["total_chars"] > 100_000  # the whole text is ~150 kB
    assert page["next"] == {"doc_id": doc_id, "offset": P.READ_CHARS}
    text, args, calls = "", {"doc_id": doc_id, "max_chars": 50_000}, 0
    while args is not None:
        (r,) = _calls(server, ("read", args))
        got = _payload(r)
        text += got["text"]
        args = got["next"] and {**got["next"], "max_chars": 50_000}
        calls += 1
    assert calls == -(-page["total_chars"] // 50_000) and len(text) == page["total_chars"]
    assert "Paragraph 0:" in text and "Paragraph 2499:" in text


def test_read_around_a_chunk_drops_far_neighbours_over_the_cap(server: Any) -> None:
    (found,) = _calls(server, ("search", {"query": "Paragraph 1200 orchard", "source": "long.txt"}))
    hit = _payload(found)["hits"][0]
    (r,) = _calls(server, ("read", {"chunk_id": hit["chunk_id"], "context": 20, "max_chars": 4000}))
    got = _payload(r)
    assert sum(len(c["text"]) for c in got["chunks"]) <= 4000
    assert [c["chunk_id"] for c in got["chunks"] if c["is_hit"]] == [hit["chunk_id"]]
    assert 1 < len(got["chunks"]) < 41
    assert got["next"] == {"doc_id": hit["doc_id"], "offset": got["chunks"][-1]["end"]}


def test_search_filters_by_where_and_source(server: Any) -> None:
    by_where, by_source = _calls(
        server,
        ("search", {"query": "harbour notes", "k": 10, "where": {"lang": "fr"}}),
        ("search", {"query": "harbour", "k": 10, "source": "*.md"}),
    )
    assert [h["doc_id"] for h in _payload(by_where)["hits"]] == ["note-fr"]
    hits = _payload(by_source)["hits"]
    assert hits and all(h["source"].endswith("guide.md") for h in hits)


def test_hits_carry_page_section_and_lines(server: Any) -> None:
    pdf, md = _calls(
        server,
        ("search", {"query": "harbour crane containers", "k": 1, "source": "*.pdf"}),
        ("search", {"query": "pelicans harbour dawn", "k": 1, "source": "*.md"}),
    )
    (p,) = _payload(pdf)["hits"]
    assert p["page"] == 2 and "location" in p
    (m,) = _payload(md)["hits"]
    assert "Pelicans" in m["section"] and m["line_start"] >= 1 and m["line_end"] >= m["line_start"]


def test_tool_descriptions_say_how_to_cite(server: Any) -> None:
    async def go() -> Any:
        async with Client(server) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in anyio.run(go)}
    assert "location" in tools["search"].description and "cite" in tools["search"].description
    assert "next" in tools["read"].description
    props = tools["search"].input_schema["properties"]
    assert props["mode"]["enum"] == list(MODES) and props["k"]["maximum"] == MAX_K == 10_000
    assert {"where", "source"} <= set(props)
    assert {"offset", "max_chars"} <= set(tools["read"].input_schema["properties"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"query": "trade", "mode": "magic"}, "'mode' must be one of"),
        ({"query": "trade", "k": "many"}, "'k' must be an integer"),
        ({"query": 5}, "'query' must be a non-empty string"),
        ({"query": "trade", "where": [1]}, "'where' must be an object"),
        ({"query": "trade", "diverse": "yes"}, "'diverse' must be true or false"),
    ],
)
def test_bad_search_arguments_are_one_line_tool_errors(
    server: Any, args: dict[str, Any], message: str
) -> None:
    (bad,) = _calls(server, ("search", args))
    assert bad.is_error
    text = bad.content[0].text
    assert message in text, text
    assert "\n" not in text and "pydantic" not in text and "http" not in text
