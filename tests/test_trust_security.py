"""Issue 11, "security and hygiene": an index directory is untrusted input, human output is
escaped, and an offline tool writes nothing outside its own cache and index."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch import IndexFormatError, SemanticIndex, index_paths
from semsearch import config as semsearch_config
from semsearch.cli import main
from semsearch.store import IndexDir
from semsearch.store.manifest import check_files

from .conftest import REPO, FakeEmbedder


def _built(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Trade between the two countries fell by a fifth.")
    (docs / "b.txt").write_text("The ministers met to discuss energy prices.")
    idx = tmp_path / "ix"
    index_paths([docs], idx, embedder=FakeEmbedder(), backend="faiss")
    return idx


def _resign(idx: Path, gen: Path) -> None:
    digest = hashlib.sha256((gen / "manifest.json").read_bytes()).hexdigest()
    (idx / "CURRENT").write_text(f"{gen.name} {digest}\n")


@pytest.mark.parametrize(
    "name", ["/etc/shadow", "../../../../etc/shadow", "../gen-000001/chunks.sqlite", "x/../y"]
)
def test_manifest_naming_files_outside_the_generation_is_refused(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = _built(tmp_path)
    gen = IndexDir(idx).current()
    data = json.loads((gen / "manifest.json").read_text())
    data["files"][name] = {"size": 1, "sha256": "0" * 64}
    (gen / "manifest.json").write_text(json.dumps(data))
    _resign(idx, gen)
    stated: list[str] = []
    real_stat = Path.stat

    def spy(self: Path, *a: object, **k: object) -> os.stat_result:
        stated.append(str(self))
        return real_stat(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", spy)
    with pytest.raises(IndexFormatError, match="unknown file"):
        IndexDir(idx).manifest()
    with pytest.raises(IndexFormatError):
        SemanticIndex.load(idx, embedder=FakeEmbedder())
    assert not [s for s in stated if "shadow" in s or "/.." in s]


def test_info_verify_never_stats_a_file_outside_the_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = _built(tmp_path)
    gen = IndexDir(idx).current()
    data = json.loads((gen / "manifest.json").read_text())
    data["files"]["/etc/shadow"] = {"size": 1, "sha256": "0" * 64}
    (gen / "manifest.json").write_text(json.dumps(data))
    _resign(idx, gen)
    code = main(["info", "--verify", "--index", str(idx)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "unknown file" in err
    assert len(err.strip().splitlines()) == 1


def test_check_files_only_looks_inside_the_generation(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    gen, manifest = IndexDir(idx).manifest()
    assert check_files(gen, manifest, checksums=True) == []
    assert set(manifest.files) <= {"chunks.sqlite", "vectors.npy", "index.faiss"}


def _copy_gen_outside(tmp_path: Path, idx: Path) -> Path:
    import shutil

    outside = tmp_path / "outside" / "gen-000777"
    shutil.copytree(IndexDir(idx).current(), outside)
    return outside


def test_current_as_a_symlink_is_refused(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    elsewhere = tmp_path / "elsewhere-CURRENT"
    elsewhere.write_text((idx / "CURRENT").read_text())
    (idx / "CURRENT").unlink()
    (idx / "CURRENT").symlink_to(elsewhere)
    with pytest.raises(IndexFormatError, match="symbolic link"):
        SemanticIndex.load(idx, embedder=FakeEmbedder())
    # And a writer does not follow it either: the index is refused, not replaced.
    with pytest.raises(Exception) as info:
        index_paths([tmp_path / "docs"], idx, embedder=FakeEmbedder())
    assert "symbolic link" in str(info.value) or "not a semsearch index" in str(info.value)
    assert elsewhere.read_text().startswith("gen-")


def test_generation_as_a_symlink_outside_is_refused(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    outside = _copy_gen_outside(tmp_path, idx)
    link = idx / "gen-000777"
    link.symlink_to(outside, target_is_directory=True)
    (idx / "CURRENT").write_text(
        f"gen-000777 {hashlib.sha256((outside / 'manifest.json').read_bytes()).hexdigest()}\n"
    )
    with pytest.raises(IndexFormatError, match="symbolic link"):
        SemanticIndex.load(idx, embedder=FakeEmbedder())


@pytest.mark.parametrize("name", ["chunks.sqlite", "vectors.npy", "manifest.json", "index.faiss"])
def test_files_inside_a_generation_as_symlinks_are_not_trusted(tmp_path: Path, name: str) -> None:
    idx = _built(tmp_path)
    gen = IndexDir(idx).current()
    real = tmp_path / f"real-{name}"
    (gen / name).rename(real)
    (gen / name).symlink_to(real)
    if name == "index.faiss":  # derived: the intact vectors are searched exactly instead
        loaded = SemanticIndex.load(idx, embedder=FakeEmbedder(), backend="faiss")
        assert loaded.live.view is not None and loaded.live.view.index.backend == "numpy"
        assert len(loaded.search("trade", k=2)) == 2
    else:
        with pytest.raises(IndexFormatError):
            SemanticIndex.load(idx, embedder=FakeEmbedder())


# --- escaped human output, exact JSON --------------------------------------------------------

EVIL = "evil\x1b[31mred\x07\nsecond line\rback.txt"


@pytest.mark.slow
def test_control_characters_are_escaped_for_people_and_exact_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / EVIL).write_text("Mutual trade fell sharply because of fuel and energy products.")
    idx = tmp_path / "ix"
    assert main(["index", str(docs), "--index", str(idx)]) == 0
    capsys.readouterr()
    assert main(["query", "trade fell", "--index", str(idx)]) == 0
    out, err = capsys.readouterr()
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream and "\r" not in stream
    assert "\\x1b" in out and "second line" in out
    assert "second line" in out.splitlines()[0]  # the escaped name, in the hit's location
    assert main(["query", "trade fell", "--index", str(idx), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["source"] == str(docs / EVIL)
    assert main(["info", "--index", str(idx)]) == 0
    assert "\x1b" not in capsys.readouterr().out


# --- nothing written outside the cache and the index -----------------------------------------


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.slow
def test_cli_writes_only_its_cache_and_index_and_honours_xdg_cache_home(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg-cache"
    home.mkdir()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Trade between the countries fell by a fifth last year.")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEMSEARCH_", "XDG_")) and k != "HOME"
    }
    env.update(HOME=str(home), XDG_CACHE_HOME=str(xdg), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    # The session's ONNX export (semsearch's own model cache) saves a re-export here.
    env["SEMSEARCH_MODEL_CACHE"] = os.environ["SEMSEARCH_MODEL_CACHE"]
    idx = tmp_path / "ix"
    for args in (
        ["index", str(docs), "--index", str(idx)],
        ["query", "trade", "--index", str(idx)],
        ["info", "--index", str(idx)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "semsearch", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert (xdg / "semsearch" / "embeddings.sqlite").is_file()  # XDG_CACHE_HOME honoured
    written = _files_under(home) | _files_under(xdg)
    outside = [p for p in written if not p.is_relative_to(xdg / "semsearch")]
    assert outside == [], outside  # nothing in ~/.cache/Microsoft, ~/.onnxruntime, ...
    assert not list(tmp_path.rglob("*Microsoft*")) and not list(tmp_path.rglob(".onnxruntime"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "home", "ix", "xdg-cache"]


def test_config_resolves_xdg_cache_home_once() -> None:
    cfg = semsearch_config.load({"HOME": "/h", "XDG_CACHE_HOME": "/c"})
    assert cfg.cache_dir == Path("/c/semsearch")
    assert cfg.embedding_cache == Path("/c/semsearch/embeddings.sqlite")
    assert cfg.model_cache == Path("/c/semsearch/onnx")
    assert semsearch_config.load({"HOME": "/h"}).cache_dir == Path("/h/.cache/semsearch")
    relative = semsearch_config.load({"HOME": "/h", "XDG_CACHE_HOME": "rel"})
    assert relative.cache_dir == Path("/h/.cache/semsearch")
