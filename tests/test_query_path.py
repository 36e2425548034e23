"""What a cold ``semsearch query`` loads, and the shortcuts that keep it light giving the same
answers: small segments searched exactly with NumPy (oracle: faiss), the query's token count
from the encoding tokenizer (oracle: the untruncated one), the live-generation stamp."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex, api, index_paths
from semsearch.api import view as view_module
from semsearch.api.hits import Hit
from semsearch.embed import Embedder
from semsearch.index import FaissIndex, NumpyIndex

from .conftest import REPO, SEEDS, FakeEmbedder

#: Modules a search must not import: the build, the file readers (and the DOCX/EPUB ones'
#: zipfile and XML parser), the watcher, faiss for a small index, the lock library (writers
#: only), Typer (a plain query is parsed by cli.fast), pydantic (Typer 0.29 parses options
#: through it: pinned below that), rich (Typer's fancy help, off), numpy.ma (np.unique's
#: first call imports it: util.unique_sorted) and the onnx package (only to make the mapped
#: model copy, once).
NOT_ON_THE_QUERY_PATH = (
    "faiss",
    "filelock",
    "numpy.ma",
    "onnx",
    "pydantic",
    "rich",
    "semsearch.indexing.builder",
    "semsearch.ingest.discover",
    "semsearch.ingest.readers.select",
    "semsearch.watch.watcher",
    "typer",
    "xml.etree.ElementTree",
    "zipfile",
)

_PROBE = """
import json, os, sys
watched = json.loads(sys.argv.pop(1))
from semsearch.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in watched if m in sys.modules)
blas = os.environ.get("OPENBLAS_NUM_THREADS")
print(json.dumps({"code": code, "loaded": loaded, "blas": blas}), file=sys.stderr)
"""


def _probe(args: list[str], watched: tuple[str, ...]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(watched), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    report: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    report["stdout"] = proc.stdout
    return report


@pytest.mark.slow
def test_cold_query_and_unchanged_refresh_load_no_build_machinery(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    idx = tmp_path / "idx"
    index_paths([docs], idx, embedder=real_embedder)
    plain = _probe(["query", "trade decline", "--index", str(idx)], NOT_ON_THE_QUERY_PATH)
    assert plain["code"] in (0, None) and "trade" in str(plain["stdout"]).lower()
    assert plain["loaded"] == []
    assert plain["blas"] == "1"  # one BLAS thread for a one-shot query
    # --refresh with nothing changed checks the folders but builds nothing ...
    fresh = _probe(
        ["query", "trade decline", "--index", str(idx), "--refresh"],
        ("faiss", "filelock", "semsearch.indexing.builder"),
    )
    assert fresh["code"] in (0, None) and fresh["loaded"] == []
    # ... and a change does load the build, and is applied before the search.
    (docs / "new.txt").write_text("Glaciers retreat as the climate warms.")
    changed = _probe(
        ["query", "glaciers", "--index", str(idx), "--refresh", "--json"],
        ("semsearch.indexing.builder",),
    )
    assert changed["loaded"] == ["semsearch.indexing.builder"]
    assert any(h["source"].endswith("new.txt") for h in json.loads(str(changed["stdout"])))


def test_help_loads_no_model_numpy_or_pydantic() -> None:
    watched = ("numpy", "onnxruntime", "pydantic", "rich", "semsearch.api.index")
    shown = _probe(["--help"], watched)
    assert shown["code"] in (0, None) and shown["loaded"] == []
    assert all(f" {c} " in str(shown["stdout"]) for c in ("query", "index", "show", "serve"))
    listed = _probe(["query", "--help"], watched)
    assert listed["loaded"] == [] and "--files-with-matches" in str(listed["stdout"])
    assert shown["blas"] is None  # only a query asks for one BLAS thread


def test_a_query_gets_one_blas_thread_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from semsearch.cli import _light_start

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    _light_start(["info"])
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    _light_start(["query", "x"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    _light_start(["query", "x"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 37, 1000])
@pytest.mark.parametrize("high", [1, 5, 10**12])
def test_unique_sorted_is_np_unique(n: int, high: int) -> None:
    from semsearch.util import unique_sorted

    rng = np.random.default_rng(n * 7 + high)
    values = rng.integers(0, high, size=n, dtype=np.int64)  # high=1: all tied
    for given in (values, values[::-1].copy(), values.reshape(-1, 1)):
        got, want = unique_sorted(given), np.unique(given)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def _texts(n: int) -> list[str]:
    # Few words, so many texts tie exactly (same bag of words, same vector).
    words = ["trade", "decline", "river", "market", "code"]
    return [f"{words[i % 5]} {words[(i * 3) % 5]} {words[(i // 7) % 5]}" for i in range(n)]


@pytest.mark.parametrize("n", [1, 37, view_module.SMALL_EXACT_ROWS - 1])
@pytest.mark.parametrize("k", [1, 5, 50])
def test_small_segment_searched_exactly_gives_faiss_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, k: int
) -> None:
    idx = tmp_path / "idx"
    built = SemanticIndex(embedder=FakeEmbedder(), path=idx, backend="faiss")
    built.add_texts(_texts(n))
    queries = ["trade decline", "river market code", "nothing shared"]
    exact = SemanticIndex.load(idx, embedder=FakeEmbedder())
    assert isinstance(exact.live.require().index, NumpyIndex)
    monkeypatch.setattr(view_module, "SMALL_EXACT_ROWS", 0)  # the oracle: faiss's own search
    oracle = SemanticIndex.load(idx, embedder=FakeEmbedder())
    assert isinstance(oracle.live.require().index, FaissIndex)
    for q in queries:
        got = exact.search(q, k=k, mode="dense", collapse=False)
        want = oracle.search(q, k=k, mode="dense", collapse=False)
        scores = [h.score for h in got]
        np.testing.assert_allclose(scores, [h.score for h in want], rtol=0, atol=1e-6)
        # faiss's kernel may leave equal vectors an ulp apart, so only tied hits may differ:
        # everything above the last score is the same, in the same order.
        above = [h.chunk_id for h in got if h.score > scores[-1] + 1e-6]
        assert above == [h.chunk_id for h in want if h.score > scores[-1] + 1e-6]
        for a, b in itertools.pairwise(got):  # exact ties go to the smaller id
            assert a.score > b.score or (a.score == b.score and a.chunk_id < b.chunk_id)


@pytest.mark.slow
def test_query_token_count_matches_the_untruncated_tokenizer(real_embedder: Embedder) -> None:
    limit = real_embedder.max_tokens
    texts = ["trade decline", "", "naïve café résumé 東京 🙂 " * 3, "word " * (limit - 1)]
    spans = [len(s) for s in real_embedder.token_spans(texts)]  # the untruncated tokenizer
    assert real_embedder.count_tokens(texts) == spans
    assert real_embedder.token_counts(texts) == spans  # exact, from the same tokenizer
    long = "word " * (limit + 40)
    assert real_embedder.count_tokens([long])[0] > limit  # still known to be cut
    # past the cut, token_counts takes the untruncated tokenizer: still exact
    assert real_embedder.token_counts([long, "trade"]) == [
        len(s) for s in real_embedder.token_spans([long, "trade"])
    ]


def test_live_stamp_moves_with_each_published_generation(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    index = SemanticIndex(embedder=FakeEmbedder(), path=idx)
    index.add_texts(["one"])
    first = api.live_stamp(idx)
    assert api.live_stamp(idx) == first
    assert api.index_exists(idx)
    index.add_texts(["two"])
    assert api.live_stamp(idx) != first
    assert index.generation is not None and (idx / index.generation).is_dir()
    shutil.rmtree(idx)
    with pytest.raises(OSError):
        api.live_stamp(idx)
    assert not api.index_exists(idx)


def hit(text: str) -> Hit:
    """A hit with only its text: all that best_sentences reads."""
    h = Hit.__new__(Hit)
    object.__setattr__(h, "text", text)
    return h


@pytest.mark.parametrize(
    "texts",
    [
        ["One sentence only."],
        ["Trade fell. Markets rose. Trade fell.", "Trade fell. Rivers run.", "Just one here."],
        ["A b c. D e f. G h i.", "", "Trade decline. Trade decline."],
        ["Declining trades hurt. Trade is old. Rivers run.", "Rivers run. Seas rise. Ice melts."],
        ["Exports declined. The trade in salt declined. Decline of trade routes."],
    ],
)
@pytest.mark.parametrize("query", ["trade decline", "the decline of trade", "rivers", "zzz"])
def test_best_sentences_match_the_oracle(texts: list[str], query: str) -> None:
    """Oracle: every sentence scored on its own; the ones sharing the most distinct query
    terms (all when none shares one) compete by cosine, the first of equals winning."""
    from semsearch.api.reading import best_sentences
    from semsearch.ingest.chunk import sentence_spans
    from semsearch.store.tokenize import query_languages, terms

    emb = FakeEmbedder()
    hits = [hit(t) for t in texts]
    got = best_sentences(emb, query, hits)
    qvec = emb.encode([query], kind="query")[0]
    wanted = {t for lang in query_languages(query) for t in terms(query, language=lang)}
    for h, span in zip(hits, got, strict=True):
        spans = sentence_spans(h.text) or [(0, len(h.text))]
        shared = [len(wanted & set(terms(h.text[a:b]))) for a, b in spans]
        scores = [
            float(emb.encode([h.text[a:b]])[0] @ qvec) if n == max(shared) else -np.inf
            for (a, b), n in zip(spans, shared, strict=True)
        ]
        assert span == spans[int(np.argmax(scores))]


def test_best_sentences_run_the_model_only_when_sentences_compete() -> None:
    from semsearch.api.reading import best_sentences

    emb = FakeEmbedder()
    assert best_sentences(emb, "trade decline", [hit("Only one."), hit("")]) == [(0, 9), (0, 0)]
    # one sentence shares the most query terms (stemmed: "declining trades"): no model run
    text = "Rivers run. Declining trades hurt. Trade is old."
    assert best_sentences(emb, "trade decline", [hit(text)]) == [(12, 34)]
    assert emb.calls == 0
    # two share as many: the model decides between them (and only them)
    text = "Trade is old. Rivers run. Trade grew."
    best_sentences(emb, "trade decline", [hit(text)])
    assert emb.calls == 2  # the query and one batch of the two competing sentences
    # after a search, the query's vector comes from the search's cache: one run only
    from semsearch.search.query_vectors import query_vectors

    searched = FakeEmbedder()
    qvec = query_vectors(searched, ["trade decline"])[0]
    assert searched.calls == 1
    assert best_sentences(searched, "trade decline", [hit(text)]) == best_sentences(
        emb, "trade decline", [hit(text)]
    )
    assert searched.calls == 2 and np.array_equal(
        qvec, emb.encode(["trade decline"], kind="query")[0]
    )


@pytest.mark.slow
def test_onnx_session_made_in_a_thread_gives_the_same_vectors_and_one_line_errors(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    from semsearch.embed.onnx_runtime import OnnxEmbedder
    from semsearch.errors import ModelError

    model_dir = getattr(real_embedder, "model_dir", None)
    if model_dir is None:
        pytest.skip("the default embedder is not the ONNX one here")
    texts = ["trade decline", "Rivers run to the sea. " * 30, ""]
    again = OnnxEmbedder(model_dir=model_dir)
    assert "_tok" not in vars(again)  # loaded by the first encode, while the session is made
    assert np.array_equal(again.encode(texts), real_embedder.encode(texts))
    assert "_tok" in vars(again)
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    lazy = OnnxEmbedder(model_dir=broken)  # the session fails in its thread ...
    for _ in range(2):  # ... and every use says so in one line
        with pytest.raises(ModelError, match=r"^cannot load ONNX model [^\n]*$"):
            lazy.encode(["x"])


def _export_copy(real_embedder: Embedder, tmp_path: Path) -> Path:
    """A copy of the real model's ONNX export without its mapped copy (skips when the
    default embedder is not the ONNX one)."""
    model_dir = getattr(real_embedder, "model_dir", None)
    if model_dir is None:
        pytest.skip("the default embedder is not the ONNX one here")
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("mapped-*"))
    return copy


@pytest.mark.slow
def test_mapped_model_gives_the_same_vectors_and_follows_a_new_export(
    tmp_path: Path, real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.embed import onnx_mapped, onnx_runtime
    from semsearch.embed.onnx_runtime import OnnxEmbedder

    copy = _export_copy(real_embedder, tmp_path)
    model = copy / "model.onnx"
    texts = ["trade decline", "Rivers run to the sea. " * 30, "", "naïve café 東京"]
    assert onnx_mapped.mapped_model(model) is None
    vectors = OnnxEmbedder(model_dir=copy).encode(texts)  # makes the copy, then maps it
    made = onnx_mapped.mapped_model(model)
    assert made is not None and made.parent.parent == copy
    weights = made.parent / "weights.bin"
    assert weights.stat().st_size > 0.9 * model.stat().st_size  # (nearly) every weight
    if Path("/proc/self/maps").is_file():
        assert str(weights) in Path("/proc/self/maps").read_text()
    # the oracle: a session made from model.onnx itself
    with monkeypatch.context() as mp:
        mp.setattr(onnx_runtime, "ensure_mapped", lambda m: m)
        assert np.array_equal(OnnxEmbedder(model_dir=copy).encode(texts), vectors)
    # a new export (another mtime) gets its own copy; the stale one goes
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert onnx_mapped.mapped_model(model) is None
    assert np.array_equal(OnnxEmbedder(model_dir=copy).encode(texts), vectors)
    remade = onnx_mapped.mapped_model(model)
    assert remade is not None and remade != made and not made.parent.exists()
    # a damaged copy: the session is made from model.onnx (the same vectors), and the copy
    # is removed, to be made again by the next load
    (remade.parent / "weights.bin").write_bytes(b"")
    assert np.array_equal(OnnxEmbedder(model_dir=copy).encode(texts), vectors)
    assert not remade.parent.exists()
    assert np.array_equal(OnnxEmbedder(model_dir=copy).encode(texts), vectors)
    assert onnx_mapped.mapped_model(model) == remade


@pytest.mark.slow
def test_sessions_made_at_once_before_the_mapped_copy_exists_give_the_same_vectors(
    tmp_path: Path, real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions of a new export made at once (a second embedder, or the lanes, while the
    first is still making the mapped copy) each make a copy of their own and keep one: they
    had shared one temporary folder, and a session could map weights still being written."""
    from semsearch.embed import onnx_mapped, onnx_runtime
    from semsearch.embed.onnx_runtime import OnnxEmbedder

    copy = _export_copy(real_embedder, tmp_path)
    texts = ["trade decline", "Rivers run to the sea. " * 30, ""]
    with monkeypatch.context() as mp:  # the oracle: a session of model.onnx itself
        mp.setattr(onnx_runtime, "ensure_mapped", lambda m: m)
        expected = OnnxEmbedder(model_dir=copy).encode(texts)
    made = [OnnxEmbedder(model_dir=copy) for _ in range(3)]  # their threads race
    for embedder in made:
        assert np.array_equal(embedder.encode(texts), expected)
    assert onnx_mapped.mapped_model(copy / "model.onnx") is not None
    assert [p.name for p in copy.iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.slow
def test_a_killed_makers_scratch_folder_is_swept_and_a_young_one_kept(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    """A maker killed mid-copy leaves ``.mapped-*.tmp`` with a partial weights file in the
    cache; the next maker removes it once it is old enough not to be another's, still writing."""
    from semsearch.embed import onnx_mapped
    from semsearch.util import STALE_SCRATCH_SECONDS

    copy = _export_copy(real_embedder, tmp_path)
    killed = copy / ".mapped-killed.tmp"
    killed.mkdir()
    (killed / "weights.bin").write_bytes(b"\0" * 1024)
    old = time.time() - STALE_SCRATCH_SECONDS - 60
    os.utime(killed, (old, old))
    writing = copy / ".mapped-writing.tmp"
    writing.mkdir()
    made = onnx_mapped.ensure_mapped(copy / "model.onnx")
    assert made.parent.name.startswith("mapped-")
    assert not killed.exists()
    assert writing.is_dir()
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == [writing.name]


def test_cli_builds_only_the_command_it_runs() -> None:
    from semsearch.cli.commands import _command_name, _narrowed, app

    assert [_command_name(c) for c in _narrowed(["query", "x"]).registered_commands] == ["query"]
    assert len(app.registered_commands) > 10  # the app itself keeps every command
    for whole in (["--help"], ["--version"], ["qury", "x"], []):
        assert _narrowed(whole) is app


@pytest.fixture
def seeds_index(tmp_path: Path, real_embedder: Embedder) -> Path:
    """The seed documents indexed with the real model."""
    idx = tmp_path / "idx"
    index_paths([SEEDS], idx, embedder=real_embedder)
    return idx


@pytest.mark.slow
def test_model_started_early_is_the_one_the_index_opens_with(
    tmp_path: Path, seeds_index: Path
) -> None:
    from semsearch.embed import load as load_module

    idx = seeds_index
    api.start_loading_model(tmp_path / "nothing here")  # no index: nothing, no error
    load_module._load.cache_clear()
    api.start_loading_model(idx)
    assert load_module._load.cache_info().currsize == 1
    opened = SemanticIndex.load(idx)
    info = api.index_info(idx)
    assert opened.embedder is load_module.load_embedder(info.model, info.precision)
    assert load_module._load.cache_info().currsize == 1  # the same instance, not a second
    assert opened.search("trade decline", k=1)


#: ``semsearch`` as the console script runs it, recording how the process ends: an ``atexit``
#: handler and a thread that is not a daemon must both be done before ``os._exit``, and an idle
#: pool worker must not keep it waiting.
_RUN = """
import atexit, os, sys, threading, time
real_exit = os._exit
def recorded(code):
    print(f"os._exit({code})", file=sys.stderr, flush=True)
    real_exit(code)
os._exit = recorded
atexit.register(lambda: print("atexit ran", file=sys.stderr))
def late():
    time.sleep(0.2)
    print("thread done", file=sys.stderr)
threading.Thread(target=late).start()
from concurrent.futures import ThreadPoolExecutor  # an idle pool worker, as lanes leave one
ThreadPoolExecutor(1).submit(int).result()
if os.environ.get("BROKEN_STDOUT"):  # a reader that went away: the flush fails
    class Gone:
        def write(self, text): return len(text)
        def flush(self): raise BrokenPipeError(32, "Broken pipe")
    sys.stdout = Gone()
sys.argv[0] = "semsearch"
from semsearch.cli import run
run()
"""


def _run_script(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args], cwd=REPO, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip


def _ended_quickly(proc: subprocess.CompletedProcess[str]) -> bool:
    """True when the process ended by ``os._exit`` after its thread and atexit handler."""
    lines = proc.stderr.splitlines()
    quick = f"os._exit({proc.returncode})" in lines
    if quick:
        assert lines.index("thread done") < lines.index("atexit ran") < len(lines) - 1
    else:
        assert "thread done" in lines and "atexit ran" in lines
    return quick


def test_help_ends_without_teardown_and_long_commands_exit_as_usual(tmp_path: Path) -> None:
    shown = _run_script(["--help"])
    assert shown.returncode == 0 and " query " in shown.stdout
    assert _ended_quickly(shown)
    assert _ended_quickly(_run_script(["--version"]))
    # a command that is not a quick one exits through the interpreter, as before
    refused = _run_script(["verify", "--index", str(tmp_path / "none")])
    assert refused.returncode == 1 and "semsearch: error:" in refused.stderr
    assert not _ended_quickly(refused)
    # a failing flush (the reader went away) is left to the ordinary exit to report
    gone = _run_script(["--help"], BROKEN_STDOUT="1")
    assert not _ended_quickly(gone) and gone.returncode != 0


@pytest.mark.slow
def test_read_only_commands_end_without_teardown_printing_the_same(seeds_index: Path) -> None:
    idx = seeds_index
    first = sorted(SEEDS.glob("*.txt"))[0]
    queries = [["query", "trade decline", "--index", str(idx), *extra] for extra in
               ([], ["--json"], ["--mode", "keyword", "-C", "1"])]  # fmt: skip
    reads = [["info", "--index", str(idx)], ["ls", "--index", str(idx), "--json"],
             ["show", f"{first}:2", "--index", str(idx)]]  # fmt: skip
    for args in [*queries, *reads]:
        quick = _run_script(args)
        assert quick.returncode == 0 and _ended_quickly(quick)
        assert quick.stdout == _probe(args, ())["stdout"]  # main() and the ordinary exit
    nothing = _run_script(["query", "zzzqqx", "--index", str(idx), "--mode", "keyword"])
    assert nothing.returncode == 1 and "no results" in nothing.stderr
    assert _ended_quickly(nothing)


def test_the_fast_parser_table_is_what_typer_builds_from_the_declaration() -> None:
    from semsearch.cli import fast, query_params

    assert fast.describe() == query_params.PARAMS  # else: python -m semsearch.cli.fast


#: Query command lines (after ``query``) the fast parser answers, and ones it leaves to Typer.
FAST_ARGS = [
    ["x"],
    ["trade decline", "--index", "IDX", "--json"],
    ["-k", "3", "x", "-l"],
    ["x", "--top-k=7", "--mode", "keyword", "-C", "2", "--full"],
    ["x", "--where", "a=1", "--where", "b>=2", "--source", "*.txt", "-i", "I"],
    ["x", "--min-score", "0.5", "--per-source", "2", "--diverse", "--no-collapse"],
    ["x", "--group", "file", "-A", "1", "-B", "0", "--refresh", "--refresh-budget", "0.5"],
    ["x", "--model", "m", "--rerank", "r", "-k", "2", "-k", "4", "--min-score", "nan"],
    ["-", "--index=-x", "--context=0", "--mode=dense"],
]
TYPER_ARGS = [
    [], ["x", "--help"], ["x", "-k5"], ["x", "-k", "five"], ["x", "y"], ["--", "x"],
    ["x", "--mode", "Dense"], ["x", "-C", "-1"], ["x", "--json=1"], ["x", "--index"],
    ["x", "--nope"], ["x", "-lk", "3"], ["x", "--refresh-budget", "-1"], ["x", "--group", "dir"],
]  # fmt: skip


@pytest.mark.parametrize("args", FAST_ARGS)
def test_the_fast_parser_gives_the_values_typer_gives(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.cli import fast, query, query_params
    from semsearch.cli.commands import typer_main

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(query, "answer", lambda **values: seen.append(values) or 0)
    assert typer_main(["query", *args]) == 0
    parsed = fast.parse(args, query_params.PARAMS)
    assert repr(parsed) == repr(seen[0])  # the same values, of the same types (nan included)


@pytest.mark.parametrize("args", TYPER_ARGS)
def test_the_fast_parser_leaves_to_typer_what_it_cannot_answer_as_click(args: list[str]) -> None:
    from semsearch.cli import fast, query_params

    assert fast.parse(args, query_params.PARAMS) is None
    assert fast.fast_query(["query", *args]) is None


def _outcome(cmd: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    return r.returncode, r.stdout, r.stderr


_TYPER_ONLY = """
import sys
import time
from semsearch.cli import fast, main
way = sys.argv.pop(1)
if way == "typer":
    fast.fast_query = lambda args: None
code = main()
sys.exit(99 if (way == "fast") == ("typer" in sys.modules) else code)  # each went its way
"""


WAYS = ("fast", "typer")


@pytest.mark.slow
def test_a_query_prints_the_same_through_the_fast_path_and_typer(seeds_index: Path) -> None:
    cases = [
        [], ["--json"], ["-l"], ["--full"], ["-C", "2"], ["--mode", "keyword", "-k", "2"],
        ["--mode", "dense", "--where", "{bad"], ["--min-score", "nan"],
    ]  # fmt: skip
    lines = [["trade decline", *c] for c in cases] + [["zzzqqx", "--mode", "keyword"], [" "]]
    for words in lines:
        args = ["query", *words, "--index", str(seeds_index)]
        fast, typer = (_outcome([sys.executable, "-c", _TYPER_ONLY, w, *args]) for w in WAYS)
        assert fast == typer, words
