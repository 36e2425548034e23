"""End to end over a mixed folder: HTML, PDF, Markdown, DOCX, code and JSONL rows are
indexed through their readers, and hits come back as clean text with page or section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch import SemanticIndex
from semsearch.cli import main
from tests.fixtures import HERE as FIXTURES
from tests.fixtures import make_docx, make_pdf

HTML = """<!DOCTYPE html><html><head><title>Kitchen Notes</title>
<style>.x { color: red }</style><script>var tracking = "analytics";</script></head>
<body><nav>Home | Recipes | About</nav><main>
<h1>Recipes</h1><p>Our collection of dishes.</p>
<h2>Bread</h2><p>Knead the dough for ten minutes until it is smooth and elastic,
then let it rise in a warm place.</p>
</main><footer>Copyright</footer></body></html>"""


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "kitchen.html").write_text(HTML)
    (root / "manual.pdf").write_bytes(
        make_pdf(
            [
                ["Welcome to the flux manual.", "Read every page carefully."],
                ["Safety first: wear gloves in the lab."],
                ["Calibrating the flux capacitor requires", "exactly 1.21 gigawatts of power."],
            ],
            title="Flux Manual",
        )
    )
    (root / "notes.md").write_text("# Notes\n\n## Travel\n\nPack light for the mountain hike.\n")
    (root / "parse.py").write_text(
        'import os\n\n\ndef parse_config(path):\n    """Read the settings file."""\n'
        "    return open(path).read()\n"
    )
    rows = [
        {"text": "The stock market fell sharply on Monday.", "lang": "en", "year": 2020},
        {"text": "Les marchés boursiers ont chuté lundi.", "lang": "fr", "year": 2021},
    ]
    (root / "news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "venv" / "junk.py").write_text("def flux_capacitor(): pass\n")
    (root / ".gitignore").write_text("ignored.md\n")
    (root / "ignored.md").write_text("# Flux capacitor secrets that must stay out\n")
    return root


@pytest.mark.slow
def test_mixed_folder_hits_are_clean_and_located(mixed: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("docx")
    (mixed / "garden.docx").write_bytes(
        make_docx(
            [
                ("Title", "Garden"),
                ("Heading1", "Tomatoes"),
                ("Normal", "Tomatoes need full sun and regular deep watering."),
            ]
        )
    )
    index = SemanticIndex.from_paths([mixed], embedder=real_embedder)
    sources = {Path(d.source).name for d in index.live.view.store.documents()}  # type: ignore[union-attr]
    assert sources == {
        "kitchen.html",
        "manual.pdf",
        "notes.md",
        "parse.py",
        "news.jsonl",
        "garden.docx",
    }  # venv and gitignored files left out

    pdf = index.search("flux capacitor power requirement", k=1, mode="dense")[0]
    assert Path(pdf.source).name == "manual.pdf" and pdf.page == 3 and pdf.title == "Flux Manual"
    assert "1.21 gigawatts" in pdf.text and "obj" not in pdf.text and "Tj" not in pdf.text

    html = index.search("how long to knead bread dough", k=1, mode="dense")[0]
    assert Path(html.source).name == "kitchen.html" and html.section == "Recipes › Bread"
    assert html.title == "Kitchen Notes" and "Knead the dough" in html.text
    for junk in ("<", "analytics", "color", "Home |", "Copyright"):
        assert junk not in html.text

    docx = index.search("watering tomato plants", k=1, mode="dense")[0]
    assert Path(docx.source).name == "garden.docx" and docx.section == "Tomatoes"

    md = index.search("hiking in the mountains", k=1, mode="dense")[0]
    assert Path(md.source).name == "notes.md" and md.section == "Notes › Travel"
    # the bare "# Notes" heading joins the section below it (issue 20, item 4)
    assert md.line_start == 1 and md.text.startswith("# Notes\n\n## Travel")

    code = index.search("read the settings file", k=1, mode="dense")[0]
    assert Path(code.source).name == "parse.py" and code.section == "parse_config"
    assert code.line_start == 4  # the definition is a chunk of its own, without the imports

    fr = index.search("stock market", k=5, where={"lang": "fr"})
    assert [h.text for h in fr] == ["Les marchés boursiers ont chuté lundi."]
    assert index.search("stock market", k=5, where={"year": 2020})[0].metadata["lang"] == "en"


@pytest.mark.slow
def test_cli_index_ls_and_where(
    mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = str(tmp_path / "idx")
    assert (
        main(
            [
                "index",
                str(mixed),
                "--index",
                idx,
                "--exclude",
                "*.py",
                "--glob",
                "*.html",
                "--glob",
                "*.jsonl",
            ]
        )
        == 0
    )  # two globs: both kept
    capsys.readouterr()
    assert main(["ls", "--index", idx, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((Path(d["source"]).name, d["kind"]) for d in listed) == [
        ("kitchen.html", "html"),
        ("news.jsonl", "record"),
        ("news.jsonl", "record"),
    ]
    assert all(d["status"] == "ok" and d["chunks"] >= 1 for d in listed)
    (mixed / "kitchen.html").write_text(HTML.replace("Bread", "Rolls"))
    assert main(["ls", "--index", idx, "--json", "--status", "changed"]) == 0
    assert [Path(d["source"]).name for d in json.loads(capsys.readouterr().out)] == ["kitchen.html"]
    assert main(["query", "market", "--index", idx, "--json", "--where", "lang=fr"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["metadata"]["lang"] for h in hits] == ["fr"]
    assert {"page", "section", "title"} <= set(hits[0])
    assert main(["query", "market", "--index", idx, "--where", "lang"]) == 2


@pytest.mark.parametrize("damage", ["truncate", "encrypted", "unreadable"])
def test_a_changed_file_that_breaks_keeps_its_indexed_version(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import os

    from semsearch.api import index_paths
    from tests.conftest import FakeEmbedder

    src = tmp_path / "src"
    src.mkdir()
    pdf = src / "manual.pdf"
    pdf.write_bytes(make_pdf([["Original flux capacitor manual."]]))
    (src / "other.txt").write_text("another document")
    idx = tmp_path / "idx"
    index_paths([src], idx, embedder=FakeEmbedder())
    if damage == "truncate":
        pdf.write_bytes(make_pdf([["Changed text."]])[:200])
    elif damage == "encrypted":
        pdf.write_bytes((FIXTURES / "encrypted.pdf").read_bytes())
    else:
        pdf.write_bytes(make_pdf([["Changed text, now unreadable."]]))
        pdf.chmod(0)
        if os.access(pdf, os.R_OK):  # root reads anything: make it unreadable another way
            pdf.chmod(0o644)
            pdf.write_bytes(b"%PDF-1.4 broken")
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        stats = index_paths([src], idx, embedder=FakeEmbedder())
    assert stats.documents == 2 and stats.skipped == 1
    hits = SemanticIndex.load(idx, embedder=FakeEmbedder()).search("flux capacitor manual", k=1)
    assert Path(hits[0].source).name == "manual.pdf" and "Original" in hits[0].text
