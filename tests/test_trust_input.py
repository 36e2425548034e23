"""Issue 11, "one line, never a traceback": bad input and broken indexes through the CLI.

Every case asserts the exit code (2 usage, 1 other) and that stderr is exactly one line
starting ``semsearch: error:`` with no traceback. The index is built once with the real model.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch import SemanticIndex, UsageError
from semsearch.cli import main
from semsearch.store import IndexDir

from .conftest import REPO, SEEDS, FakeEmbedder, sigint_default

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust-input") / "index"
    assert main(["index", str(SEEDS), "--index", str(path)]) == 0
    return path


@pytest.fixture
def ix(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built index, free to damage."""
    copy = tmp_path / "ix"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def one_line(capsys: pytest.CaptureFixture[str], args: list[str], code: int) -> str:
    got = main(args)
    _, err = capsys.readouterr()
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if not _progress(x)]
    assert len(lines) == 1, err
    assert lines[0].startswith("semsearch: "), err
    assert got == code, err
    return lines[0]


def _progress(line: str) -> bool:
    """The progress bar's label, printed before any work when stderr is not a terminal."""
    return line.startswith(("Indexing", "  Indexing"))


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["-k", "99999999999999999999"],
        ["-k", "100000", "--diverse"],
        ["-k", "0"],
        ["-k", "-3"],
        ["--min-score", "nan"],
        ["--min-score", "inf"],
        ["--per-source", "0"],
    ],
)
def test_bad_numbers_are_usage_errors(
    capsys: pytest.CaptureFixture[str], built: Path, extra: list[str]
) -> None:
    one_line(capsys, ["query", "trade", "--index", str(built), *extra], 2)


def test_chunk_tokens_above_the_model_limit_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = one_line(
        capsys,
        ["index", str(SEEDS), "--index", str(tmp_path / "x"), "--chunk-tokens", "100000"],
        2,
    )
    assert "chunks of 100000 tokens are more than the model reads" in line
    assert not IndexDir(tmp_path / "x").exists()


# --- malformed manifests and pointers -------------------------------------------------------


def _rewrite_manifest(ix: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Change the manifest and re-sign CURRENT, so only the field checks can catch it."""
    gen = IndexDir(ix).current()
    path = gen / "manifest.json"
    text = edit(json.loads(path.read_text()))
    path.write_text(text)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (ix / "CURRENT").write_text(f"{gen.name} {digest}\n")


def _field(name: str, value: object):  # type: ignore[no-untyped-def]
    return lambda data: json.dumps({**data, name: value})


MANIFESTS = {
    "files-empty": _field("files", {}),
    "files-null": _field("files", None),
    "files-string": _field("files", "chunks.sqlite"),
    "files-list": _field("files", ["chunks.sqlite"]),
    "index-params-null": _field("index_params", None),
    "dim-string": _field("dim", "384"),
    "documents-negative": _field("documents", -1),
    "model-null": _field("model", None),
    "deep-nesting": lambda data: json.dumps({**data, "index_params": 0}).replace(
        '"index_params": 0', '"index_params": ' + "[" * 100_000 + "]" * 100_000
    ),
    "not-an-object": lambda data: "[1, 2, 3]",
    "not-json": lambda data: "{ this is not json",
    "version-99": _field("format_version", 99),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
@pytest.mark.parametrize("command", ["query", "info", "index", "verify"])
def test_malformed_manifest_is_one_line(
    capsys: pytest.CaptureFixture[str], ix: Path, case: str, command: str
) -> None:
    _rewrite_manifest(ix, MANIFESTS[case])
    args = {
        "query": ["query", "trade", "--index", str(ix)],
        "info": ["info", "--index", str(ix)],
        "index": ["index", str(SEEDS / "000_70defebb133c6857.txt"), "--index", str(ix)],
        "verify": ["info", "--verify", "--index", str(ix)],
    }[command]
    one_line(capsys, args, 1)


@pytest.mark.parametrize("case", ["dir", "empty", "garbage", "missing-gen", "binary"])
def test_broken_current_is_one_line(
    capsys: pytest.CaptureFixture[str], ix: Path, case: str
) -> None:
    pointer = ix / "CURRENT"
    pointer.unlink()
    if case == "dir":
        pointer.mkdir()
    elif case == "empty":
        pointer.write_text("")
    elif case == "garbage":
        pointer.write_text("../../etc passwd\n")
    elif case == "missing-gen":
        pointer.write_text("gen-999999\n")
    else:
        pointer.write_bytes(os.urandom(64) + b"\xff\xfe")
    for args in (["query", "trade", "--index", str(ix)], ["info", "--index", str(ix)]):
        one_line(capsys, args, 1)


# --- a damaged chunk database too large to be checksummed on load ---------------------------


def _damage_sqlite(path: Path) -> None:
    """Same size, pages overwritten past the header: only reading it finds out."""
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page * 2):
        data[start : start + 64] = os.urandom(64)
    path.write_bytes(bytes(data))


def test_damaged_large_chunk_database_is_one_line(
    capsys: pytest.CaptureFixture[str], ix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semsearch.indexing.previous as previous
    import semsearch.store.manifest as manifest

    monkeypatch.setattr(manifest, "VERIFY_ON_LOAD_BYTES", 0)  # as if it were over 32 MiB
    monkeypatch.setattr(previous, "VERIFY_ON_LOAD_BYTES", 0)
    _damage_sqlite(IndexDir(ix).current() / "chunks.sqlite")
    for args, code in (
        (["query", "trade decline", "--index", str(ix)], 1),
        (["query", "trade decline", "--index", str(ix), "--mode", "keyword"], 1),
        (["query", "trade decline", "--index", str(ix), "--mode", "dense"], 1),
        (["info", "--verify", "--index", str(ix)], 1),
        (["index", str(SEEDS), "--index", str(ix)], 1),
    ):
        got = main(args)
        _, err = capsys.readouterr()
        lines = [x for x in err.strip().splitlines() if not _progress(x)]
        assert "Traceback" not in err and len(lines) == 1, err
        assert got == code, err


# --- --index naming something that is not an index directory --------------------------------


@pytest.mark.parametrize("where", ["file", "/dev/null", "/proc/self/status", "/proc/1/nope"])
@pytest.mark.parametrize("command", ["query", "info", "index", "remove"])
def test_index_option_naming_a_non_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str, command: str
) -> None:
    if where == "file":
        target = tmp_path / "plain.txt"
        target.write_text("not an index")
        where = str(target)
    before = Path(where).read_bytes() if where.endswith(".txt") else None
    args = {
        "query": ["query", "trade", "--index", where],
        "info": ["info", "--index", where],
        "index": ["index", str(SEEDS / "000_70defebb133c6857.txt"), "--index", where],
        "remove": ["remove", "anything", "--index", where],
    }[command]
    code = main(args)
    _, err = capsys.readouterr()
    lines = [x for x in err.strip().splitlines() if not _progress(x)]
    assert "Traceback" not in err and len(lines) == 1, err
    assert code in (1, 2), err
    if before is not None:
        assert Path(where).read_bytes() == before


# --- Ray client without its extra ------------------------------------------------------------


def test_ray_client_address_without_the_client_extra(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    try:
        import grpc  # noqa: F401

        pytest.skip("ray[client] is installed here")
    except ImportError:
        pass
    line = one_line(
        capsys,
        [
            "index", str(SEEDS), "--index", str(tmp_path / "x"),
            "--engine", "ray", "--ray-address", "ray://127.0.0.1:1",
        ],
        1,
    )  # fmt: skip
    assert "ray[client]" in line


# --- disk full during a build -----------------------------------------------------------------


def _enospc(*_a: object, **_k: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _sqlite_full(*_a: object, **_k: object) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def _faiss_full(*_a: object, **_k: object) -> None:
    raise RuntimeError(
        "Error in void faiss::FileIOWriter::operator() at impl/io.cpp:98: fwrite failed: "
        "No space left on device"
    )


@pytest.mark.parametrize(
    "target",
    [
        ("semsearch.store.npy", "VectorWriter", "append", _enospc),
        ("semsearch.store.chunkstore", "ChunkStore", "commit", _sqlite_full),
        ("semsearch.store.chunkstore", "ChunkStore", "add_document", _sqlite_full),
        ("semsearch.index.faiss_index", "FaissIndex", "save", _faiss_full),
        ("semsearch.store.layout", "IndexDir", "publish", _enospc),
    ],
    ids=lambda t: f"{t[1]}.{t[2]}",
)
def test_disk_full_during_a_build_is_one_line_and_the_index_is_unchanged(
    capsys: pytest.CaptureFixture[str],
    ix: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: tuple,  # type: ignore[type-arg]
) -> None:
    import importlib

    module, cls, name, fail = target
    pointer = (ix / "CURRENT").read_bytes()
    new = tmp_path / "new.txt"
    new.write_text("A brand new document about orbital mechanics and comets.")
    monkeypatch.setattr(getattr(importlib.import_module(module), cls), name, fail)
    line = one_line(capsys, ["index", str(new), "--index", str(ix), "--backend", "faiss"], 1)
    assert "unchanged" in line or "No space" in line or "full" in line
    monkeypatch.undo()
    assert (ix / "CURRENT").read_bytes() == pointer
    assert not [p for p in ix.iterdir() if p.name.startswith(".tmp-")]
    assert main(["info", "--verify", "--index", str(ix)]) == 0
    capsys.readouterr()


# --- the Python API's where= -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> SemanticIndex:
    return SemanticIndex.from_texts(
        ["a cat", "a dog", "cat food", "no language"],
        metadata=[{"lang": "en", "n": 1}, {"lang": "fr", "n": 2}, {'it"s': "q"}, {"lang": None}],
        embedder=FakeEmbedder(),
    )


@pytest.mark.parametrize(
    "where",
    [
        {"lang": {"nested": 1}},
        {"lang": ["en", "fr"]},
        {"n": 10**30},
        {"n": float("nan")},
        {"lang": b"bytes"},
        {"lang": object()},
        {1: "en"},
        {"": "en"},
        {"x" * 100_000: "en"},
        {"lang": "x" * 2_000_000},
        ["lang", "en"],
        "lang=en",
    ],
    ids=lambda w: type(w).__name__ + str(len(str(w)))[:6],
)
def test_api_where_bad_values_raise_usage_error(small: SemanticIndex, where: object) -> None:
    try:
        hits = small.search("cat", k=3, where=where)  # type: ignore[arg-type]
    except UsageError:
        return
    # Accepted only when it is a well-defined filter that matches nothing.
    assert hits == []


def test_api_where_null_and_quoted_keys(small: SemanticIndex) -> None:
    assert [h.text for h in small.search("language", k=5, where={"lang": None})] == ["no language"]
    assert [h.text for h in small.search("cat", k=5, where={'it"s': "q"})] == ["cat food"]
    fr = small.search("cat", k=5, where={"lang": "fr"})
    assert [h.text for h in fr] == ["a dog"]  # non-empty, and only the matching document
    assert [h.text for h in small.search("cat", k=5, where={"n": 1})] == ["a cat"]


# --- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_in_process_is_one_line_and_130(
    capsys: pytest.CaptureFixture[str], built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(SemanticIndex, "search_with", interrupt)
    assert one_line(capsys, ["query", "trade", "--index", str(built)], 130) == (
        "semsearch: interrupted"
    )


def test_sigint_during_a_real_build_is_one_line_and_130(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(400):
        (docs / f"d{i}.txt").write_text(f"Sentence {i} about a long topic. " * 60)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "semsearch", "index", str(docs), "--index", str(tmp_path / "ix")],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=REPO, text=True,
        preexec_fn=sigint_default,
    )  # fmt: skip
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob("ix/.tmp-*")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    # One embedding batch finishes before Python sees the signal: minutes on a loaded machine.
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "semsearch: interrupted"
    assert not IndexDir(tmp_path / "ix").exists()
    assert not list(tmp_path.glob("ix/.tmp-*"))
