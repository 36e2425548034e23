"""Hits people can scan: one line of location and score, the best sentence, ``--full``,
``-l``, ``-C/-A/-B`` from the file, colour only on a terminal, and ``show LOCATION``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from semsearch.api.hits import Hit, location, parse_location
from semsearch.cli import output
from semsearch.cli.hitprint import SENTENCE_CHARS, Style, print_files, print_hits


def _hit(text: str, source: str, **kw: Any) -> Hit:
    fields: dict[str, Any] = {
        "score": 0.5, "doc_id": source, "chunk_id": 0, "start": 0, "end": len(text),
        "line_start": 1, "line_end": 1 + text.count("\n"),
    }  # fmt: skip
    return Hit(text=text, source=source, **{**fields, **kw})


def _printed(capsys: pytest.CaptureFixture[str], hits: list[Hit], style: Style, best: Any) -> str:
    print_hits(hits, best, None, style)
    return capsys.readouterr().out


def test_one_hit_is_location_score_and_best_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    text = "First sentence here. The best one is this. " + "x " * 300
    h = _hit(text, "/abs/notes.txt", score=0.8125, line_start=3, line_end=9)
    a = text.index("The best")
    out = _printed(capsys, [h], Style(), [(a, a + len("The best one is this."))])
    assert out.splitlines() == ["/abs/notes.txt:3-9  0.812", "  The best one is this."]
    long = _printed(capsys, [h], Style(), [(0, len(text))]).splitlines()[1]
    assert len(long) <= 2 + SENTENCE_CHARS and long.endswith("x…")


def test_full_keeps_code_lines_and_reflows_prose(capsys: pytest.CaptureFixture[str]) -> None:
    code = "def f(x):\n    if x:\n        return 1\n    return 2\n"
    out = _printed(capsys, [_hit(code, "/a/m.py", kind="code")], Style(full=True), [])
    assert "\n      if x:\n          return 1\n" in out  # indented by two, breaks kept
    prose = "A line\nbroken by\nthe reader.\n\n    indented block\n    stays"
    out = _printed(capsys, [_hit(prose, "/a/n.md", kind="markdown")], Style(full=True), [])
    assert "  A line broken by the reader." in out
    assert "      indented block\n      stays" in out


def test_context_lines_come_from_the_file_grep_style(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "log.txt"
    lines = [f"line {n}" for n in range(1, 11)]
    f.write_text("\n".join(lines) + "\n")
    text = "\n".join(lines[2:7])  # the chunk is lines 3-7; its best sentence is line 5
    h = _hit(text, str(f), line_start=3, line_end=7)
    a = text.index("line 5")
    out = _printed(capsys, [h], Style(before=1, after=2), [(a, a + 6)])
    assert out.splitlines()[1:] == ["4-line 4", "5:line 5", "6-line 6", "7-line 7", "--"]
    # HTML's extracted lines are not the file's: no file lines, the sentence instead.
    page = _hit(text, str(f), kind="html", section="Logs")
    out = _printed(capsys, [page], Style(before=1, after=1), [(a, a + 6)])
    assert out.splitlines()[1:] == ["line 5", "--"]
    # A file changed since it was indexed: its lines would not be the hit's.
    stale = _hit(text, str(f), line_start=3, line_end=7, stale="changed")
    out = _printed(capsys, [stale], Style(after=1), [(a, a + 6)])
    assert "5:" not in out and "line 5" in out


def test_colour_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert output.color_enabled()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not output.color_enabled()
    h = _hit("Some text.", "/a/t.txt")
    assert "\x1b[" in _printed(capsys, [h], Style(color=True), [(0, 10)])
    assert "\x1b[" not in _printed(capsys, [h], Style(), [(0, 10)])


def test_files_with_matches_prints_each_file_once(capsys: pytest.CaptureFixture[str]) -> None:
    hits = [_hit("a", "/x/one.txt"), _hit("b", "/x/two.txt"), _hit("c", "/x/one.txt")]
    print_files(hits, None)
    assert capsys.readouterr().out.splitlines() == ["/x/one.txt", "/x/two.txt"]


def test_every_location_reads_back() -> None:
    cases = [
        (
            _hit("t", "/d/a.py", line_start=4, line_end=9, kind="code"),
            ("/d/a.py", (4, 9), None, ""),
        ),
        (_hit("t", "/d/a.txt", line_start=4, line_end=4), ("/d/a.txt", (4, 4), None, "")),
        (_hit("t", "/d/m.pdf", page=3, kind="pdf"), ("/d/m.pdf", None, 3, "")),
        (_hit("t", "/d/x.html", kind="html", section="A › B"), ("/d/x.html", None, None, "A › B")),
        (
            _hit("t", "/d/n.md", line_start=2, line_end=5, kind="markdown", section="Notes"),
            ("/d/n.md", (2, 5), None, "Notes"),
        ),
    ]  # fmt: skip
    for hit, want in cases:
        assert tuple(parse_location(location(hit))) == want, location(hit)


@pytest.mark.slow
def test_show_prints_what_a_printed_location_names(tmp_path: Path) -> None:
    from semsearch.cli import main

    from .conftest import REPO
    from .test_front_door import _mixed

    docs = _mixed(tmp_path)
    ix = tmp_path / "ix"
    assert main(["index", str(docs), "--index", str(ix)]) == 0

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "semsearch", *args, "--index", str(ix)],
            capture_output=True, text=True, cwd=docs, env={"PYTHONPATH": str(REPO), "PATH": ""},
        )  # fmt: skip

    out = run("query", "pendulum clock", "-k", "6").stdout.splitlines()
    headers = [line.rsplit("  ", 1)[0] for line in out if not line.startswith(" ")]
    assert "manual.pdf p. 2" in headers and "clocks.html › Clocks › Pendulum escapements" in headers
    assert any(h.startswith("timing.py:") for h in headers)  # relative paths for people
    shown = run("show", "manual.pdf p. 2")
    assert (
        shown.returncode == 0
        and "raise the bob" in shown.stdout
        and "Manual for" not in shown.stdout
    )
    html = run("show", "clocks.html › Clocks › Pendulum escapements").stdout
    assert "anchor escapement" in html
    code = next(h for h in headers if h.startswith("timing.py:"))
    assert "def escapement_period" in run("show", code).stdout
    assert run("show", "garden.md").stdout.startswith("# Garden notes")
    missing = run("show", "manual.pdf p. 9")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    files = run("query", "pendulum clock", "-k", "6", "-l").stdout.splitlines()
    assert sorted(files) == sorted(set(files)) and "manual.pdf" in files
