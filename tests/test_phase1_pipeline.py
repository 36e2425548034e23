"""Phase 1 in worker processes (``indexing/pipeline.py``) against the in-process build as
the oracle: the same index, byte for byte where it matters (rows, chunk ids, vectors,
postings, skipped files), the same warnings; a dying worker fails the build in one line and
leaves the previous index as it was."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import signal
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch import api
from semsearch.embed.static import StaticEmbedder
from semsearch.errors import IndexWriteError
from semsearch.indexing import pipeline
from semsearch.indexing.engine import LocalEngine
from semsearch.store.manifest import CHUNKS

from .test_phase1_oracle import _embedder

STDLIB = Path(json.__file__).resolve().parents[1]
KILL = "kill-this-worker"


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> StaticEmbedder:
    return _embedder(str(tmp_path_factory.mktemp("pipeline")))


def _tree(root: Path) -> Path:
    """Code, Markdown, HTML and plain text of odd sizes, a binary file (skipped with a
    warning), an empty file and a big one (processed in the main process)."""
    root.mkdir()
    picked = sorted(p for p in STDLIB.glob("json/*.py")) + sorted(STDLIB.glob("email/*.py"))[:12]
    for i, p in enumerate(picked):
        shutil.copy(p, root / f"{i:02d}_{p.name}")
    for i in range(9):
        body = "\n\n".join(
            f"## Part {j}\n\nThe retry backoff doubles; item {i}.{j}." for j in range(i * 7)
        )
        (root / f"notes{i}.md").write_text(f"# Notes {i}\n\n{body}\n")
        (root / f"page{i}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><h1>Page {i}</h1>"
            + "".join(f"<p>Paragraph {j} of page {i}, naïve café.</p>" for j in range(i * 11))
            + "</body></html>"
        )
    (root / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (root / "empty.txt").write_text("")
    (root / "big.txt").write_text("A long line of words to index.\n" * 3000)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory.mktemp("pipeline-tree") / "tree")


def _pipelined(monkeypatch: pytest.MonkeyPatch, make: Any = None) -> None:
    """Every build below goes through worker processes, in many small tasks."""
    monkeypatch.setattr(pipeline, "TASK_FILES", 3)
    monkeypatch.setattr(pipeline, "BIG_FILE", 40_000)  # big.txt stays in this process

    def engine(embedder: Any) -> pipeline.PipelineEngine:
        factory = make or functools.partial(StaticEmbedder, embedder.model_dir)
        return pipeline.PipelineEngine(embedder, factory, workers=2, min_files=0, min_bytes=0)

    monkeypatch.setattr(pipeline, "static_engine", engine)


def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "static_engine", LocalEngine)


def _newest(where: Path) -> Path:
    """The chunk database of the segment the last build wrote."""
    return sorted(where.rglob(CHUNKS), key=lambda p: p.parent.name)[-1]


def _dump(where: Path) -> dict[str, Any]:
    """Everything a build writes that a search reads, from the one segment it made."""
    seg = _newest(where)
    conn = sqlite3.connect(seg)
    out: dict[str, Any] = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        try:  # rowids included: the document postings name documents by them
            out[table] = conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:  # WITHOUT ROWID: in key order
            out[table] = conn.execute(f"SELECT * FROM {table}").fetchall()
    conn.close()
    out["vectors"] = (seg.parent / "vectors.npy").read_bytes()
    return out


def _build(where: Path, roots: Sequence[Path], static: StaticEmbedder) -> Any:
    return api.index_paths(roots, where, embedder=static, progressive=True)


def test_workers_build_the_in_process_index(
    tree: Path, tmp_path: Path, static: StaticEmbedder, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="semsearch")
    with monkeypatch.context() as m:
        _in_process(m)
        expected = _build(tmp_path / "oracle", [tree], static)
    oracle_warnings = [r.getMessage() for r in caplog.records]
    caplog.clear()
    with monkeypatch.context() as m:
        _pipelined(m)
        got = _build(tmp_path / "pipelined", [tree], static)
    assert [r.getMessage() for r in caplog.records] == oracle_warnings
    assert any("blob.bin" in w for w in oracle_warnings)  # one warning, as in process
    assert (got.documents, got.chunks, got.skipped) == (expected.documents, expected.chunks, 1)
    assert got.skipped_sources == expected.skipped_sources
    a, b = _dump(tmp_path / "oracle"), _dump(tmp_path / "pipelined")
    assert a.keys() == b.keys() and len(a["chunks"]) > 200 and a["kw_lists"]
    for key in a:
        assert a[key] == b[key], key
    hits = [
        api.SemanticIndex(embedder=static, path=tmp_path / n).search("retry backoff", k=5)
        for n in ("oracle", "pipelined")
    ]
    assert [(h.chunk_id, h.score) for h in hits[0]] == [(h.chunk_id, h.score) for h in hits[1]]


def test_an_update_through_workers_equals_one_in_process(
    tree: Path, tmp_path: Path, static: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk ids of unchanged chunks are kept and new ones numbered on, the same way."""
    results = []
    for name, mode in (("oracle", _in_process), ("pipelined", _pipelined)):
        work = shutil.copytree(tree, tmp_path / name / "tree")
        with monkeypatch.context() as m:
            _in_process(m)
            _build(tmp_path / name / "index", [work], static)
        for p in sorted(work.glob("*.md"))[:4]:
            p.write_text(p.read_text() + "\n\nA new closing paragraph about parse_config.\n")
        (work / "added.py").write_text("def parse_config(path):\n    return {}\n" * 30)
        with monkeypatch.context() as m:
            mode(m)
            results.append(_build(tmp_path / name / "index", [work], static))
    assert dataclasses.replace(results[1], seconds=results[0].seconds) == results[0]
    ids = []
    for name in ("oracle", "pipelined"):
        conn = sqlite3.connect(_newest(tmp_path / name / "index"))
        got = conn.execute("SELECT row, chunk_id, doc_id, text FROM chunks ORDER BY row")
        ids.append([(r, c, Path(d).name, t) for r, c, d, t in got])
        conn.close()
    assert ids[0] == ids[1] and ids[0]


def _dying(model_dir: Path) -> StaticEmbedder:
    return _Dying(model_dir)


class _Dying(StaticEmbedder):
    """Kills its own process when asked to embed the marked text, as the OOM killer would."""

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        if any(KILL in t for t in texts):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().encode(texts, **kw)


def test_a_dying_worker_fails_the_build_and_keeps_the_index(
    tree: Path, tmp_path: Path, static: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = shutil.copytree(tree, tmp_path / "tree")
    where = tmp_path / "index"
    with monkeypatch.context() as m:
        _in_process(m)
        _build(where, [work], static)
    before = _dump(where)
    query = api.SemanticIndex(embedder=static, path=where).search("retry backoff", k=5)
    for i in range(6):  # the first task is done in this process, the marked file's by a worker
        (work / f"new{i}.txt").write_text(f"new file {i} about retry backoff\n")
    (work / "zz_marked.txt").write_text(f"this text has the marker {KILL} in it\n")
    with monkeypatch.context() as m:
        _pipelined(m, make=functools.partial(_dying, static.model_dir))
        with pytest.raises(
            IndexWriteError, match=r"worker process stopped unexpectedly.*unchanged"
        ):
            _build(where, [work], static)
    assert _dump(where) == before
    again = api.SemanticIndex(embedder=static, path=where).search("retry backoff", k=5)
    assert [(h.chunk_id, h.score) for h in again] == [(h.chunk_id, h.score) for h in query]
    assert not [p for p in where.iterdir() if p.name.startswith(".tmp-")]  # removed


@pytest.mark.parametrize(
    ("workers", "min_files", "min_bytes"), [(1, 0, 0), (2, 10_000, 0), (2, 0, 1 << 40)]
)
def test_small_inputs_and_one_cpu_stay_in_process(
    tree: Path, static: StaticEmbedder, monkeypatch: pytest.MonkeyPatch,
    workers: int, min_files: int, min_bytes: int,
) -> None:  # fmt: skip
    def no_pool(*a: Any, **k: Any) -> None:
        raise AssertionError("a worker pool was started")

    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", no_pool)
    engine = pipeline.PipelineEngine(
        static, functools.partial(StaticEmbedder, static.model_dir),
        workers=workers, min_files=min_files, min_bytes=min_bytes,
    )  # fmt: skip
    from semsearch.indexing.settings import ChunkParams

    files = sorted(tree.iterdir())
    pieces = list(engine.process(files, ChunkParams(128, 0)))
    oracle = list(LocalEngine(static).process(files, ChunkParams(128, 0)))
    assert [p and (p.doc.doc_id, p.rows) for p in pieces] == [
        p and (p.doc.doc_id, p.rows) for p in oracle
    ]


def test_tasks_keep_order_and_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semsearch.ingest.document import Document

    monkeypatch.setattr(pipeline, "TASK_FILES", 4)
    monkeypatch.setattr(pipeline, "TASK_BYTES", 1000)
    monkeypatch.setattr(pipeline, "BIG_FILE", 5000)
    sizes = [10, 600, 600, 10, 9000, 10, 10, 10, 10, 10, 10, 10]
    items: list[Any] = []
    for i, n in enumerate(sizes):
        (tmp_path / f"{i}.txt").write_text("x" * n)
        items.append(tmp_path / f"{i}.txt")
    items.insert(6, Document("d", "d", "text", "0" * 64))
    tasks = pipeline._tasks(items)
    assert [i for t in tasks for i in t.items] == items  # every item once, in order
    assert [(len(t.items), t.here) for t in tasks] == [
        (3, False), (1, False), (1, True), (1, False), (1, True), (4, False), (2, False)
    ]  # fmt: skip
    assert [t.size for t in tasks] == [1210, 10, 0, 10, 0, 40, 20]  # bytes to read, by workers


def test_a_script_without_a_main_guard_builds_in_process(
    tree: Path, tmp_path: Path, static: StaticEmbedder
) -> None:
    """Workers import the main script again: one indexing at top level must not run twice
    (or fail), so it builds in this process; a guarded script uses the workers."""
    import subprocess
    import sys

    body = (
        "import functools, sys\n"
        "from pathlib import Path\n"
        "from semsearch import api\n"
        "from semsearch.embed.static import StaticEmbedder\n"
        "from semsearch.indexing import pipeline\n"
        "made = []\n"
        "class Counting(pipeline.PipelineEngine):\n"
        "    def _taken(self, future):\n"
        "        made.append(1)\n"
        "        return super()._taken(future)\n"
        "pipeline.static_engine = lambda e: Counting(\n"
        "    e, functools.partial(StaticEmbedder, e.model_dir),\n"
        "    workers=2, min_files=0, min_bytes=0)\n"
        "pipeline.TASK_FILES = 3\n"
        "def run():\n"
        "    e = StaticEmbedder(sys.argv[1])\n"
        "    api.index_paths([sys.argv[2]], sys.argv[3], embedder=e, progressive=True)\n"
        "    print('tasks from workers:', len(made))\n"
    )
    for name, tail in (("bare", "run()\n"), ("guarded", "if __name__ == '__main__':\n    run()\n")):
        script = tmp_path / f"{name}.py"
        script.write_text(body + tail)
        done = subprocess.run(
            [sys.executable, str(script), str(static.model_dir), str(tree), str(tmp_path / name)],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        used = int(done.stdout.strip().rsplit(" ", 1)[-1])
        assert (used > 0) == (name == "guarded"), (name, done.stdout)


def _postings(inv: Any, tmp_path: Path, name: str) -> list[tuple[Any, ...]]:
    """What ``inv`` writes for rows of one document each (the tables ``write`` reads)."""
    conn = sqlite3.connect(tmp_path / f"{name}.sqlite")
    conn.executescript(
        "CREATE TABLE documents (doc_id TEXT UNIQUE);"
        "CREATE TABLE chunks (row INTEGER, doc_id TEXT, ordinal INTEGER);"
    )
    rows = inv._rows.tolist() + [r for t in inv.triples.rows for r in t.tolist()]
    for r in sorted(set(rows)):
        conn.execute("INSERT INTO documents VALUES (?)", (f"d{r}",))
        conn.execute("INSERT INTO chunks VALUES (?, ?, 0)", (r, f"d{r}"))
    inv.write(conn)
    return conn.execute("SELECT * FROM kw_lists ORDER BY level, term").fetchall()


def test_worker_numbered_terms_equal_terms_analysed_here(tmp_path: Path) -> None:
    """Two workers' analysers, their groups interleaved as the builder adds them, give the
    postings of analysing every text here; a group out of its analyser's order is refused."""
    from semsearch.store.inverted import Analyser, Inverted

    texts = [p.read_text(errors="replace")[:3000] for p in sorted(STDLIB.glob("json/*.py"))]
    texts += ["naïve café parseConfig", "", "the the the", "東京は日本の首都です。", "x"] * 3
    groups = [texts[i : i + 3] for i in range(0, len(texts), 3)]
    here, there = Inverted(), Inverted()
    workers = [Analyser(), Analyser()]
    row = 0
    for i, group in enumerate(groups):
        rows = list(range(row, row + len(group)))
        row += len(group)
        here.add_texts(rows, group)
        there.add_analysed(rows, workers[i % 3 % 2](group))  # uneven turns
    assert _postings(here, tmp_path, "here") == _postings(there, tmp_path, "there")
    late = Analyser()
    late(texts[:2])  # a group never added
    with pytest.raises(ValueError, match="out of order"):
        Inverted().add_analysed([0, 1], late(texts[2:4]))


def test_a_worker_freezes_what_its_tasks_leave_alive(tree: Path, static: StaticEmbedder) -> None:
    """What a worker keeps across tasks (its memos) is frozen at each task's start, so the
    collector's full passes skip it; the task's result is the same."""
    import gc

    from semsearch.indexing.settings import ChunkParams
    from semsearch.store.inverted import Analyser

    files = sorted(p for p in tree.rglob("*") if p.is_file())[:3]
    saved = pipeline._engine, pipeline._analyse
    pipeline._engine, pipeline._analyse = LocalEngine(static), Analyser()
    gc.unfreeze()
    try:
        done = pipeline._run(files, ChunkParams(40, 0))
        assert gc.get_freeze_count() > 0
        want = list(LocalEngine(static).process(files, ChunkParams(40, 0)))
        got = [(p.rows, p.vectors.tobytes()) for p in done.pieces if p is not None]
        assert got == [(p.rows, p.vectors.tobytes()) for p in want if p is not None]
        assert got and all(p is None or p.terms is not None for p in done.pieces)
    finally:
        gc.unfreeze()
        pipeline._engine, pipeline._analyse = saved
