"""Format readers: one small interface, chosen by suffix then content sniffing.

Names load on first use (PEP 562): a search asks only what kind a reader makes
(``text.CodeReader.kind``), not for the DOCX, EPUB and PDF readers :mod:`.select` brings in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...util import lazy_exports

if TYPE_CHECKING:
    from .base import HEADING_SEP, Extracted, Reader, ReaderMissing, Unreadable
    from .data import DATA_SUFFIXES, Row, Skipped, read_rows
    from .select import READERS, choose, size_factor
    from .text import decode

_WHERE = {
    **dict.fromkeys(("HEADING_SEP", "Extracted", "Reader", "ReaderMissing", "Unreadable"), ".base"),
    **dict.fromkeys(("DATA_SUFFIXES", "Row", "Skipped", "read_rows"), ".data"),
    **dict.fromkeys(("READERS", "choose", "size_factor"), ".select"),
    "decode": ".text",
}

__all__ = [
    "DATA_SUFFIXES",
    "HEADING_SEP",
    "READERS",
    "Extracted",
    "Reader",
    "ReaderMissing",
    "Row",
    "Skipped",
    "Unreadable",
    "choose",
    "decode",
    "read_rows",
    "size_factor",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
