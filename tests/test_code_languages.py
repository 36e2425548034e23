"""Definitions and chunks of code in each language the splitter knows (tests/fixtures/code)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.ingest.code import definition_sections, language_of, language_of_content
from semsearch.ingest.readers.select import choose
from semsearch.ingest.readers.text import CodeReader, TextReader
from semsearch.search.group import defines, path_factor, query_names

from .conftest import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures" / "code"

HEADS = {
    "server.go": ["Handler", "Mux", "Mux.Handle", "Mux.Name", "NewMux"],
    "version.rb": [
        "Gem", "Gem.Version", "Gem.Version.create", "Gem.Version.bump",
        "Gem.Version.prerelease?", "Gem.Version.<=>",
    ],
    "Table.php": ["Table", "Table.addRow", "Table.widths", "Align"],
    # Extensionless shell: by the #! line, and by the Emacs mode line.
    "retry_tool": ["_backoff_delay", "retry"],
    "killall": ["_killall"],
    # Clauses of one function are one section; the example in @moduledoc is no definition.
    "capture.ex": [
        "Test.Capture", "Test.Capture.capture_io", "Test.Capture.do_capture",
        "Test.Capture.assert_captured",
    ],
    # `$` in names, type aliases, exported constants, overloads as one section, generics.
    "errors.ts": ["ErrorTree", "$ZodError", "treeifyError", "Formatter", "Formatter.format"],
    "Axios.js": ["Axios", "request", "isCancel", "getUri"],
}  # fmt: skip


def _sections(name: str) -> tuple[str, list[tuple[str, str]]]:
    text = (FIXTURES / name).read_text()
    outline = definition_sections(text, name)
    return text, [(s.heading, text[s.start : s.end]) for s in outline.sections]


@pytest.mark.parametrize("name", sorted(HEADS))
def test_definition_heads_of_each_language(name: str) -> None:
    text, sections = _sections(name)
    assert [h for h, _ in sections] == HEADS[name]
    # Sections follow each other without overlap, in order.
    outline = definition_sections(text, name).sections
    for a, b in itertools.pairwise(outline):
        assert a.end == b.start


@pytest.mark.parametrize(
    ("name", "heading", "starts"),
    [
        ("server.go", "Mux.Handle", "// Handle registers h"),
        ("Table.php", "Table.addRow", "    /**\n     * Adds a row."),
        ("version.rb", "Gem.Version.bump", "    # The next release for ~>."),
        ("capture.ex", "Test.Capture.capture_io", '  @doc """\n  Captures what `fun`'),
        ("errors.ts", "treeifyError", "export function treeifyError<T>(error"),
    ],
)  # fmt: skip
def test_comments_and_docs_above_a_definition_belong_to_it(
    name: str, heading: str, starts: str
) -> None:
    _, sections = _sections(name)
    assert dict(sections)[heading].startswith(starts)


def test_nested_function_and_second_clause_stay_in_their_section() -> None:
    _, sections = _sections("server.go")
    assert "helper := func()" in dict(sections)["NewMux"]
    _, sections = _sections("capture.ex")
    body = dict(sections)["Test.Capture.capture_io"]
    assert body.count("def capture_io(") == 2 and "do_capture(device, fun)" in body


@pytest.mark.parametrize(
    ("head", "language"),
    [
        (b"#!/usr/bin/env bash\necho", "shell"),
        (b"#!/bin/sh -e\n", "shell"),
        (b"#!/usr/bin/python3.11\n", "python"),
        (b"#!/usr/bin/env -S node --flag\n", "js"),
        (b"# foo(1) completion     -*- shell-script -*-\n", "shell"),
        (b"first\nsecond\n# vim: set ft=sh:\n", "shell"),
        (b"#!/usr/bin/perl\n", None),
        (b"# just a comment\n", None),
        (b"a\nb\nc\n# vim: ft=sh\n", None),  # mode lines count in the first three lines only
    ],
)  # fmt: skip
def test_language_of_content(head: bytes, language: str | None) -> None:
    assert language_of_content(head) == language


def test_suffix_decides_before_content() -> None:
    assert language_of("a/b.go", b"#!/bin/sh\n") == "go"
    assert language_of("notes.txt") is None and language_of(".bashrc") is None
    assert language_of("bin/tool", b"#!/bin/bash\n") == "shell"


def test_extensionless_scripts_are_read_as_code() -> None:
    data = (FIXTURES / "killall").read_bytes()
    reader = choose(Path("completions/killall"), data[:4096])
    assert isinstance(reader, CodeReader)
    extracted = reader.read(data, "completions/killall")
    assert [s.heading for s in extracted.sections] == ["_killall"]
    assert isinstance(choose(Path("README"), b"Just words.\n"), TextReader)


@pytest.mark.parametrize(
    ("path", "down"),
    [
        ("net/http/server_test.go", True), ("lib/a_spec.rb", True), ("spec/a.rb", True),
        ("src/a.test.ts", True), ("test/ex_unit/case_test.exs", True),
        ("Tests/Helper/TableTest.php", True), ("encoding/json/testdata/x.json", True),
        ("src/__tests__/a.js", True), ("vendor/x/y.go", True), ("dist/a.min.js", True),
        ("lib/ex_unit/case.ex", False), ("Helper/Table.php", False), ("src/latest.php", False),
        ("lib/contest.py", False), ("net/http/server.go", False),
    ],
)  # fmt: skip
def test_tests_vendored_generated_across_languages(path: str, down: bool) -> None:
    assert (path_factor(path) < 1.0) == down


def test_dollar_names_are_query_names_and_definitions() -> None:
    assert query_names("$ZodDiscriminatedUnion") == ["$ZodDiscriminatedUnion"]
    text = "export interface $ZodError<T> {\n}\n"
    assert defines(text, ["$ZodError"])
    assert defines("  private static function &widths(array $r)\n", ["widths"])
    assert not defines("return new $ZodError(issues);\n", ["$ZodError"])


def test_each_chunk_lies_in_one_definition_and_carries_its_name(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES, root)
    index = SemanticIndex.from_paths(
        [root], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )
    for name, heads in HEADS.items():
        text = (root / name).read_text()
        spans = {s.heading: (s.start, s.end) for s in definition_sections(text, name).sections}
        hits = [h for h in index.search(" ".join(heads), k=200, mode="keyword")
                if Path(h.source).name == name]  # fmt: skip
        assert hits, name
        for h in hits:
            if h.section:
                assert h.section in heads
                lo, hi = spans[h.section]
                assert h.text.strip() in text[lo:hi]
    hits = index.search("_killall", k=3, mode="keyword", group="file")
    assert Path(hits[0].source).name == "killall" and hits[0].section == "_killall"


def test_definition_tiers_tell_the_definition_from_a_same_named_one() -> None:
    import numpy as np

    from semsearch.search.group import definition_tiers
    from semsearch.store.records import ChunkMention as M

    rows = np.array([5, 6, 7, 8, 9])
    source_of = {5: "/x/resource_tracker.py", 6: "/x/forkserver.py", 7: "/x/a.py",
                 8: "/go/src/net/http/server.go", 9: "/b/bash_completion"}  # fmt: skip
    mentions = [
        M(5, "ResourceTracker.ensure_running", ""),
        M(6, "ForkServer.ensure_running", ""),  # same name, another qualifier: tier 1
        M(7, "", "x = ensure_running()\n"),  # a call: no definition
    ]
    tiers = definition_tiers(rows, mentions, "resource_tracker.ensure_running", source_of)
    assert tiers.tolist() == [2, 1, 0, 0, 0]
    # The qualifier may be a folder of the file (Go's package) or the section's container.
    got = definition_tiers(rows, [M(8, "Server.Shutdown", "")], "http.Shutdown", source_of)
    assert got.tolist() == [0, 0, 0, 2, 0]
    got = definition_tiers(rows, [M(9, "_known_hosts_real", "")], "_known_hosts_real", source_of)
    assert got.tolist() == [0, 0, 0, 0, 2]
    # Only a one-word query names one definition; Ruby's `?` and `::` are spellings.
    words = "where is _known_hosts_real defined"
    assert definition_tiers(rows, [M(9, "_known_hosts_real", "")], words, source_of)[4] == 1
    ruby = [M(7, "Gem::Requirement.satisfied_by?", "")]
    assert definition_tiers(rows, ruby, "Requirement.satisfied_by?", source_of)[2] == 2
    assert definition_tiers(rows, mentions, "the lock", source_of).tolist() == [0] * 5
