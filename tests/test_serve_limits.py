"""Defects found by attacking the HTTP server (issue 20: D14, D15, D16, D24), each against a
real uvicorn on loopback with the fake embedder: hostile ``where`` nesting, per-request work
bounds and deadlines, slow-header clients, and loopback Host spellings."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("starlette", reason="pip install 'semsearch[serve]'")
pytest.importorskip("uvicorn", reason="pip install 'semsearch[serve]'")

from semsearch import SemanticIndex
from semsearch.serve.run import check_binding
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


# --- D15: work per request, /health off the workers, deadline -----------------------------


class SlowEmbedder(FakeEmbedder):
    """The fake model, taking ``delay`` seconds per query batch: a busy worker."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def encode(self, texts: Sequence[str], *, kind: Any = "document") -> Any:
        if kind == "query":
            time.sleep(self.delay)
        return super().encode(texts, kind=kind)


def test_total_results_per_request_are_bounded(server: Server) -> None:
    status, data = server.post("/search", {"queries": ["trade"] * 64, "k": 1000})
    assert status == 400 and "64 queries × k=1000" in data["error"], data
    status, data = server.post("/search", {"queries": ["trade"] * 10, "k": 1000})
    assert status == 200 and len(data["results"]) == 10


def test_highlight_covers_only_the_first_hits(server: Server) -> None:
    status, data = server.post("/search", {"q": "trade river", "k": 30, "highlight": True})
    assert status == 200 and len(data["hits"]) == 30
    marked = ["highlight" in h for h in data["hits"]]
    assert marked == [True] * 10 + [False] * 20


def _timed_get(srv: Server, path: str, **kw: Any) -> tuple[int, float]:
    t0 = time.perf_counter()
    status, _ = srv.get(path, **kw)
    return status, time.perf_counter() - t0


def test_health_answers_while_every_worker_is_busy(fake_index: Path) -> None:
    srv = Server(SearchService(fake_index, workers=2, embedder=SlowEmbedder(3.0)))
    try:
        busy = [
            threading.Thread(target=srv.get, args=("/search?q=trade",), daemon=True)
            for _ in range(4)
        ]
        for t in busy:
            t.start()
        time.sleep(0.3)  # both workers are inside a 3 s query embedding, two more queue
        status, took = _timed_get(srv, "/health")
        assert status == 200 and took < 1.0, took  # not after the 2.7 s left of a search
        for t in busy:
            t.join(timeout=30)
    finally:
        srv.stop()


def test_a_batch_stops_at_the_deadline_with_one_503(fake_index: Path) -> None:
    srv = Server(SearchService(fake_index, workers=1, embedder=SlowEmbedder(0.5)), deadline=1.0)
    try:
        t0 = time.perf_counter()
        status, data = srv.post("/search", {"queries": [f"trade {i}" for i in range(64)]})
        took = time.perf_counter() - t0
        assert status == 503 and "ran out of time" in data["error"], data
        assert took < 3.0, took  # 8 steps of 0.5 s would be 4 s; it stops after ~1.5 s
        status, data = srv.post("/search", {"queries": ["trade", "river"]})
        assert status == 200 and len(data["results"]) == 2  # small batches still answer
    finally:
        srv.stop()


def test_a_request_waiting_for_a_worker_gets_503_at_the_deadline(fake_index: Path) -> None:
    srv = Server(SearchService(fake_index, workers=1, embedder=SlowEmbedder(2.0)), deadline=0.8)
    try:
        first = threading.Thread(target=srv.get, args=("/search?q=trade",), daemon=True)
        first.start()
        time.sleep(0.2)
        status, data = srv.get("/search?q=river")
        assert status == 503 and "busy" in data["error"], data
        first.join(timeout=30)
    finally:
        srv.stop()


# --- D14: slow clients ----------------------------------------------------------------------


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_header_clients_cannot_lock_out_a_token_holder(fake_index: Path) -> None:
    """300 connections that each sent one byte of a request head: /health and a search with
    the token still answer at once, and the oldest waiting connections were closed."""
    srv = Server(SearchService(fake_index, workers=2, embedder=FakeEmbedder()), token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    slow: list[socket.socket] = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"G")
            slow.append(s)
        time.sleep(0.5)
        for s in slow[:100]:  # the attacker keeps trickling
            with contextlib.suppress(OSError):
                s.sendall(b"E")
        status, took = _timed_get(srv, "/health", headers=auth)
        assert status == 200 and took < 5, (status, took)
        status, data = srv.post("/search", {"q": "trade", "k": 3}, headers=auth)
        assert status == 200 and len(data["hits"]) == 3, data
        status, _ = srv.get("/health")
        assert status == 401  # the guard still asks everyone else for the token
        closed = sum(_closed_by_server(s) for s in slow)
        assert closed >= 300 - 128, closed
    finally:
        for s in slow:
            s.close()
        srv.stop()


def test_a_client_trickling_its_head_is_closed_at_the_header_timeout(fake_index: Path) -> None:
    srv = Server(SearchService(fake_index, workers=2, embedder=FakeEmbedder()), header_timeout=1.0)
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        t0 = time.monotonic()
        closed_after = None
        for ch in b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                s.sendall(bytes([ch]))
            except OSError:
                closed_after = time.monotonic() - t0
                break
            if _closed_by_server(s):
                closed_after = time.monotonic() - t0
                break
            s.setblocking(True)
            time.sleep(0.1)
        s.close()
        assert closed_after is not None and 0.8 < closed_after < 3, closed_after
        assert srv.alive()
    finally:
        srv.stop()


# --- D24: loopback spellings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "addr", "host_headers"),
    [
        ("127.0.0.2", "127.0.0.2", ["127.0.0.2", "localhost", "127.0.0.1"]),
        ("127.1", "127.0.0.1", ["127.1", "127.0.0.1", "LOCALHOST"]),
        ("LOCALHOST", "127.0.0.1", ["localhost", "LocalHost", "127.0.0.1"]),
    ],
)
def test_every_loopback_spelling_answers_without_a_token(
    fake_index: Path, host: str, addr: str, host_headers: list[str]
) -> None:
    check_binding(host, None)  # loopback: no token needed...
    srv = Server(
        SearchService(fake_index, workers=2, embedder=FakeEmbedder()), host=host, addr=addr
    )
    try:
        for name in host_headers:  # ...and then it answers, rather than 421 to everyone
            status, data, _ = srv.request("GET", "/health", headers={"Host": f"{name}:{srv.port}"})
            assert status == 200, (name, data)
        status, data, _ = srv.request("GET", "/health", headers={"Host": "evil.example"})
        assert status == 421 and list(data) == ["error"] and "loopback" in data["error"]
    finally:
        srv.stop()
