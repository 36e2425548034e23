"""Hostile and awkward inputs to the readers (issue 20: D4, D8-D13, D23, items 3, 4, 7).

Every hostile file is generated here, small on disk; the ones that used to take gigabytes
are read in a subprocess under an address-space ceiling (``fault_battery.measure_read``),
so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from semsearch.ingest.read import read_document, read_records

from . import fault_battery as fb

#: Address space a hostile read may use (the interpreter alone maps ~100 MB).
CEILING_MB = 1024


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- front matter (D8, item 3) -------------------------------------------------------------


def test_yaml_alias_bomb_is_bounded_and_the_body_indexed(tmp_path: Path) -> None:
    got = fb.measure_read(fb.yaml_bomb(tmp_path / "bomb.md"), limit_mb=CEILING_MB, timeout=60)
    assert "error" not in got, got
    assert got["docs"] == 1 and got["meta"] == [None]
    assert "still indexed" in got["texts"][0]  # type: ignore[index]
    assert len(got["warnings"]) == 1  # type: ignore[arg-type]
    assert "bomb.md" in got["warnings"][0] and "front matter" in got["warnings"][0]  # type: ignore[index]


def test_a_small_alias_bomb_does_not_bloat_the_metadata(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Five levels (10^5 expanded) fit in memory but would add megabytes to every hit."""
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        doc = read_document(fb.yaml_bomb(tmp_path / "small.md", levels=5))
    assert doc is not None and doc.meta is None
    assert len(warnings_of(caplog)) == 1 and "small.md" in warnings_of(caplog)[0]


@pytest.mark.parametrize(
    "front",
    ["title: [unclosed\n", "a: &a [*a]\n", "- just\n- a list\n", "key: value\n  bad: indent\n"],
)
def test_bad_front_matter_warns_once_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, front: str
) -> None:
    path = tmp_path / "note.md"
    path.write_text(f"---\n{front}---\n# Note\n\nThe body survives.\n")
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        doc = read_document(path)
    assert doc is not None and "The body survives." in doc.text and doc.meta is None
    messages = warnings_of(caplog)
    assert len(messages) == 1 and str(path) in messages[0] and "front matter" in messages[0]


def test_front_matter_values_stay_json_typed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "typed.md"
    path.write_text(
        "---\ntags: [soup, winter]\nyear: 2024\nscore: .nan\nbig: 99999999999999999999999\n"
        "when: 2024-01-02\nratings: [1, 2.5]\ndraft: false\n---\nSoup in winter.\n"
    )
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        doc = read_document(path)
    assert doc is not None
    assert doc.meta == {
        "tags": ["soup", "winter"],
        "year": 2024,
        "when": "2024-01-02",
        "ratings": [1, 2.5],
        "draft": False,
    }
    assert warnings_of(caplog) == []


# --- containers and PDFs (D9, D10, D11) ----------------------------------------------------


def test_epub_spine_naming_one_chapter_2000_times_reads_it_once(tmp_path: Path) -> None:
    path = fb.epub_spine_bomb(tmp_path / "spine.epub")
    got = fb.measure_read(path, limit_mb=CEILING_MB, timeout=60)
    assert "error" not in got, got
    assert got["docs"] == 1
    assert 1_000_000 <= got["chars"] < 1_100_000  # type: ignore[operator]
    assert got["maxrss_mb"] < 400  # type: ignore[operator]


def test_epub_text_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct chapters still stop at the text bound, with one warning naming the file."""
    from semsearch.ingest.readers import base

    monkeypatch.setattr(base, "MAX_TEXT_CHARS", 1000)
    monkeypatch.setattr(base.SectionBuilder.__init__, "__defaults__", (1000,))
    path = fb.epub_spine_bomb(tmp_path / "book.epub", repeats=3, chapter_chars=5000)
    with pytest.MonkeyPatch.context():
        import logging as _logging

        records: list[str] = []
        handler = _logging.Handler()
        handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
        _logging.getLogger("semsearch").addHandler(handler)
        try:
            doc = read_document(path)
        finally:
            _logging.getLogger("semsearch").removeHandler(handler)
    assert doc is not None and len(doc.text) == 1000
    assert len(records) == 1 and "book.epub" in records[0] and "cut at 1000" in records[0]


def test_pdf_page_tree_of_shared_nodes_is_bounded(tmp_path: Path) -> None:
    got = fb.measure_read(fb.pdf_shared_tree(tmp_path / "tree.pdf"), limit_mb=CEILING_MB)
    assert "error" not in got, got
    assert got["docs"] == 1 and "Shared page text" in got["texts"][0]  # type: ignore[index]
    assert any("tree.pdf" in w and "1000000 pages" in w for w in got["warnings"])  # type: ignore[attr-defined]
    assert got["maxrss_mb"] < 600  # type: ignore[operator]


def test_pdf_flate_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    got = fb.measure_read(fb.pdf_flate_bomb(tmp_path / "flate.pdf"), limit_mb=CEILING_MB)
    assert "error" not in got, got
    assert got["docs"] == 0
    assert len(got["warnings"]) == 1 and "decompression bomb" in got["warnings"][0]  # type: ignore[arg-type, index]
    assert "flate.pdf" in got["warnings"][0]  # type: ignore[index]
    assert got["maxrss_mb"] < 200  # type: ignore[operator]


def test_a_pdf_with_ordinary_flate_streams_is_read(tmp_path: Path) -> None:
    """The bomb check passes real compressed content (a ratio well under the bound)."""
    path = fb.pdf_flate_bomb(tmp_path / "fine.pdf", inflated=200_000)
    doc = read_document(path)
    assert doc is not None and "Bomb page" in doc.text


# --- big and bad data files (D4, D12, D13) -------------------------------------------------


def test_jsonl_huge_number_and_deep_nesting_skip_only_their_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = fb.jsonl_hostile(tmp_path / "bad.jsonl")
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        docs = list(read_records(path))
    assert [d.text for d in docs] == ["first good row", "last good row"]
    assert [d.doc_id for d in docs] == [f"{path}#1", f"{path}#4"]
    assert warnings_of(caplog) == [
        f"{path}:2: a number with too many digits; line skipped",
        f"{path}:3: JSON nested too deep; line skipped",
    ]


def test_a_bad_jsonl_line_no_longer_drops_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "one"}\nnot json\n{"text": "two"}\n' + "{\n" * 5)
    with caplog.at_level(logging.WARNING, logger="semsearch"):
        docs = list(read_records(path))
    assert [d.text for d in docs] == ["one", "two"]
    messages = warnings_of(caplog)
    assert messages[0].startswith(f"{path}:2: not JSON")
    assert len(messages) == 4 and messages[-1] == f"{path}: 3 more lines skipped"


def test_jsonl_metadata_is_json_typed(tmp_path: Path) -> None:
    """NaN/Infinity become null (D5 at ingest); lists of scalars stay lists (item 3)."""
    path = tmp_path / "meta.jsonl"
    path.write_text(
        '{"text": "t", "tags": ["a", "b"], "x": NaN, "y": -Infinity, "n": 3, '
        '"nested": {"a": 1}, "mixed": [1, {"a": 2}]}\n'
    )
    (doc,) = read_records(path)
    assert doc.meta == {"tags": ["a", "b"], "x": None, "y": None, "n": 3}


def test_csv_of_four_million_rows_is_bounded(tmp_path: Path) -> None:
    got = fb.measure_read(fb.csv_rows(tmp_path / "rows.csv"), limit_mb=CEILING_MB, timeout=300)
    assert "error" not in got, got
    assert got["docs"] == fb_rows_bound()
    assert len(got["warnings"]) == 1 and "rows.csv" in got["warnings"][0]  # type: ignore[arg-type, index]
    assert got["maxrss_mb"] < 500  # type: ignore[operator]


def fb_rows_bound() -> int:
    from semsearch.ingest.limits import MAX_ROWS

    return MAX_ROWS


def test_markdown_list_of_two_million_items_is_read_in_bounded_memory(tmp_path: Path) -> None:
    got = fb.measure_read(fb.markdown_list(tmp_path / "list.md"), limit_mb=CEILING_MB)
    assert "error" not in got, got
    assert got["docs"] == 1 and got["chars"] == 8_000_015
    assert got["maxrss_mb"] < 300  # type: ignore[operator]


def test_big_markdown_line_scan_finds_the_headings_markdown_it_finds() -> None:
    from semsearch.ingest.readers import markdown

    text = (
        "# Guide\n\nIntro para\n\nSetext\n======\n\n```\n# not a heading\n```\n\n## Two ##\n"
        "- item\n\nText\n\n    # indented code\n\nPara\n---\n\n~~~~\n## fenced\n~~~~\n### Three\n"
    )
    assert list(markdown._scanned(text)) == list(markdown._parsed(text))
    assert [h.text for h in markdown._scanned(text)] == ["Guide", "Setext", "Two", "Para", "Three"]


def test_chunking_an_eight_megabyte_sentence_tokenises_in_windows() -> None:
    """One 8 MB "sentence" (a list with no full stop) reaches the tokenizer in pieces of
    at most ``_WINDOW_CHARS``, and the chunks still tile the text."""
    from semsearch.ingest import chunk

    text = "- a\n" * 2_000_000
    longest = 0

    def spans(texts: list[str]) -> list[list[tuple[int, int]]]:
        nonlocal longest
        longest = max(longest, sum(map(len, texts)))
        return [[(i, i + 1) for i in range(0, len(t), 4)] for t in texts]

    chunks = list(
        chunk.iter_chunks(text[:400_000], doc_id="d", source="d", token_spans=spans)  # type: ignore[arg-type]
    )
    assert longest <= 2 * chunk._WINDOW_CHARS
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert sum(len(c.text) for c in chunks) >= 0.7 * 400_000


# --- HTML text holding the reader's own marks (D23) ----------------------------------------


@pytest.mark.parametrize("entity", [False, True])
def test_html_private_use_characters_are_kept(tmp_path: Path, entity: bool) -> None:
    pua = "".join(chr(c) for c in range(0xE000, 0xE005))
    shown = "".join(f"&#x{c:x};" for c in range(0xE000, 0xE005)) if entity else pua
    page = (
        f"<html><head><title>Icons</title></head><body><h1>Font icons {shown}</h1>"
        f"<p>Glyphs {shown} in a sentence.</p><pre>code {shown}\n  kept</pre>"
        "<h2>Next</h2><p>More text.</p></body></html>"
    )
    doc = read_document(fb_write(tmp_path / "icons.html", page))
    assert doc is not None
    assert f"Glyphs {pua} in a sentence." in doc.text
    assert f"code {pua}\n  kept" in doc.text
    headings = {s.heading for s in doc.sections}
    assert f"Font icons {pua}" in headings
    assert any(h.endswith("Next") for h in headings)


def fb_write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- a heading with no body (item 4) -------------------------------------------------------

_BARE_MD = (
    "# Soup\n\n## Winter soups\n\nLentil soup warms you in winter.\n\n## Summer\n\nGazpacho.\n"
)
_BARE_HTML = (
    "<html><body><h1>Soup</h1><h2>Winter soups</h2><p>Lentil soup warms you in winter.</p>"
    "<h2>Summer</h2><p>Gazpacho.</p></body></html>"
)


@pytest.mark.parametrize(("name", "page"), [("soup.md", _BARE_MD), ("soup.html", _BARE_HTML)])
def test_a_heading_with_no_body_joins_the_section_after_it(
    tmp_path: Path, name: str, page: str
) -> None:
    from semsearch.indexing.engine import chunk_rows
    from semsearch.indexing.settings import ChunkParams
    from semsearch.ingest.readers import HEADING_SEP

    from .conftest import FakeEmbedder

    doc = read_document(fb_write(tmp_path / name, page))
    assert doc is not None
    first = doc.sections[0]
    assert doc.text[first.start : first.end].lstrip().startswith(("# Soup", "Soup"))
    assert first.heading == f"Soup{HEADING_SEP}Winter soups"
    assert "Lentil soup" in doc.text[first.start : first.end]
    rows = chunk_rows(doc, FakeEmbedder(), ChunkParams(200, 0))
    assert all("Lentil" in r.text or "Gazpacho" in r.text for r in rows), [r.text for r in rows]


# --- legacy encodings (item 7) -------------------------------------------------------------

_CZECH = (
    "Včera jsem byl v obchodě a koupil jsem chléb, mléko a sýr. Počasí bylo krásné, ale "
    "večer začalo pršet. Zítra pojedeme na výlet do hor, kde budeme chodit po lesích. "
) * 3


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Le café était très chaud", "cp1252"),  # read as cp1250 before: "Le cafť ťtait"
        ("Le café était très chaud", "latin-1"),
        ("Ça coûte 5 € — “quoted”", "cp1252"),
        ("Señor Muñoz, ¿dónde está el niño?", "cp1252"),
        ("Smørrebrød og æblekage på Østerbro", "latin-1"),
        ("Привет, как дела? Всё хорошо.", "cp1251"),
        ("Zażółć gęślą jaźń", "cp1250"),
        ("Καλημέρα κόσμε", "cp1253"),
        ("日本語のテキストです。", "shift_jis"),
        ("中文文本测试，你好世界。", "gbk"),
        ("naïve café ☕", "utf-16"),
        (_CZECH, "cp1250"),  # long enough for the detector's guess to stand
    ],
)
def test_short_legacy_texts_decode_to_their_letters(
    tmp_path: Path, text: str, encoding: str
) -> None:
    doc = read_document(fb_write_bytes(tmp_path / "note.txt", text.encode(encoding)))
    assert doc is not None and doc.text == text


def test_keyword_search_finds_cafe_in_a_latin1_note(tmp_path: Path) -> None:
    from semsearch import SemanticIndex

    from .conftest import FakeEmbedder

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "cafe.txt").write_bytes("Le café était très chaud".encode("latin-1"))
    (folder / "other.txt").write_text("Nothing to see here.")
    index = SemanticIndex(embedder=FakeEmbedder())
    index.add_paths([folder])
    hits = index.search("café", k=1, mode="keyword")
    assert hits and hits[0].source.endswith("cafe.txt")


def fb_write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_markdown_just_over_the_parse_bound_keeps_its_headings(tmp_path: Path) -> None:
    from semsearch.ingest.limits import MAX_MARKDOWN_PARSE

    body = "- item\n" * (MAX_MARKDOWN_PARSE // 7 + 1)
    doc = read_document(fb_write(tmp_path / "big.md", f"# Top\n\nIntro.\n\n## Items\n\n{body}"))
    assert doc is not None and len(doc.text) > MAX_MARKDOWN_PARSE
    assert [s.heading for s in doc.sections] == ["Top", "Top › Items"]


def test_a_pdf_with_a_large_blank_flate_image_keeps_its_text(tmp_path: Path) -> None:
    """Images are not decoded to extract text, so a highly compressible one is no bomb."""
    path = fb.pdf_flate_bomb(tmp_path / "scan.pdf", inflated=128 << 20, image=True)
    got = fb.measure_read(path, limit_mb=CEILING_MB)
    assert "error" not in got, got
    assert got["docs"] == 1 and "Image page" in got["texts"][0]  # type: ignore[index]
    assert got["warnings"] == []
    assert got["maxrss_mb"] < 200  # type: ignore[operator]
