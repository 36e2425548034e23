"""Code search: identifiers in the keyword index, file-level results, code-aware signals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex, UsageError
from semsearch.ingest.code import definition_sections
from semsearch.search.group import defines, group_rows, path_factor, query_names
from semsearch.store.tokenize import terms

from .conftest import FakeEmbedder

RETRY = '''"""Retrying calls."""


def compute_backoff(attempt):
    """Seconds to wait before the next retry: doubles each time."""
    return min(60, 2 ** attempt)


def retry_call(fn, attempts=5):
    for attempt in range(attempts):
        try:
            return fn()
        except OSError:
            sleep(compute_backoff(attempt))


def retry_forever(fn):
    while True:
        try:
            return fn()
        except OSError:
            sleep(compute_backoff(0))
'''

CLIENT = '''"""An HTTP client that retries once."""


def fetch(url):
    return retry_call(lambda: get(url), attempts=2)
'''

CONFIG = '''"""Settings."""


def parse_config(path):
    """Read the settings file."""
    return dict(line.split("=", 1) for line in open(path))
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "retry.py").write_text(RETRY)
    (root / "client.py").write_text(CLIENT)
    (root / "config.py").write_text(CONFIG)
    (root / "tests" / "test_retry.py").write_text(
        "from retry import compute_backoff\n\n\ndef test_compute_backoff():\n"
        "    assert compute_backoff(1) == 2\n"
    )
    return root


@pytest.fixture
def index(repo: Path, tmp_path: Path) -> SemanticIndex:
    return SemanticIndex.from_paths(
        [repo], embedder=FakeEmbedder(), chunk_tokens=24, path=tmp_path / "index"
    )


# --- identifiers in the keyword index ---------------------------------------------------------


def test_identifier_spellings_share_terms() -> None:
    camel, snake, dotted = terms("parseConfig"), terms("parse_config"), terms("config.parse")
    assert set(camel) == set(snake) == {"pars", "config", "parseconfig"}
    assert {"pars", "config"} <= set(dotted)
    assert "httpserver" in terms("HTTPServer") and {"http", "server"} <= set(terms("HTTPServer"))
    assert "ospathjoin" in terms("os.path.join")  # a dotted path is kept whole too


def test_prose_gets_no_identifier_terms() -> None:
    assert terms("The end. Next, e.g. version 1.2.3 of naïveString") == [
        "end", "next", "version", "naivestr",
    ]  # fmt: skip


@pytest.mark.parametrize("query", ["parseConfig", "ParseConfig", "config.parse"])
def test_keyword_search_matches_other_spellings_of_an_identifier(
    index: SemanticIndex, query: str
) -> None:
    hits = index.search(query, k=3, mode="keyword")
    assert hits and Path(hits[0].source).name == "config.py"


# --- file-level results -----------------------------------------------------------------------


def test_group_file_gives_one_hit_per_file_with_its_further_chunks(index: SemanticIndex) -> None:
    chunks = index.search("compute_backoff attempt", k=10, mode="keyword")
    assert len({h.doc_id for h in chunks}) < len(chunks)  # chunk hits repeat a file
    files = index.search("compute_backoff attempt", k=10, mode="keyword", group="file")
    assert len({h.doc_id for h in files}) == len(files) >= 2
    top = files[0]
    assert Path(top.source).name == "retry.py"
    assert top.more and all(p.doc_id == top.doc_id for p in top.more)
    assert all(p.line_start >= 1 and p.line_end >= p.line_start for p in top.more)
    assert files == sorted(files, key=lambda h: -h.score)


def test_group_file_honours_k_and_min_score(index: SemanticIndex) -> None:
    assert len(index.search("retry", k=1, mode="keyword", group="file")) == 1
    hits = index.search("retry", k=10, mode="hybrid", group="file", min_score=0.0)
    assert all(h.score >= 0.0 for h in hits)


def test_unknown_grouping_is_a_usage_error(index: SemanticIndex) -> None:
    with pytest.raises(UsageError, match="group must be one of file"):
        index.search("retry", group="line")  # type: ignore[arg-type]


# --- code-aware signals -----------------------------------------------------------------------


def test_query_names_tell_symbols_from_words() -> None:
    assert query_names("Semaphore.acquire") == ["Semaphore", "acquire"]
    assert query_names("gather") == ["gather"]
    assert query_names("where is parse_config called") == ["parse_config"]
    assert query_names("how are plugins registered") == []


def test_defines_finds_definitions_not_calls() -> None:
    assert defines("def compute_backoff(attempt):", ["compute_backoff"])
    assert defines("class Semaphore(Base):", ["Semaphore"])
    assert defines(
        "PyObject *CPyDict_GetItem(PyObject *dict, PyObject *key) {", ["CPyDict_GetItem"]
    )
    assert not defines("    sleep(compute_backoff(attempt))", ["compute_backoff"])
    assert not defines(
        "PyObject *CPyDict_GetItem(PyObject *dict, PyObject *key);", ["CPyDict_GetItem"]
    )


def _grouped(query: str, chunks: list[tuple[int, str, str, float]]) -> list[tuple[str, float]]:
    """Group ``(row, file, text, score)`` chunks as search does (files as doc keys)."""
    rows, files, texts, scores = zip(*chunks, strict=True)
    names = query_names(query)
    keys = {f: i for i, f in enumerate(dict.fromkeys(files))}
    grouped = group_rows(
        np.array(rows), np.array(scores, np.float32), np.array([keys[f] for f in files]),
        np.array([defines(t, names) for t in texts]), np.array([path_factor(f) for f in files]),
    )  # fmt: skip
    file_of = dict(zip(rows, files, strict=True))
    return [(file_of[int(r)], float(s)) for r, s in zip(grouped.rows, grouped.scores, strict=True)]


def test_definition_ranks_over_reference() -> None:
    ranked = _grouped(
        "compute_backoff",
        [(1, "src/client.py", "x = compute_backoff(2)", 0.55),
         (2, "src/retry.py", "def compute_backoff(attempt):", 0.5)],
    )  # fmt: skip
    assert [f for f, _ in ranked] == ["src/retry.py", "src/client.py"]


def test_tests_and_vendored_files_are_down_weighted() -> None:
    for path in ("tests/test_retry.py", "vendor/lib/retry.py", "pkg/retry_test.go"):
        chunks = [(1, path, "retry", 0.5), (2, "pkg/core.py", "retry", 0.5)]
        ranked = _grouped("retry logic", chunks)
        assert ranked[0][0] == "pkg/core.py", path


def test_a_file_scores_its_best_chunk_and_shows_its_further_ones() -> None:
    rows = np.array([1, 2, 3, 4, 5])
    grouped = group_rows(
        rows, np.array([0.5, 0.48, 0.4, 0.3, 0.2], np.float32), np.array([7, 9, 9, 9, 9]),
        np.zeros(5, bool), np.ones(5),
    )  # fmt: skip
    assert grouped.rows.tolist() == [1, 2]
    assert grouped.scores.tolist() == pytest.approx([0.5, 0.48])
    assert grouped.further.tolist() == [(), (3, 4)]  # SHOWN_CHUNKS in all, best first


# --- code structure ---------------------------------------------------------------------------

PY_CLASS = '''import os


class Lock:
    """A lock."""

    def __init__(self):
        def helper():
            return 1

        self.n = helper()

    # Take it.
    @property
    def acquire(self):
        return True


def release(lock):
    return lock
'''


def test_definitions_are_sections_named_by_qualified_name() -> None:
    sections = definition_sections(PY_CLASS, "locks.py").sections
    assert [s.heading for s in sections] == ["Lock", "Lock.__init__", "Lock.acquire", "release"]
    by_name = {s.heading: PY_CLASS[s.start : s.end] for s in sections}
    assert by_name["Lock.acquire"].startswith("    # Take it.\n    @property\n")  # lead lines
    assert "def helper" in by_name["Lock.__init__"]  # a nested function stays in its parent
    assert sections[0].start == PY_CLASS.index("class Lock")  # imports stay outside


@pytest.mark.parametrize(
    ("name", "text", "heads"),
    [
        ("a.c", "static int\nfoo(int x) {\n  return bar(x);\n}\n\nint baz(void);\n"
         "PyObject *CPyDict_Get(PyObject *d) {\n  return d;\n}\n", ["foo", "CPyDict_Get"]),
        ("a.go", "package a\n\nfunc (s *S) Run() error {\n}\n\ntype S struct {\n}\n",
         ["S.Run", "S"]),
        ("a.ts", "export class Api {\n  async fetchUser(id: string): Promise<User> {\n"
         "    if (id) {\n    }\n  }\n}\nexport const parseConfig = (s) => s\n",
         ["Api", "Api.fetchUser", "parseConfig"]),
        ("a.rb", "module Net\n  class Http\n    def get(url)\n    end\n  end\nend\n",
         ["Net", "Net.Http", "Net.Http.get"]),
        ("a.sh", "#!/bin/sh\nretry() {\n  :\n}\nfunction backoff {\n  :\n}\n",
         ["retry", "backoff"]),
        ("a.ex", "defmodule App.Repo do\n  def get(id) do\n  end\nend\n",
         ["App.Repo", "App.Repo.get"]),
        ("notes.txt", "def not_code():\n", []),
    ],
)  # fmt: skip
def test_definition_heads_per_language(name: str, text: str, heads: list[str]) -> None:
    assert [s.heading for s in definition_sections(text, name).sections] == heads


def test_code_chunks_stay_inside_one_definition_and_carry_its_name(
    index: SemanticIndex,
) -> None:
    hits = index.search("compute_backoff", k=20, mode="keyword")
    retry = [h for h in hits if Path(h.source).name == "retry.py"]
    assert {h.section for h in retry} >= {"compute_backoff", "retry_call"}
    for h in retry:
        if h.section:
            assert h.text.lstrip().startswith(("def " + h.section, '"""', "#", "@")) or (
                "def " + h.section not in h.text and "def " not in h.text
            )


def test_c_return_type_line_belongs_to_its_function() -> None:
    text = "int x;\n\nstatic int\nfoo(int a) {\n  return a;\n}\n"
    (section,) = definition_sections(text, "a.c").sections
    assert text[section.start : section.end].startswith("static int\nfoo(")


def test_a_long_minified_line_is_bounded(tmp_path: Path) -> None:
    text = "function a(){" + "x=1;" * 200_000 + "}\n" + "var b = 1\n" * 10
    assert definition_sections(text, "m.js").sections == ()


def test_definitions_past_the_cap_are_left_unnamed_with_a_warning(tmp_path: Path) -> None:
    from semsearch.ingest import code
    from semsearch.ingest.readers.text import CodeReader

    n = code.MAX_DEFINITIONS + 5
    text = "".join(f"def f{i}():\n    pass\n" for i in range(n))
    outline = code.definition_sections(text, "many.py")
    assert outline.cut and len(outline.sections) == code.MAX_DEFINITIONS
    last = outline.sections[-1]
    assert last.heading == f"f{code.MAX_DEFINITIONS - 1}" and text[last.end :].startswith("def f")
    extracted = CodeReader().read(text.encode(), "many.py")
    assert extracted.warnings and str(code.MAX_DEFINITIONS) in extracted.warnings[0]


# --- CLI --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_group_file_prints_each_file_once_with_its_further_chunks(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semsearch.cli import main

    path = str(tmp_path / "cli-index")
    assert main(["index", str(repo), "--index", path, "--chunk-tokens", "24"]) == 0
    capsys.readouterr()
    args = ["query", "compute_backoff attempt", "--index", path, "-k", "5", "--group", "file"]
    assert main(args) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if line[:1] not in ("", " ")]
    files = [line.split()[0].split(":")[0] for line in heads]
    assert len(files) == len(set(files)) >= 2
    assert "retry.py" in files[0] and "  also " in out
    assert main([*args, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["more"] and hits[0]["more"][0]["line_start"] >= 1
    assert main([*args[:-1], "line"]) == 2
    assert "line" in capsys.readouterr().err


# --- HTTP and MCP -----------------------------------------------------------------------------


def test_service_search_groups_by_file_and_rejects_unknown_groupings(
    index: SemanticIndex, tmp_path: Path
) -> None:
    from semsearch.serve import params
    from semsearch.serve.service import SearchService

    service = SearchService(tmp_path / "index", workers=1, embedder=FakeEmbedder())
    raw = {"q": "retry backoff attempt", "k": 5, "mode": "keyword", "group": "file"}
    hits = service.search(params.search_request(raw))["hits"]
    assert len({h["doc_id"] for h in hits}) == len(hits) >= 2
    assert hits[0]["more"] and hits[0]["more"][0]["line_start"] >= 1
    with pytest.raises(UsageError, match="'group'"):
        params.search_request({**raw, "group": "line"})


def test_mcp_search_tool_returns_files_with_further_locations(
    index: SemanticIndex, tmp_path: Path
) -> None:
    pytest.importorskip("mcp", reason="pip install 'semsearch[serve]'")
    import anyio
    from mcp import Client

    from semsearch.serve.mcp_server import create_mcp
    from semsearch.serve.service import SearchService

    server = create_mcp(SearchService(tmp_path / "index", workers=1, embedder=FakeEmbedder()))

    async def go() -> object:
        async with Client(server) as client:
            args = {"query": "retry backoff attempt", "mode": "keyword", "group": "file"}
            return await client.call_tool("search", args)

    result = anyio.run(go)
    assert not result.is_error, result.content
    data = result.structured_content or json.loads(result.content[0].text)
    hits = data.get("result", data)["hits"]
    assert len({h["source"] for h in hits}) == len(hits)
    assert hits[0]["more"] and all(":" in loc for loc in hits[0]["more"])
    assert hits[0]["more"][0].startswith(hits[0]["source"] + ":")
