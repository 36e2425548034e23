"""Defects found by attack (issue 20): each test failed before its fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from semsearch import IndexFormatError, SemanticIndex, UsageError
from semsearch.embed import models

from .conftest import FakeEmbedder

IDS = ["a[1]", "a1", "report*", "report-2024"]


def _four(tmp_path: Path, fake: FakeEmbedder) -> SemanticIndex:
    return SemanticIndex.from_texts(
        ["first", "second", "third", "fourth"], ids=IDS, embedder=fake, path=tmp_path / "i"
    )


def _ids(index: SemanticIndex) -> set[str]:
    return {d for d in index.live.require().store.document_ids()}


# --- D7: ids are exact strings --------------------------------------------------------------


def test_delete_matches_ids_exactly(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    assert index.delete(["a[1]"]) == 1
    assert _ids(index) == {"a1", "report*", "report-2024"}
    assert index.delete(["report*"]) == 1
    assert _ids(index) == {"a1", "report-2024"}
    with pytest.raises(UsageError, match="no document"):
        index.delete(["*"])
    assert _ids(index) == {"a1", "report-2024"}


def test_delete_globs_only_when_asked(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    assert index.delete(["report*"], glob=True) == 2
    assert _ids(index) == {"a[1]", "a1"}


def test_http_delete_of_a_star_removes_nothing(tmp_path: Path, fake: FakeEmbedder) -> None:
    pytest.importorskip("starlette")
    from semsearch.serve.service import SearchService

    _four(tmp_path, fake)
    service = SearchService(tmp_path / "i", workers=1, allow_writes=True, embedder=fake)
    with pytest.raises(UsageError):
        service.delete(["*"])
    assert _ids(SemanticIndex.load(tmp_path / "i", embedder=fake)) == set(IDS)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, fake: FakeEmbedder) -> Any:
    """The CLI in-process, with indexes made by the fake embedder loading it back."""
    from semsearch.cli import main

    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: fake)
    known = frozenset({*models.KNOWN_MODELS, fake.name})
    monkeypatch.setattr("semsearch.embed.models.KNOWN_MODELS", known)
    return main


def test_cli_remove_is_exact_unless_glob(tmp_path: Path, fake: FakeEmbedder, cli: Any) -> None:
    _four(tmp_path, fake)
    idx = str(tmp_path / "i")
    assert cli(["remove", "report*", "-i", idx]) == 0
    assert _ids(SemanticIndex.load(idx, embedder=fake)) == {"a[1]", "a1", "report-2024"}
    assert cli(["remove", "--glob", "a*", "-i", idx]) == 0
    assert _ids(SemanticIndex.load(idx, embedder=fake)) == {"report-2024"}


# --- D5: NaN / Infinity in metadata ---------------------------------------------------------


def test_api_refuses_non_finite_metadata(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    for bad in (float("nan"), float("inf"), [1, float("-inf")]):
        with pytest.raises(UsageError, match="NaN and Infinity"):
            index.upsert(["x"], ids=["x"], metadata=[{"v": bad}])
    with pytest.raises(UsageError, match="JSON values"):
        index.upsert(["x"], ids=["x"], metadata=[{"v": {1, 2}}])
    assert "x" not in _ids(index)


def test_jsonl_nan_is_stored_as_null_and_output_stays_json(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    data = tmp_path / "rows.jsonl"
    data.write_text(
        '{"text": "alpha beta", "score": NaN, "lang": "en"}\n'
        '{"text": "alpha gamma", "score": Infinity, "lang": "de"}\n'
    )
    idx = tmp_path / "j"
    SemanticIndex(embedder=fake, path=idx).add_paths([data])  # the reader nulls them
    capsys.readouterr()
    assert cli(["query", "alpha", "-i", str(idx), "--json", "--where", "lang=en"]) == 0
    out = capsys.readouterr()
    hits = json.loads(out.out, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert [h["metadata"] for h in hits] == [{"score": None, "lang": "en"}]


def test_an_old_index_holding_nan_still_filters() -> None:
    """Indexes written before the fix hold ``NaN`` in metadata: filters skip it, no error."""
    from semsearch.store.chunkstore import ChunkStore
    from semsearch.store.records import StoredDocument

    store = ChunkStore.create(":memory:")
    for n, meta in enumerate(['{"v": NaN}', '{"v": 2}']):
        doc = StoredDocument(f"d{n}", f"d{n}", "0", 1, "", "text", None, None, None)
        store.add_document(doc, [], None)
        store.conn.execute("UPDATE documents SET meta = ? WHERE doc_id = ?", (meta, f"d{n}"))
        store.conn.execute(
            "INSERT INTO chunks VALUES (?, ?, ?, 0, 0, 1, 1, 1, NULL, '', 'x')", (n, n, f"d{n}")
        )
    assert store.rows_where({"v": {"$gte": 0}}).tolist() == [1]
    assert store.rows_where({"v": {"$ne": 2}}).tolist() == [0]
    assert store.fetch([0])[0].metadata == {"v": None}


# --- D20 / D21: bad filter and query text are usage errors -----------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "*" * 60_000], "too long"),
        (["--source", "caf\udce9*"], "not valid UTF-8"),
        (["--where", "lang=caf\udce9"], "not valid UTF-8"),
        (["--where", "caf\udce9=1"], "not valid UTF-8"),
        (["--where", "year>=true"], "compares order"),
        (["--where", '{"y": {"$near": 1}}'], "unknown where operator"),
    ],
)
def test_bad_filters_exit_2_with_one_line(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:  # fmt: skip
    _four(tmp_path, fake)
    capsys.readouterr()
    assert cli(["query", "first", "-i", str(tmp_path / "i"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "damaged" not in err and "Traceback" not in err


def test_query_and_remove_with_invalid_utf8_exit_2(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _four(tmp_path, fake)
    idx = str(tmp_path / "i")
    capsys.readouterr()
    assert cli(["query", "caf\udce9", "-i", idx]) == 2
    assert cli(["remove", "caf\udce9", "-i", idx]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not valid UTF-8" in line for line in err)
    assert _ids(SemanticIndex.load(idx, embedder=fake)) == set(IDS)


# --- D22: info and verify never load the model ------------------------------------------------


def _no_model(*_: Any, **__: Any) -> Any:
    raise AssertionError("the model was loaded")


def test_info_and_verify_do_not_load_the_model(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _four(tmp_path, fake)
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    cache.chmod(0o555)
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(cache))
    monkeypatch.setenv("SEMSEARCH_CACHE", str(cache))
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", _no_model)
    capsys.readouterr()
    assert cli(["info", "--verify", "-i", str(tmp_path / "i")]) == 0
    out = capsys.readouterr()
    assert "all files match" in out.err and "documents: 4" in out.out
    assert cli(["info", "--json", "-i", str(tmp_path / "i")]) == 0
    assert '"model": "fake-bow"' in capsys.readouterr().out
    assert list(cache.iterdir()) == []


# --- D25: a manifest's model is not loaded on its word -----------------------------------------


def test_a_manifest_naming_an_unknown_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil-model"
    evil.mkdir()
    planted = FakeEmbedder()
    planted.name = str(evil)
    SemanticIndex.from_texts(["some text"], embedder=planted, path=tmp_path / "i")
    loaded: list[Any] = []
    monkeypatch.setattr(
        "semsearch.indexing.writer.load_embedder", lambda *a, **k: loaded.append(a) or planted
    )
    with pytest.raises(IndexFormatError, match=r"evil-model.*pass that model explicitly"):
        SemanticIndex.load(tmp_path / "i")
    assert loaded == []
    # Named by the user, the same model is loaded.
    index = SemanticIndex.load(tmp_path / "i", model=str(evil))
    assert loaded and loaded[0][0] == str(evil)
    assert [h.text for h in index.search("some text", k=1)] == ["some text"]


def test_cli_query_refuses_then_takes_model(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    planted = FakeEmbedder()
    planted.name = "someone/hub-model"
    SemanticIndex.from_texts(["some text"], embedder=planted, path=tmp_path / "i")
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", lambda *a, **k: planted)
    capsys.readouterr()
    assert cli(["query", "some", "-i", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert "someone/hub-model" in err and len(err.strip().splitlines()) == 1
    assert cli(["query", "some", "-i", str(tmp_path / "i"), "--model", planted.name]) == 0


# --- D1: damaged chunk rows are not carried forward --------------------------------------------


def test_same_size_damage_to_a_large_chunk_db_is_not_carried(
    tmp_path: Path, fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.store.layout import IndexDir

    # Stand-in for "over 32 MiB": files above 1 KiB are no longer checksummed on load.
    monkeypatch.setattr("semsearch.store.manifest.VERIFY_ON_LOAD_BYTES", 1024)
    monkeypatch.setattr("semsearch.indexing.previous.VERIFY_ON_LOAD_BYTES", 1024)
    path = tmp_path / "i"
    SemanticIndex.from_texts(
        [f"passage {n} about zebrafish" for n in range(40)], embedder=fake, path=path
    )
    gen = IndexDir(path).current()
    db = gen / "chunks.sqlite"
    data = db.read_bytes()
    assert len(data) > 1024 and data.count(b"zebrafish") >= 1
    db.write_bytes(data.replace(b"zebrafish", b"zebrafisH"))  # same size
    pointer = IndexDir(path).pointer()
    with pytest.raises(IndexFormatError, match=r"chunks\.sqlite does not match its checksum"):
        SemanticIndex.load(path, embedder=fake).add_texts(["a new text"])
    assert IndexDir(path).pointer() == pointer  # nothing published


# --- D27: a file deleted before --rebuild is listed as missing ---------------------------------


def test_rebuild_keeps_a_deleted_files_stat(tmp_path: Path, fake: FakeEmbedder) -> None:
    from semsearch.api import list_sources

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("kept file about rivers")
    (docs / "gone.txt").write_text("file that will be deleted about lakes")
    index = SemanticIndex(embedder=fake, path=tmp_path / "i")
    index.add_paths([docs])
    (docs / "gone.txt").unlink()
    index.rebuild()
    status = {Path(s.source).name: s.status for s in list_sources(tmp_path / "i")}
    assert status == {"keep.txt": "ok", "gone.txt": "missing"}


# --- D26: bidi and format characters in file names are escaped --------------------------------


def test_bidi_and_format_characters_in_names_are_escaped(
    tmp_path: Path, fake: FakeEmbedder, cli: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rtl\u202egnp.txt").write_text("a text about owls")
    (docs / "zero\u200bwidth.txt").write_text("a text about owls too")
    SemanticIndex(embedder=fake, path=tmp_path / "i").add_paths([docs])
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli(["ls", "-i", str(tmp_path / "i")]) == 0
    assert cli(["query", "owls", "-i", str(tmp_path / "i"), "--mode", "keyword"]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\u200b" not in out
    assert out.count("rtl\\u202egnp.txt") == 2 and out.count("zero\\u200bwidth.txt") == 2


# --- item 8: a touched or copied file with the same content is not "changed" -------------------


@pytest.mark.parametrize("name", ["note.txt", "page.html", "notes.md"])
def test_staleness_judges_content_when_the_stat_moved(
    tmp_path: Path, fake: FakeEmbedder, name: str
) -> None:
    from semsearch import api

    docs = tmp_path / "docs"
    docs.mkdir()
    f = docs / name
    f.write_text("<p>penguins live in the south</p>" if name.endswith("html") else "penguins here")
    index = SemanticIndex(embedder=fake, path=tmp_path / "i")
    index.add_paths([docs])
    assert index.search("penguins", k=1)[0].stale is None
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))  # touched: same bytes, another time
    assert index.search("penguins", k=1)[0].stale is None
    shutil.copy(f, tmp_path / "x")  # replaced by a copy: another inode
    f.unlink()
    shutil.copy(tmp_path / "x", f)
    assert index.search("penguins", k=1)[0].stale is None
    assert [s.status for s in api.list_sources(tmp_path / "i")] == ["ok"]
    data = f.read_bytes()
    f.write_bytes(data.replace(b"penguins", b"Penguins"))  # same size, new content
    assert index.search("penguins", k=1)[0].stale == "changed"
    assert [s.status for s in api.list_sources(tmp_path / "i")] == ["changed"]


def test_sample_index_follows_the_seeds_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch import api

    monkeypatch.setattr("semsearch.config.bundled_seeds", lambda: tmp_path / "seeds")
    first = api.sample_index_dir()
    monkeypatch.setattr("semsearch.config.bundled_seeds", lambda: tmp_path / "pkg" / "_seeds")
    assert api.sample_index_dir() != first


def test_a_huge_delete_glob_is_a_usage_error(tmp_path: Path, fake: FakeEmbedder) -> None:
    index = _four(tmp_path, fake)
    with pytest.raises(UsageError, match="glob is too long"):
        index.delete(["a" + "*" * 60_000], glob=True)
    assert _ids(index) == set(IDS)


def test_index_paths_does_not_load_a_recorded_unknown_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.api import index_paths

    planted = FakeEmbedder()
    planted.name = str(tmp_path)
    SemanticIndex.from_texts(["some text"], embedder=planted, path=tmp_path / "i")
    (tmp_path / "new.txt").write_text("another text")
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", _no_model)
    with pytest.raises(IndexFormatError, match="pass that model explicitly"):
        index_paths([tmp_path / "new.txt"], tmp_path / "i")


def test_refresh_does_not_load_a_recorded_unknown_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.api import index_paths, refresh_index

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("some text")
    planted = FakeEmbedder()
    planted.name = str(tmp_path / "planted-model")
    index_paths([folder], tmp_path / "i", embedder=planted)
    (folder / "b.txt").write_text("another text")  # a change: the refresh needs the model
    monkeypatch.setattr("semsearch.indexing.writer.load_embedder", _no_model)
    with pytest.raises(IndexFormatError, match="pass that model explicitly"):
        refresh_index(tmp_path / "i")
