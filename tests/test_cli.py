"""The command line as users run it, with the real bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch.cli import main

from .conftest import SEEDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "index"
    assert main(["index", str(SEEDS), "--index", str(path)]) == 0
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_trade_decline_finds_the_mutual_trade_chunk(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "query", "trade decline", "--index", str(seeds_index), "--json")
    assert code == 0
    hits = json.loads(out)
    top = hits[0]
    assert Path(top["source"]).name == "000_70defebb133c6857.txt"
    assert "about 20%" in top["text"] and "fuel and energy products" in top["text"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    source_text = Path(top["source"]).read_text(encoding="utf-8")
    assert source_text[top["start"] : top["end"]] == top["text"]


def test_human_output_shows_location_score_and_best_sentence(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "query", "trade decline", "-k", "2", "--index", str(seeds_index))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4  # two hits, two lines each
    assert "000_70defebb133c6857.txt:" in lines[0] and " 0." in lines[0]
    text = " ".join((SEEDS / "000_70defebb133c6857.txt").read_text().split())
    assert lines[1].startswith("  ") and lines[1].strip() in text  # the file's own words


def test_info_describes_the_index(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "info", "--index", str(seeds_index), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["documents"] == 5 and info["chunks"] >= 5
    assert info["model"] == "all-MiniLM-L6-v2" and info["dim"] == 384
    assert info["backend"] in ("faiss", "numpy") and info["size_bytes"] > 0


def test_default_index_is_built_from_seeds_on_first_query(capsys, tmp_path: Path) -> None:
    os.environ["SEMSEARCH_INDEX"] = str(tmp_path / "default")
    code, out, err = run(capsys, "query", "trade decline", "-k", "1", "--json")
    assert code == 0
    assert "bundled sample articles" in err and "Indexing samples" in err
    assert Path(json.loads(out)[0]["source"]).name == "000_70defebb133c6857.txt"
    # The samples live in their own index: the user's default index is not created by them.
    assert not (tmp_path / "default").exists()
    code, _, err = run(capsys, "query", "trade decline", "-k", "1")
    assert code == 0 and "Indexing samples" not in err  # built once
    # Once the user indexes their own files, the samples leave their results.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "budget.txt").write_text("The household budget for groceries rose this spring.")
    assert run(capsys, "index", str(mine))[0] == 0
    code, out, err = run(capsys, "query", "trade decline", "-k", "5", "--json")
    assert code == 0 and "sample" not in err
    assert {Path(h["source"]).name for h in json.loads(out)} == {"budget.txt"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", ""], 2, "query is empty"),
        (["query", "   "], 2, "query is empty"),
        (["query", "x", "-k", "0"], 2, "between 1 and 10000"),
        (["query", "x", "-k", "-3"], 2, "between 1 and 10000"),
        (["query", "x", "-k", "99999999999999999999"], 2, "between 1 and 10000"),
        (["query", "x", "-k", "many"], 2, "Invalid value"),
        (["index", "/no/such/path"], 2, "no such file or directory"),
        (["query", "x", "--index", "/no/such/index"], 1, "no index at"),
        (["info", "--index", "/no/such/index"], 1, "no index at"),
        (["index", str(SEEDS), "--model", "/no/such/model"], 1, "model"),
        (["index", str(SEEDS), "--model", "no-such-org/no-such-model-xyz"], 1, "cannot load model"),
        (["index", str(SEEDS), "--chunk-tokens", "2"], 2, "chunk-tokens"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(capsys, args, code, message) -> None:
    got, _out, err = run(capsys, *args)
    assert got == code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0] and lines[0].startswith("semsearch: error:")
    assert "Traceback" not in err


def test_folder_without_text_files(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "index", str(empty), "--index", str(tmp_path / "i"))
    assert code == 2 and "no files to index" in err and err.count("\n") == 1


def test_binary_skipped_and_latin1_decoded(capsys, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "image.bin").write_bytes(b"\x89PNG\x00\x00\x01binary")
    (docs / "latin1.txt").write_bytes(
        "Caf\xe9 menus list espresso and croissants.".encode("latin-1")
    )
    (docs / "good.txt").write_text("Mutual trade between the two countries fell by a fifth.")
    idx = str(tmp_path / "idx")
    code, _, err = run(capsys, "index", str(docs), "--index", idx)
    assert code == 0
    assert "image.bin" in err and "binary" in err
    assert "2 documents" in err and "1 skipped" in err
    code, out, _ = run(capsys, "query", "coffee shop", "--index", idx, "--json", "-k", "1")
    text = json.loads(out)[0]["text"]
    assert code == 0 and "Café menus" in text and "\ufffd" not in text  # Latin-1 detected


def test_corrupt_index_is_reported_not_crashed(capsys, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert run(capsys, "index", str(SEEDS), "--index", str(idx))[0] == 0
    gen = next(p for p in idx.iterdir() if p.name.startswith("gen-"))
    (gen / "vectors.npy").write_bytes(b"garbage")
    code, _, err = run(capsys, "query", "trade", "--index", str(idx))
    assert code == 1 and "damaged" in err and "vectors.npy" in err


def test_console_script_runs_without_traceback(seeds_index: Path) -> None:
    exe = Path(sys.executable).with_name("semsearch")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "semsearch"]
    ok = subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("semsearch ")
    bad = subprocess.run(
        [*cmd, "query", "x", "--index", str(seeds_index), "-k", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_reindex_remove_filter_and_verify(capsys, tmp_path: Path) -> None:
    docs, idx = tmp_path / "docs", str(tmp_path / "idx")
    docs.mkdir()
    (docs / "trade.txt").write_text("Mutual trade between the countries fell by twenty percent.")
    (docs / "sport.txt").write_text("The football team won the national championship.")
    (docs / "notes.md").write_text("Meeting notes: exports and imports declined this quarter.")
    assert run(capsys, "index", str(docs), "--index", idx)[0] == 0
    code, _, err = run(capsys, "index", str(docs), "--index", idx)
    assert code == 0 and "3 documents" in err
    assert "(0 added, 0 updated, 3 unchanged, 0 removed)" in err

    code, out, _ = run(
        capsys, "query", "trade decline", "--index", idx, "--source", "*.md", "--json"
    )
    assert code == 0 and [Path(h["source"]).name for h in json.loads(out)] == ["notes.md"]

    code, _, err = run(capsys, "remove", str(docs / "sport.txt"), "--index", idx)
    assert code == 0 and "Removed 1 document" in err
    code, _, err = run(capsys, "remove", "nothing-like-this", "--index", idx)
    assert code == 2 and "no document" in err

    code, _, err = run(capsys, "query", "zzz", "--index", idx, "--source", "*.pdf")
    assert code == 1 and "no results" in err

    code, _, err = run(capsys, "info", "--verify", "--index", idx)
    assert code == 0 and "all files match" in err
    gen = next(
        p
        for p in Path(idx).iterdir()
        if p.name.startswith("gen-")
        and (p / "vectors.npy").exists()
        and p.name in (Path(idx) / "CURRENT").read_text()
    )
    data = bytearray((gen / "chunks.sqlite").read_bytes())
    data[-100] ^= 0xFF
    (gen / "chunks.sqlite").write_bytes(bytes(data))
    code, _, err = run(capsys, "info", "--verify", "--index", idx)
    assert code == 1 and "damaged: chunks.sqlite" in err
