"""Defects found by attacking the HTTP server (issue 20: D14, D15, D16, D24), each against a
real uvicorn on loopback with the fake embedder: hostile ``where`` nesting, per-request work
bounds and deadlines, slow-header clients, and loopback Host spellings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette", reason="pip install 'semsearch[serve]'")
pytest.importorskip("uvicorn", reason="pip install 'semsearch[serve]'")

from semsearch import SemanticIndex
from semsearch.serve.service import SearchService

from .conftest import FakeEmbedder
from .test_serve_http import Server

WORDS = "trade river harbour minister pelican market winter engine ledger orchard".split()


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "index"
    texts = [
        " ".join(WORDS[(i + j) % len(WORDS)] for j in range(40)) + f". Note {i} ends here."
        for i in range(120)
    ]
    SemanticIndex(path=path, embedder=FakeEmbedder()).upsert(
        texts, ids=[f"doc{i}.txt" for i in range(120)], metadata=[{"n": i} for i in range(120)]
    )
    return path


@pytest.fixture(scope="module")
def server(fake_index: Path) -> Iterator[Server]:
    s = Server(SearchService(fake_index, workers=2, embedder=FakeEmbedder()))
    yield s
    s.stop()


# --- D16: hostile where -------------------------------------------------------------------


def test_get_where_nested_10000_deep_is_one_400(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000  # 60 kB, inside the request-line limit
    with caplog.at_level(logging.ERROR, logger="semsearch.serve"):
        status, data = server.get("/search?q=trade&where=" + quote(deep, safe='{}":'))
    assert status == 400, data
    assert list(data) == ["error"] and "nested too deeply" in data["error"]
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text
    assert server.alive()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_where_parsed_the_same_by_get_and_post(server: Server, method: str) -> None:
    """Valid JSON nested past the bound: the same 400 through both methods."""
    where = {"n": 1}
    for _ in range(20):
        where = {"$and": [where]}  # type: ignore[dict-item]
    if method == "GET":
        status, data = server.get("/search?q=trade&where=" + quote(json.dumps(where)))
    else:
        status, data = server.post("/search", {"q": "trade", "where": where})
    assert status == 400 and "nested more than" in data["error"], data


def test_where_objects_reach_the_api_unchanged(server: Server) -> None:
    """Operator objects are the API's to judge: serve passes them on, so the answer is the
    API's own (a result, or the API's one-line error), never a serve-side refusal."""
    where = {"n": {"$in": [3, 4]}}
    status, data = server.post("/search", {"q": "trade", "k": 5, "where": where})
    if status == 200:
        assert {h["metadata"]["n"] for h in data["hits"]} <= {3, 4}
    else:
        assert status == 400 and "'where' value" not in data["error"], data
    status, data = server.get("/search?q=trade&where=" + quote('{"n": 7}'))
    assert status == 200 and [h["metadata"]["n"] for h in data["hits"]] == [7]
