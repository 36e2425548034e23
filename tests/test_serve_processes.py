"""``semsearch serve --processes N``: N processes accept on one port (so searches use every
core, not one interpreter's), all answer like the index does, and none outlives the server."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="pip install 'semsearch[serve]'")

from semsearch import SemanticIndex
from semsearch.embed import DEFAULT_MODEL, DEFAULT_PRECISION, Embedder, normalize

from .conftest import REPO, FakeEmbedder

pytestmark = pytest.mark.slow

TEXTS = [f"Note {i} about {w} and the harbour" for i, w in enumerate(
    "copper grain tariff winter budget railway bridge school harvest forest".split())]  # fmt: skip


class StandIn(Embedder):
    """The fake embedder's vectors under the default model's name and width, so the server
    opens the index with the real model (which embeds the queries)."""

    name, precision, dim = DEFAULT_MODEL, DEFAULT_PRECISION, 384

    def encode(self, texts: Sequence[str], *, kind: str = "document") -> np.ndarray:
        return normalize(np.tile(FakeEmbedder(64).encode(texts), (1, 6)))


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    idx = tmp_path / "idx"
    SemanticIndex(path=idx, embedder=StandIn()).add_texts(TEXTS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "serve", "-i", str(idx), "--port", str(port),
         "--processes", "2", "--workers", "1"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while True:
        try:
            if _get(port, "/health")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    try:
        yield proc, port, idx
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_every_process_answers_like_the_index(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, idx = served
    children = _children(proc.pid)
    assert len(children) == 1  # two processes in all share the port
    oracle = SemanticIndex.load(idx)
    queries = [f"{w} harbour" for w in ("copper", "winter", "school", "forest")] * 8
    want = {q: [h.doc_id for h in oracle.search(q, 3, mode="dense")] for q in set(queries)}

    def ask(q: str) -> tuple[str, list[str]]:
        status, body = _get(port, f"/search?q={q.replace(' ', '+')}&k=3&mode=dense")
        assert status == 200, body
        return q, [h["doc_id"] for h in json.loads(body)["hits"]]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, queries))
    assert all(ids == want[q] for q, ids in got)
    cpu = [float(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[11])
           for p in (proc.pid, *children)]  # fmt: skip
    assert all(c > 0 for c in cpu)  # both loaded the index and the model themselves


def test_no_process_outlives_the_server(served: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, _, _ = served
    children = _children(proc.pid)
    assert children
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.wait(60)
    deadline = time.monotonic() + 30
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c) for c in children)


def test_a_killed_server_takes_its_processes_with_it(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, _, _ = served
    children = _children(proc.pid)
    proc.kill()  # SIGKILL: no chance to stop them itself
    proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c) for c in children)
