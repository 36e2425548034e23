"""Faults inside a merge, deterministically: ENOSPC at every write point in turn, and a
corrupt segment found by ``semsearch verify`` and rebuilt by ``semsearch repair``.

After every fault the previous generation answers exactly as before, nothing indexed is
lost, and the next write succeeds.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semsearch import SemanticIndex, SemsearchError, index_paths
from semsearch.cli import main
from semsearch.store import IndexDir

from .conftest import FakeEmbedder
from .fault_battery import answer, content_answer, segment_count
from .fault_segments import segmented_index


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An index of four segments (a build, then three edits) over its own folder."""
    work = tmp_path_factory.mktemp("merge")
    segmented_index(work / "docs", work / "idx")
    assert segment_count(work / "idx") == 4
    return work / "docs", work / "idx"


def _enospc(what: str) -> Exception:
    if what == "sqlite":
        return sqlite3.OperationalError("database or disk is full")
    if what == "faiss":
        return RuntimeError("Error in faiss::FileIOWriter: fwrite failed: No space left on device")
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


#: Every place a merge writes: (module, owner or None for a function, name, error kind).
WRITE_POINTS = [
    ("semsearch.store.chunkstore", "ChunkStore", "create", "sqlite"),
    ("semsearch.store.chunkstore", "ChunkStore", "copy_documents_from", "sqlite"),
    ("semsearch.store.chunkstore", "ChunkStore", "commit", "sqlite"),
    # inside the copy's transaction, and inside the commit:
    ("semsearch.store.chunkstore", "ChunkStore", "_copy_postings", "sqlite"),
    ("semsearch.store.inverted", "Inverted", "write", "sqlite"),
    ("semsearch.store.npy", "VectorWriter", "append", "os"),
    ("semsearch.store.npy", "VectorWriter", "close", "os"),
    ("semsearch.index.faiss_index", "FaissIndex", "save", "faiss"),
    ("semsearch.store.layout", None, "write_synced", "os"),
    ("semsearch.store.layout", None, "fsync_path", "os"),
    ("os", None, "rename", "os"),
    ("os", None, "replace", "os"),
]


class Faults:
    """Wraps every write point; ``fail_at`` = n makes the n-th call (over all of them) fail."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        import importlib

        self.calls: list[str] = []
        self.fail_at = -1
        for module, owner, name, kind in WRITE_POINTS:
            mod = importlib.import_module(module)
            holder = getattr(mod, owner) if owner else mod
            real = holder.__dict__[name] if owner else getattr(mod, name)
            mp.setattr(holder, name, self._wrap(f"{owner or module}.{name}", real, kind))

    def _wrap(self, label: str, real: Any, kind: str) -> Any:
        is_class = isinstance(real, classmethod)
        func = real.__func__ if is_class else real

        def wrapped(*a: Any, **k: Any) -> Any:
            self.calls.append(label)
            if len(self.calls) - 1 == self.fail_at:
                raise _enospc(kind)
            return func(*a, **k)

        return classmethod(wrapped) if is_class else wrapped


def _optimize(idx: Path) -> Any:
    return SemanticIndex.load(idx, embedder=FakeEmbedder()).optimize()


def _points(idx: Path, tmp: Path) -> list[str]:
    """The write points a merge of ``idx`` passes through, in order (run on a copy)."""
    trial = tmp / "trial"
    shutil.copytree(idx, trial)
    with pytest.MonkeyPatch.context() as mp:
        faults = Faults(mp)
        _optimize(trial)
    return list(faults.calls)


@pytest.fixture(scope="module")
def merge_points(
    segmented: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    return _points(segmented[1], tmp_path_factory.mktemp("points"))


def test_a_merge_passes_every_kind_of_write_point(merge_points: list[str]) -> None:
    kinds = {c.rsplit(".", 1)[-1] for c in merge_points}
    assert {"create", "copy_documents_from", "_copy_postings", "commit", "write"} <= kinds
    assert {"append", "close", "save"} <= kinds
    assert {"write_synced", "fsync_path", "rename", "replace"} <= kinds


def test_enospc_at_each_write_point_of_a_merge(
    segmented: tuple[Path, Path], merge_points: list[str], tmp_path: Path
) -> None:
    """ENOSPC at every write point of a merge in turn: one line, the index answering as
    before (same hits, same documents, files intact), no temporary files left, and the
    next merge succeeds with the same answers."""
    _, base = segmented
    before = answer(base)
    failed_before_publish = 0
    for n, point in enumerate(merge_points):
        idx = tmp_path / f"idx{n}"
        shutil.copytree(base, idx)
        pointer = (idx / "CURRENT").read_bytes()
        with pytest.MonkeyPatch.context() as mp:
            faults = Faults(mp)
            faults.fail_at = n
            try:
                _optimize(idx)
                published = True
            except SemsearchError as exc:
                line = str(exc)
                assert "\n" not in line and "unchanged" in line, (point, exc)
                assert "full" in line or "No space" in line, (point, exc)  # the real cause
                published = False
        what = f"ENOSPC at write {n} ({point})"
        if not published:
            failed_before_publish += 1
            assert (idx / "CURRENT").read_bytes() == pointer, what
            assert segment_count(idx) == 4, what
        assert answer(idx) == before, what
        assert SemanticIndex.load(idx, embedder=FakeEmbedder()).verify() == [], what
        assert not [p.name for p in idx.iterdir() if p.name.startswith(".tmp-")], what
        _optimize(idx)  # the next write succeeds
        assert segment_count(idx) == 1, what
        assert answer(idx)[0] == before[0] and content_answer(idx) == content_answer(base), what
        shutil.rmtree(idx)
    # Only the directory sync and tidying after the swap may fail without failing the merge.
    assert failed_before_publish >= len(merge_points) - 2


# --- a corrupt segment ---------------------------------------------------------------------


@pytest.fixture
def damaged(segmented: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """A copy of the four-segment index whose second segment's chunk database is damaged."""
    docs, base = segmented
    idx = tmp_path / "idx"
    shutil.copytree(base, idx)
    refs = _segments(idx)
    victim = refs[1]
    path = idx / victim / "chunks.sqlite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    yield docs, idx, victim


def _segments(idx: Path) -> list[str]:
    import json

    m = json.loads((IndexDir(idx).current() / "manifest.json").read_text())
    return [s["name"] for s in m["segments"]]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_names_the_damaged_segment_in_one_line(
    damaged: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, idx, victim = damaged
    pointer = (idx / "CURRENT").read_bytes()
    code, _, err = _run(["verify", "--index", str(idx)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{victim}/chunks.sqlite" in lines[0] and "repair" in lines[0]
    assert (idx / "CURRENT").read_bytes() == pointer  # verify changes nothing


def test_verify_of_an_intact_index_exits_0(
    segmented: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["verify", "--index", str(segmented[1])], capsys)
    assert code == 0 and "4 segments" in err and "match" in err


def test_an_update_refuses_a_damaged_segment_and_points_to_repair(
    damaged: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    docs, idx, victim = damaged
    pointer = (idx / "CURRENT").read_bytes()
    (docs / "zz-new.txt").write_text("A newcomer about tide pools.")
    try:
        with pytest.raises(SemsearchError) as err:
            index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    finally:
        (docs / "zz-new.txt").unlink()
    assert "\n" not in str(err.value) and "repair" in str(err.value)
    assert victim in str(err.value)
    assert (idx / "CURRENT").read_bytes() == pointer


def test_repair_rebuilds_from_the_intact_segments_and_rereads_the_lost_files(
    segmented: tuple[Path, Path],
    damaged: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Repair leaves the damaged segment out, re-reads its documents from their files:
    afterwards the index holds every document with the same text and answers as the intact
    index did; the intact segments' chunk rows were carried, never re-read."""
    _, base = segmented
    _, idx, victim = damaged
    want = content_answer(base)
    monkeypatch.setattr("semsearch.indexing.writer._load", lambda *a: FakeEmbedder())
    code, out, err = _run(["repair", "--index", str(idx), "--json"], capsys)
    assert code == 0, err
    import json

    done = json.loads(out)
    assert done["dropped"] == [victim] and done["dropped_documents"] > 0
    assert done["reread"] == done["dropped_documents"]
    assert content_answer(idx) == want
    code, _, _ = _run(["verify", "--index", str(idx)], capsys)
    assert code == 0
    assert victim not in _segments(idx)
    # The next write succeeds.
    index_paths([base.parent / "docs"], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    assert content_answer(idx) == want


@pytest.mark.parametrize("name", ["vectors.npy", "index.faiss"])
def test_repair_rebuilds_damaged_derived_files_of_a_segment(
    segmented: tuple[Path, Path],
    tmp_path: Path,
    name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base = segmented
    idx = tmp_path / "idx"
    shutil.copytree(base, idx)
    victim = _segments(idx)[0]
    path = idx / victim / name
    data = bytearray(path.read_bytes())
    data[-9] ^= 0x01
    path.write_bytes(bytes(data))
    code, _, err = _run(["verify", "--index", str(idx)], capsys)
    assert code == 1 and f"{victim}/{name}" in err
    monkeypatch.setattr("semsearch.indexing.writer._load", lambda *a: FakeEmbedder())
    code, _, err = _run(["repair", "--index", str(idx)], capsys)
    assert code == 0, err
    assert content_answer(idx) == content_answer(base)
    assert _run(["verify", "--index", str(idx)], capsys)[0] == 0


def test_repair_of_a_one_segment_index_rereads_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only segment's chunk database damaged: repair publishes the empty remainder and
    reads every file again; verify --json says what it found, before and after."""
    import json

    from .fault_battery import corpus

    docs, idx = corpus(tmp_path / "docs", 8, "one"), tmp_path / "idx"
    index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    want = content_answer(idx)
    path = IndexDir(idx).current() / "chunks.sqlite"
    path.write_bytes(path.read_bytes()[:-4096])
    code, out, _ = _run(["verify", "--index", str(idx), "--json"], capsys)
    found = json.loads(out)
    assert code == 1 and not found["ok"]
    assert [d["file"] for d in found["damage"]] == ["chunks.sqlite"]
    with pytest.raises(SemsearchError, match="semsearch repair"):
        index_paths([docs], idx, embedder=FakeEmbedder(), chunk_tokens=20)
    monkeypatch.setattr("semsearch.indexing.writer._load", lambda *a: FakeEmbedder())
    code, _, err = _run(["repair", "--index", str(idx)], capsys)
    assert code == 0 and "left out damaged 1 segment" in err and "read 8 documents again" in err
    assert content_answer(idx) == want
    code, out, _ = _run(["verify", "--index", str(idx), "--json"], capsys)
    assert code == 0 and json.loads(out)["ok"]
