"""Format readers: text, structure (sections, pages, titles) and bad input, one per format."""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path

import pytest

from semsearch.ingest.read import read_document, read_records
from semsearch.ingest.readers import HEADING_SEP, Unreadable, choose, decode
from tests.fixtures import HERE as FIXTURES
from tests.fixtures import make_docx, make_epub, make_odt, make_pdf, make_zip_bomb

from .conftest import semsearch_messages

MD = """---
title: The Guide
tags: [setup, linux]
version: 3
---
# Guide

Intro paragraph.

## Install

```python
# not a heading
pip install semsearch
```

### Linux

Use apt on Debian.

Setext Heading
--------------

Last words.
"""

HTML = """<!DOCTYPE html>
<html><head><title>Page Title</title><style>body { color: red }</style>
<script>var secret = "scripted";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/menu">Menu link</a></nav>
<main>
<h1>Main <a class="headerlink" href="#">¶</a></h1>
<p>First   paragraph
 with <b>bold</b> words.</p>
<h2>Details</h2>
<p>Second paragraph.</p>
<pre>code   kept
    indented</pre>
<ul><li>item one</li><li>item two</li></ul>
</main>
<footer>Copyright footer</footer>
</body></html>
"""


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def section_of(doc, needle: str):  # type: ignore[no-untyped-def]
    at = doc.text.index(needle)
    hits = [s for s in doc.sections if s.start <= at < s.end]
    assert len(hits) == 1, (needle, doc.sections)
    return hits[0]


def test_markdown_sections_front_matter_and_code(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, "guide.md", MD))
    assert doc is not None and doc.kind == "markdown"
    assert doc.title == "The Guide"
    assert doc.meta == {"title": "The Guide", "tags": ["setup", "linux"], "version": 3}
    assert "title: The Guide" not in doc.text  # front matter is metadata, not text
    assert doc.text.count("\n") == MD.count("\n")  # blanked lines keep line numbers true
    assert section_of(doc, "Intro paragraph").heading == "Guide"
    assert section_of(doc, "pip install").heading == f"Guide{HEADING_SEP}Install"
    assert "# not a heading" in doc.text  # code kept; a # inside a fence is no heading
    assert section_of(doc, "Use apt").heading == HEADING_SEP.join(["Guide", "Install", "Linux"])
    assert section_of(doc, "Last words").heading == f"Guide{HEADING_SEP}Setext Heading"
    # sections tile the text after the first heading, without overlap
    ends = [(s.start, s.end) for s in doc.sections]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))


def test_html_main_text_title_and_sections(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, "page.html", HTML))
    assert doc is not None and doc.kind == "html"
    assert doc.title == "Page Title"
    for gone in ("scripted", "color: red", "Menu link", "Copyright footer", "¶", "<p>"):
        assert gone not in doc.text
    assert "First paragraph with bold words." in doc.text
    assert "code   kept\n    indented" in doc.text  # <pre> keeps its whitespace
    assert section_of(doc, "First paragraph").heading == "Main"
    assert section_of(doc, "item two").heading == f"Main{HEADING_SEP}Details"
    assert "item one\n\nitem two" in doc.text  # block elements do not run together


def test_html_with_megabytes_of_script_is_fast_and_clean(tmp_path: Path) -> None:
    script = "<script>" + "var x = 'junk';\n" * 300_000 + "</script>"
    page = f"<html><head><title>T</title>{script}</head><body><p>Real text.</p></body></html>"
    doc = read_document(write(tmp_path, "big.html", page))
    assert doc is not None and doc.text.strip() == "Real text."


def test_pdf_pages_title_and_text(tmp_path: Path) -> None:
    pdf = make_pdf(
        [["Alpha page one."], ["Beta page two (with parens)."], ["Gamma three."]],
        title="Fixture Manual",
    )
    doc = read_document(write(tmp_path, "report.pdf", pdf))
    assert doc is not None and doc.kind == "pdf" and doc.title == "Fixture Manual"
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert section_of(doc, "Beta page two (with parens).").page == 2
    assert section_of(doc, "Gamma").page == 3
    assert "%PDF" not in doc.text and "obj" not in doc.text


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("truncated.pdf", make_pdf([["Some text."]])[:300], "not a readable PDF"),
        ("garbage.pdf", b"%PDF-1.4\n" + b"\x8f garbage " * 50, "not a readable PDF"),
        ("image-only.pdf", make_pdf([[], []]), "no text layer"),
        ("encrypted.pdf", (FIXTURES / "encrypted.pdf").read_bytes(), "encrypted"),
        ("corrupt.docx", b"PK\x03\x04 this is not really a zip", "not a valid zip"),
        ("bomb.docx", make_zip_bomb(), "zip bomb"),
        ("binary.txt", bytes(range(256)) * 40, "binary"),
    ],
)
def test_bad_files_warn_once_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, data: bytes, reason: str
) -> None:
    if name.endswith(".docx"):
        pytest.importorskip("docx")
    path = write(tmp_path, name, data)
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        assert read_document(path) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and str(path) in messages[0] and reason in messages[0], messages


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    pytest.importorskip("docx")
    data = make_docx(
        [
            ("Title", "The Guide"),
            ("Normal", "Welcome text."),
            ("Heading1", "Install"),
            ("Normal", "Run pip."),
            ("Heading2", "Linux"),
            ("Normal", "Use apt."),
        ],
        table=[["os", "command"], ["debian", "apt"]],
    )
    doc = read_document(write(tmp_path, "guide.docx", data))
    assert doc is not None and doc.kind == "docx" and doc.title == "The Guide"
    assert "Welcome text." in doc.text and "debian | apt" in doc.text
    assert section_of(doc, "Run pip").heading == "Install"
    assert section_of(doc, "Use apt").heading == f"Install{HEADING_SEP}Linux"
    assert section_of(doc, "debian | apt").heading == f"Install{HEADING_SEP}Linux"


def test_missing_reader_warns_once_per_type_naming_the_extra(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semsearch.ingest.read as read_mod

    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import fails as if not installed
    monkeypatch.setattr(read_mod, "_MISSING_REPORTED", set())
    paths = [write(tmp_path, f"r{i}.pdf", make_pdf([["x"]])) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        assert [read_document(p) for p in paths] == [None, None, None]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    assert "pip install 'semsearch[formats]'" in messages[0] and "PDF" in messages[0]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Le café était très naïf; résumé à la française. Ça coûte 5 €.", "cp1252"),
        ("Grüße aus Köln, die Straße ist schön und überall grün.", "latin-1"),
        ("UTF-16 with a BOM: naïve café ☕ 日本語", "utf-16"),
        ("UTF-8 with a BOM: naïve", "utf-8-sig"),
        ("plain utf-8: naïve ☕", "utf-8"),
    ],
)
def test_text_charsets_decode_to_letters(tmp_path: Path, text: str, encoding: str) -> None:
    assert decode(text.encode(encoding)) == text
    doc = read_document(write(tmp_path, "note.txt", text.encode(encoding)))
    assert doc is not None and doc.text == text and "\ufffd" not in doc.text


def test_code_reader_and_suffix_selection(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, "mod.py", "def f():\n    return 1\n"))
    assert doc is not None and doc.kind == "code" and doc.title == "mod.py"
    assert choose(Path("x.unknownsuffix"), b"hello").kind == "text"


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("really-html.pdf", HTML.encode(), "html"),
        ("really-pdf.txt", make_pdf([["Sniffed text."]]), "pdf"),
        ("no-suffix", HTML.encode(), "html"),
    ],
)
def test_content_wins_over_a_wrong_suffix(
    tmp_path: Path, name: str, data: bytes, kind: str
) -> None:
    doc = read_document(write(tmp_path, name, data))
    assert doc is not None and doc.kind == kind
    assert "<" not in doc.text and "%PDF" not in doc.text


def test_fifo_and_vanished_files_do_not_block(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        assert read_document(fifo) is None  # returns at once: never opened for a blocking read
        assert read_document(tmp_path / "gone.txt") is None
    assert len(caplog.records) == 2


def test_jsonl_and_csv_rows_become_documents_with_metadata(tmp_path: Path) -> None:
    jsonl = write(
        tmp_path,
        "d.jsonl",
        '{"body": "first row text", "lang": "en", "n": 1}\n\n'
        '{"body": "second row", "lang": "fr", "nested": {"x": 1}}\n'
        '{"lang": "de"}\n',
    )
    docs = list(read_records(jsonl, "body"))
    assert [d.text for d in docs] == ["first row text", "second row"]
    assert [d.doc_id for d in docs] == [f"{jsonl}#1", f"{jsonl}#3"]
    assert docs[0].meta == {"lang": "en", "n": 1} and docs[1].meta == {"lang": "fr"}
    csv_path = write(tmp_path, "d.csv", 'text,author\n"multi\nline cell",ann\nplain,bob\n')
    rows = list(read_records(csv_path))
    assert [(d.text, d.meta) for d in rows] == [
        ("multi\nline cell", {"author": "ann"}),
        ("plain", {"author": "bob"}),
    ]


def test_records_without_the_text_field_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "d.jsonl", '{"a": "x"}\n')
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        assert list(read_records(path, "body")) == []
    assert "--text-field" in semsearch_messages(caplog)[0]


def test_unreadable_is_the_reader_error() -> None:
    with pytest.raises(Unreadable):
        decode(b"\x00\x01\x02\x03" * 100)


def test_epub_chapters_in_spine_order_with_sections(tmp_path: Path) -> None:
    data = make_epub(
        [
            ("b.xhtml", "<h1>Chapter Two</h1><p>Second chapter text.</p>"),
            ("a.xhtml", "<p>Preface words.</p><h1>Chapter One</h1><h2>Part</h2><p>Deep text.</p>"),
        ],
        title="The Book",
    )
    doc = read_document(write(tmp_path, "book.epub", data))
    assert doc is not None and doc.kind == "epub" and doc.title == "The Book"
    assert doc.text.index("Second chapter") < doc.text.index("Preface words")  # spine order
    assert section_of(doc, "Second chapter").heading == "Chapter Two"
    assert section_of(doc, "Deep text").heading == f"Chapter One{HEADING_SEP}Part"
    assert not [s for s in doc.sections if s.start <= doc.text.index("Preface") < s.end]


def test_odt_headings_and_paragraphs(tmp_path: Path) -> None:
    data = make_odt([(1, "Install"), (0, "Run pip."), (2, "Linux"), (0, "Use apt.")], "Guide")
    doc = read_document(write(tmp_path, "guide.odt", data))
    assert doc is not None and doc.kind == "odt" and doc.title == "Guide"
    assert section_of(doc, "Run pip").heading == "Install"
    assert section_of(doc, "Use apt").heading == f"Install{HEADING_SEP}Linux"


@pytest.mark.parametrize("name", ["bomb.epub", "bomb.odt"])
def test_zip_bombs_in_other_containers_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    path = write(tmp_path, name, make_zip_bomb("content.xml"))
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        assert read_document(path) is None
    assert "zip bomb" in semsearch_messages(caplog)[0]
