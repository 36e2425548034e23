"""Everyday output: first-run notice, paths people can use, a useful repr, honest benchmarks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from semsearch import SemanticIndex
from semsearch.api.hits import location
from semsearch.cli.output import display_path, safe
from semsearch.embed import load as load_mod

from .conftest import FakeEmbedder


def test_first_run_announces_the_one_time_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[Path] = []

    class Recorder:
        def __init__(self, model: object, *, precision: str, model_cache: Path) -> None:
            made.append(model_cache)

    monkeypatch.setattr("semsearch.embed.onnx_runtime.OnnxEmbedder", Recorder)
    load_mod._load.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="semsearch"):
            load_mod._load(None, "int8", "auto", tmp_path / "fresh")
        assert "preparing the model for fast inference (once" in caplog.text
        # Once exported, nothing is said.
        from semsearch.embed.onnx_export import MODEL_FILE, onnx_model_dir

        exported = onnx_model_dir("all-MiniLM-L6-v2", "int8", tmp_path / "fresh")
        exported.mkdir(parents=True)
        (exported / MODEL_FILE).write_bytes(b"x")
        caplog.clear()
        load_mod._load.cache_clear()
        with caplog.at_level(logging.INFO, logger="semsearch"):
            load_mod._load(None, "int8", "auto", tmp_path / "fresh")
        assert "preparing" not in caplog.text
        assert made == [tmp_path / "fresh"] * 2
    finally:
        load_mod._load.cache_clear()


def test_paths_relative_under_cwd_else_absolute_with_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    work = home / "work"
    (work / "notes").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert display_path(str(work / "notes" / "a.md")) == "notes/a.md"
    assert display_path(str(home / "other" / "b.md")) == "~/other/b.md"
    assert display_path("/etc/hosts") == "/etc/hosts"
    assert display_path("text-3") == "text-3"  # an API id, not a path
    seeds = tmp_path / "site-packages" / "semsearch" / "_seeds"
    assert display_path(str(seeds / "000_x.txt"), samples=seeds) == "samples/000_x.txt"


def test_locations_jump_to_line_page_or_section() -> None:
    hit = SimpleNamespace(
        source="/x/a.py", page=None, line_start=3, line_end=3, section="", kind="code", doc_id=""
    )
    assert location(hit) == "/x/a.py:3"
    hit.line_end = 9
    assert location(hit) == "/x/a.py:3-9"
    hit.section, hit.kind = "Install", "markdown"  # Markdown lines are the file's own
    assert location(hit) == "/x/a.py:3-9 › Install"
    hit.kind = "html"  # extracted lines are not the file's: the section locates it
    assert location(hit) == "/x/a.py › Install"
    hit.page, hit.section, hit.kind = 12, "Guide › Install", "pdf"
    assert location(hit) == "/x/a.py p. 12 › Guide › Install"
    row = SimpleNamespace(
        source="/x/d.jsonl", page=None, line_start=1, line_end=1, section="line 7",
        kind="record", doc_id="/x/d.jsonl#7",
    )  # fmt: skip
    assert location(row) == "/x/d.jsonl:7"


def test_control_characters_are_escaped_for_people() -> None:
    assert safe("evil\x1b]0;title\x07name\nx") == "evil\\x1b]0;title\\x07name\\nx"
    assert safe("tab\tkept") == "tab\tkept"


def test_repr_says_what_the_index_is(tmp_path: Path) -> None:
    index = SemanticIndex.from_texts(
        ["one text", "two texts"], embedder=FakeEmbedder(), path=tmp_path / "idx"
    )
    text = repr(index)
    assert str(tmp_path / "idx") in text
    assert "2 documents" in text and "2 chunks" in text and "fake-bow" in text
    assert "object at 0x" not in text
    assert "(temporary)" in repr(SemanticIndex(embedder=FakeEmbedder()))


def test_info_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    SemanticIndex.from_texts(["a text"], embedder=FakeEmbedder(), path="rel-idx")
    info = SemanticIndex.load("rel-idx", embedder=FakeEmbedder()).info()
    assert info.path == str(tmp_path / "rel-idx")


def test_benchmarks_write_to_scratch_by_default() -> None:
    from benchmarks.__main__ import SCRATCH, parse_args

    args = parse_args([])
    assert Path(args.out) == SCRATCH
    assert "_work" in SCRATCH.parts  # ignored by git: the committed results stay as they are
    assert Path(parse_args(["--out", "benchmarks/results"]).out) == Path("benchmarks/results")


def test_benchmark_run_exits_nonzero_when_a_section_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.__main__ as bench

    def broken(*args: object, **kw: object) -> dict[str, object]:
        raise RuntimeError("section exploded")

    monkeypatch.setattr(bench, "run_delegated", broken)
    monkeypatch.setattr(bench, "machine_info", lambda: {})
    name = next(iter(bench.DELEGATED))
    code = bench.main(["--quick", "--sections", name, "--out", str(tmp_path)])
    assert code == 1
    results = json.loads((tmp_path / "results.json").read_text())
    assert "section exploded" in results[name]["error"]
    assert bench.main(["--quick", "--sections", "no-such-section", "--out", str(tmp_path)]) == 1
