"""Choosing a reader for a file: by suffix first, then by what its first bytes say."""

from __future__ import annotations

from pathlib import Path

from .base import Reader
from .docx import DocxReader
from .epub import EpubReader
from .html import HtmlReader
from .markdown import MarkdownReader
from .odt import OdtReader
from .pdf import PdfReader
from .text import CodeReader, TextReader

READERS: tuple[Reader, ...] = (
    PdfReader(),
    HtmlReader(),
    MarkdownReader(),
    DocxReader(),
    EpubReader(),
    OdtReader(),
    CodeReader(),
    TextReader(),
)
_BY_SUFFIX = {s: r for r in READERS for s in r.suffixes}
_TEXT = READERS[-1]


def choose(path: Path, head: bytes) -> Reader:
    """The reader for ``path`` whose first bytes are ``head``.

    Content wins over a wrong suffix (an HTML page saved as ``.pdf``, a PDF named
    ``.txt``); an unknown suffix falls back to sniffing, then to plain text."""
    by_suffix = _BY_SUFFIX.get(path.suffix.lower())
    sniffed = next((r for r in READERS if r.sniff(head)), None)
    if sniffed is not None and sniffed is not by_suffix:
        return sniffed
    return by_suffix or _TEXT


def size_factor(path: Path) -> int:
    """How many times the text size limit a file of this type may be (PDFs are bulky)."""
    reader = _BY_SUFFIX.get(path.suffix.lower())
    return reader.size_factor if reader is not None else 1
