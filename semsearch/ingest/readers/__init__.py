"""Format readers: one small interface, chosen by suffix then content sniffing."""

from .base import HEADING_SEP, Extracted, Reader, ReaderMissing, Unreadable
from .data import DATA_SUFFIXES, Row, Skipped, read_rows
from .select import READERS, choose, size_factor
from .text import decode

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
