"""The HTTP API against a real uvicorn server on loopback, with the real model on the bundled
seed articles. Results are checked against ``SemanticIndex.search_batch`` (the oracle), and
every kind of bad input must give a 4xx JSON error while the server keeps answering."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="pip install 'semsearch[serve]'")
pytest.importorskip("uvicorn", reason="pip install 'semsearch[serve]'")

from semsearch import SemanticIndex, UsageError
from semsearch.serve import http as serve_http
from semsearch.serve.run import check_binding, make_server
from semsearch.serve.service import SearchService

from .conftest import SEEDS

pytestmark = pytest.mark.slow


class Server:
    """A uvicorn server in a thread on 127.0.0.1 and an ephemeral port."""

    def __init__(
        self,
        service: SearchService,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
        addr: str = "127.0.0.1",
        **limits: Any,
    ) -> None:
        self.service = service
        self.addr = addr
        self.server = make_server(service, host=host, port=0, token=token, **limits)
        self.sock = socket.socket()
        self.sock.bind((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        conn = http.client.HTTPConnection(self.addr, self.port, timeout=30)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        ctype = resp.getheader("content-type", "")
        parsed = json.loads(payload) if "json" in ctype else {"_text": payload.decode()}
        return resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()}

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        status, data, _ = self.request("GET", path, **kw)
        return status, data

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
        status, data, _ = self.request("POST", path, body, **kw)
        return status, data

    def alive(self) -> bool:
        status, data = self.get("/health")
        return status == 200 and data["status"] == "ok"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    path = tmp_path_factory.mktemp("serve") / "index"
    SemanticIndex(path=path, embedder=real_embedder).add_paths([SEEDS])
    return path


@pytest.fixture(scope="module")
def oracle(seed_index: Path, real_embedder: Any) -> SemanticIndex:
    return SemanticIndex.load(seed_index, embedder=real_embedder)


@pytest.fixture(scope="module")
def server(seed_index: Path, real_embedder: Any) -> Iterator[Server]:
    s = Server(SearchService(seed_index, workers=2, embedder=real_embedder))
    yield s
    s.stop()


def _ids(hits: list[dict[str, Any]]) -> list[int]:
    return [h["chunk_id"] for h in hits]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_search_get_and_post_match_the_api(
    server: Server, oracle: SemanticIndex, mode: str
) -> None:
    want = oracle.search("trade between countries", k=4, mode=mode)
    status, got = server.get(f"/search?q=trade+between+countries&k=4&mode={mode}")
    assert status == 200, got
    assert _ids(got["hits"]) == [h.chunk_id for h in want]
    assert [h["score"] for h in got["hits"]] == pytest.approx([h.score for h in want], abs=1e-6)
    status, posted = server.post("/search", {"q": "trade between countries", "k": 4, "mode": mode})
    assert status == 200
    assert _ids(posted["hits"]) == _ids(got["hits"])
    hit = got["hits"][0]
    assert hit["location"].startswith(hit["source"] + ":")
    assert hit["text"] == asdict(want[0])["text"]


def test_batch_and_filters_match_the_api(server: Server, oracle: SemanticIndex) -> None:
    source = Path(oracle.search("oil", k=1)[0].source).name
    want = oracle.search_batch(
        ["oil prices", "diplomacy"], k=3, where={"source": source}, min_score=0.01
    )
    status, got = server.post(
        "/search",
        {"queries": ["oil prices", "diplomacy"], "k": 3, "source": source, "min_score": 0.01},
    )
    assert status == 200, got
    assert [_ids(r["hits"]) for r in got["results"]] == [[h.chunk_id for h in w] for w in want]
    assert all(h["source"].endswith(source) for r in got["results"] for h in r["hits"])
    # GET: q repeated is a batch; per_source caps hits per file.
    status, got = server.get("/search?q=oil&q=minister&k=5&per_source=1&diverse=true")
    assert status == 200
    for r in got["results"]:
        sources = [h["source"] for h in r["hits"]]
        assert len(sources) == len(set(sources))


def test_highlight_is_a_sentence_span_inside_the_text(server: Server) -> None:
    status, got = server.post("/search", {"q": "foreign minister", "k": 3, "highlight": True})
    assert status == 200
    for h in got["hits"]:
        a, b = h["highlight"]
        assert 0 <= a < b <= len(h["text"])


def test_read_chunk_with_context_and_whole_document(server: Server, oracle: SemanticIndex) -> None:
    hit = oracle.search("Belarus Russia partnership", k=1)[0]
    status, got = server.get(f"/read?chunk_id={hit.chunk_id}&context=1")
    assert status == 200, got
    chunks = got["chunks"]
    assert [c["is_hit"] for c in chunks].count(True) == 1
    assert [c["ordinal"] for c in chunks] == sorted(c["ordinal"] for c in chunks)
    assert len(chunks) <= 3 and got["doc_id"] == hit.doc_id
    status, doc = server.post("/read", {"doc_id": hit.doc_id})
    assert status == 200
    assert hit.text in doc["text"] and doc["chunks"] >= 1 and doc["doc_id"] == hit.doc_id
    original = Path(hit.source).read_text(encoding="utf-8")
    assert doc["text"].split() == original.split()


def test_info_health_openapi_and_docs(server: Server) -> None:
    status, info = server.get("/info")
    assert status == 200 and info["chunks"] > 0 and info["documents"] == 5
    assert info["writes"] is False and info["generation"].startswith("gen")
    status, spec = server.get("/openapi.json")
    assert status == 200 and {"/search", "/read", "/info", "/health"} <= set(spec["paths"])
    assert "/upsert" not in spec["paths"]
    status, docs = server.get("/docs")
    assert status == 200 and "POST /search" in docs["_text"]


BAD = [
    ("POST", "/search", b'{"q": "trade", ', "malformed JSON"),
    ("POST", "/search", b'["trade"]', "must be a JSON object"),
    ("POST", "/search", b'{"q": 5}', "'q' must be a non-empty string"),
    ("POST", "/search", b'{"q": "x", "k": "5"}', "'k' must be an integer"),
    ("POST", "/search", b'{"q": "x", "k": 0}', "between 1 and 10000"),
    ("POST", "/search", b'{"q": "x", "k": 100000}', "between 1 and 10000"),
    ("POST", "/search", b'{"q": "x", "k": true}', "'k' must be an integer"),
    ("POST", "/search", b'{"q": "x", "color": "red"}', "unknown field 'color'"),
    ("POST", "/search", b'{"q": "x", "mode": "magic"}', "'mode' must be one of"),
    ("POST", "/search", b'{"q": "x", "where": [1]}', "'where' must be an object"),
    ("POST", "/search", b'{"q": "x", "min_score": "high"}', "'min_score' must be a finite"),
    ("POST", "/search", b'{"q": "x", "diverse": "yes"}', "'diverse' must be true or false"),
    ("POST", "/search", b'{"queries": []}', "non-empty list"),
    ("POST", "/search", b'{"q": "   "}', "non-empty string"),
    ("POST", "/search", b'{"q": "a", "queries": ["b"]}', "exactly one"),
    ("POST", "/search", b"\xff\xfe{", "malformed JSON"),
    ("POST", "/search", b"[" * 100000, "malformed JSON"),
    ("GET", "/search?q=x&k=abc", None, "'k' must be an integer"),
    ("GET", "/search?q=x&k=-1", None, "between 1 and 10000"),
    ("GET", "/search?q=x&limit=3", None, "unknown field 'limit'"),
    ("GET", "/search?q=x&k=1&k=2", None, "given more than once"),
    ("GET", "/search?q=x&where=%7Bbad", None, "malformed JSON in 'where'"),
    ("GET", "/read?chunk_id=999999", None, "no chunk"),
    ("GET", "/read?doc_id=../../etc/passwd", None, "no document"),
    ("GET", "/read?doc_id=/etc/passwd", None, "no document"),
    ("GET", "/read", None, "exactly one of"),
    ("GET", "/read?chunk_id=1&context=500", None, "between 0 and 20"),
    ("GET", "/info?verbose=1", None, "unknown parameter"),
    ("GET", "/nowhere", None, "no such endpoint"),
    ("DELETE", "/search", None, "method not allowed"),
    ("POST", "/upsert", b'{"documents": []}', "writes are disabled"),
    ("POST", "/delete", b'{"ids": ["x"]}', "writes are disabled"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), BAD)
def test_bad_input_is_one_4xx_json_message(
    server: Server, method: str, path: str, body: bytes | None, message: str
) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, data, _ = server.request(method, path, raw=body, headers=headers)
    assert 400 <= status < 500, (status, data)
    assert list(data) == ["error"] and message in data["error"], data
    assert "\n" not in data["error"] and "Traceback" not in data["error"]
    if message.startswith("no "):
        assert status == 404
    assert server.alive()


def test_wrong_content_type_and_huge_bodies(server: Server) -> None:
    status, data, _ = server.request(
        "POST", "/search", raw=b'{"q": "x"}', headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and "application/json" in data["error"]
    huge = b'{"q": "' + b"a" * (serve_http.MAX_BODY + 10) + b'"}'
    status, data, _ = server.request(
        "POST", "/search", raw=huge, headers={"Content-Type": "application/json"}
    )
    assert status == 413 and "limit" in data["error"]
    # Without Content-Length (chunked), the limit is enforced while reading.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    parts = (b"a" * 65536 for _ in range(serve_http.MAX_BODY // 65536 + 2))
    conn.request(
        "POST",
        "/search",
        body=parts,
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 413 and "limit" in json.loads(resp.read())["error"]
    conn.close()
    assert server.alive()


def test_slow_client_gets_408_and_does_not_block_others(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve_http, "BODY_TIMEOUT", 1.0)
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow.sendall(
        b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"q": '
    )
    t0 = time.monotonic()
    assert server.alive()  # answered while the slow body is pending
    assert time.monotonic() - t0 < 1.0
    reply = b""
    while b"within" not in reply:
        part = slow.recv(4096)
        if not part:
            break
        reply += part
    slow.close()
    reply = reply.decode()
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "not received within" in reply
    assert server.alive()


def test_client_disconnect_mid_request_and_mid_response(server: Server) -> None:
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /search?q=trade&k=50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.close()  # gone before the answer
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /search?q=trade&k=50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()  # gone in the middle of the body
    assert server.alive()


def test_no_cors_headers_and_dns_rebinding_refused(server: Server) -> None:
    status, _, headers = server.request("GET", "/health", headers={"Origin": "http://evil.example"})
    assert status == 200 and not any(h.startswith("access-control-") for h in headers)
    status, _, headers = server.request(
        "OPTIONS",
        "/search",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert status == 405 and "access-control-allow-origin" not in headers
    status, data, _ = server.request("GET", "/health", headers={"Host": "evil.example:8765"})
    assert status == 421 and "loopback" in data["error"]


def test_page_is_served_with_a_strict_policy(server: Server) -> None:
    status, data, headers = server.request("GET", "/")
    assert status == 200 and '<input id="q"' in data["_text"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "http://" not in data["_text"] and "https://" not in data["_text"]  # no CDN


def test_token_required_off_loopback(seed_index: Path, real_embedder: Any) -> None:
    with pytest.raises(UsageError, match="token"):
        check_binding("0.0.0.0", None)
    check_binding("0.0.0.0", "s3cret")
    check_binding("127.0.0.2", None)
    s = Server(SearchService(seed_index, workers=1, embedder=real_embedder), token="s3cret")
    try:
        status, data = s.get("/health")
        assert status == 401 and "token" in data["error"]
        assert s.get("/health", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.get("/health", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert s.get("/search?q=trade&token=s3cret")[0] == 200
        assert s.get("/")[0] == 401
    finally:
        s.stop()


def test_writes_new_generations_and_a_deleted_index(
    seed_index: Path, real_embedder: Any, tmp_path: Path
) -> None:
    path = tmp_path / "index"
    shutil.copytree(seed_index, path)
    s = Server(SearchService(path, workers=2, allow_writes=True, embedder=real_embedder))
    try:
        text = "Zanzibar clove harvests doubled after the monsoon."
        status, data = s.post(
            "/upsert", {"documents": [{"id": "note-1", "text": text, "metadata": {"lang": "en"}}]}
        )
        assert status == 200 and data["upserted"] == 1, data
        status, got = s.get('/search?q=clove+harvest&k=1&where={"lang":"en"}')
        assert status == 200 and got["hits"][0]["doc_id"] == "note-1"
        status, data = s.post("/upsert", {"documents": [{"id": "note-2"}]})
        assert status == 400 and "'text' must be a string" in data["error"]
        status, data = s.post("/delete", {"ids": ["note-1"]})
        assert status == 200 and data["deleted"] == 1
        status, data = s.post("/delete", {"ids": ["note-1"]})
        assert status == 400 and "no document" in data["error"]
        # refresh re-checks the folders the index was built from (the seeds: unchanged).
        status, data = s.post("/refresh", {})
        assert status == 200 and data["stats"]["unchanged"] == 5, data
        status, data = s.post("/refresh", {"paths": ["/etc"]})
        assert status == 400 and "unknown field 'paths'" in data["error"]
        # Another writer publishes a new generation: picked up without a restart.
        before = s.get("/info")[1]["generation"]
        other = SemanticIndex.load(path, embedder=real_embedder)
        other.upsert(["Quokkas smile on Rottnest Island."], ids=["outside"])
        status, got = s.get("/search?q=quokka&k=1&mode=keyword")
        assert status == 200 and got["hits"][0]["doc_id"] == "outside"
        assert s.get("/info")[1]["generation"] != before
        # The index directory deleted while serving: 410 with one message, then back.
        shutil.rmtree(path)
        for p in ("/search?q=quokka", "/info", "/health", "/read?chunk_id=1"):
            status, data = s.get(p)
            assert status == 410 and "gone" in data["error"], (p, data)
        shutil.copytree(seed_index, path)
        status, got = s.get("/search?q=trade&k=1")
        assert status == 200 and got["hits"]
    finally:
        s.stop()


def test_missing_extra_names_the_pip_command() -> None:
    from semsearch import MissingDependencyError
    from semsearch.serve.run import require

    with pytest.raises(MissingDependencyError, match=r"pip install 'semsearch\[serve\]'"):
        require("semsearch_no_such_module", "the HTTP server (uvicorn)")


def test_index_rebuilt_while_requests_flow(
    seed_index: Path, real_embedder: Any, tmp_path: Path
) -> None:
    """Searches keep answering 200 while another writer publishes generation after
    generation (and the server cleans nothing it still reads)."""
    path = tmp_path / "index"
    shutil.copytree(seed_index, path)
    s = Server(SearchService(path, workers=2, embedder=real_embedder))
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(s.get("/search?q=trade+minister&k=3")[0])

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        writer = SemanticIndex.load(path, embedder=real_embedder)
        for n in range(4):
            writer.upsert([f"Generation {n} brings news about trade."], ids=[f"gen-{n}"])
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        assert statuses and set(statuses) == {200}, statuses
        assert s.service.generations_loaded >= 2  # it followed the writer
        status, got = s.get("/search?q=generation+news&k=4&mode=keyword")
        assert status == 200 and {h["doc_id"] for h in got["hits"]} == {
            f"gen-{n}" for n in range(4)
        }
    finally:
        s.stop()


def test_a_bug_is_a_json_500_without_traceback(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.service, "info", boom)
    status, data, _ = server.request("GET", "/info")
    assert status == 500 and list(data) == ["error"]
    assert "RuntimeError" in data["error"] and "secret" not in data["error"]
    assert server.alive()
