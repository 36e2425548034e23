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
