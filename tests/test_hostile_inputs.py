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
