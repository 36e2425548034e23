"""Plain text and source code: decoded with BOM sniffing, UTF-8, then charset detection."""

from __future__ import annotations

import codecs
from typing import Any

from .base import Extracted, Reader, Unreadable

#: Bytes the charset detector looks at (it is slow on whole files; a sample decides).
_DETECT_SAMPLE = 64 * 1024
#: Non-ASCII bytes a sample needs before the detector's guess can overrule cp1252.
_CONFIDENT_AFTER = 20
#: Non-letters above ASCII that Western European text uses (cp1252's punctuation).
_WESTERN_SIGNS = frozenset("\u00a0¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿×÷€‚„…†‡ˆ‰‹‘’“”•–—˜™›")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

CODE_SUFFIXES = frozenset(
    ".py .pyi .js .mjs .cjs .ts .tsx .jsx .go .rs .java .kt .kts .scala .c .h .cc .cpp .cxx "
    ".hpp .hh .cs .rb .php .pl .pm .sh .bash .zsh .fish .lua .r .jl .swift .m .mm .sql .hs "
    ".ml .ex .exs .erl .clj .dart .vue .svelte .el .vim .ps1 .bat .cmake .toml .yaml .yml "
    ".ini .cfg".split()
)
TEXT_SUFFIXES = frozenset(".txt .text .rst .adoc .org .log .tex .me .1 .nfo".split())


def decode(data: bytes) -> str:
    """Text from bytes: a BOM decides, else strict UTF-8, else Western (cp1252) unless the
    charset detector is confident of another encoding.

    Raises Unreadable for binary data (NUL bytes without a UTF-16/32 BOM, and no detected
    text encoding). Latin-1/cp1252 text decodes to its letters, not U+FFFD.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data.decode(enc, errors="replace").removeprefix("\ufeff")
    sample = data[:_DETECT_SAMPLE]
    if b"\x00" not in sample:  # a NUL byte means binary (as git decides) or UTF-16/32
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    import charset_normalizer  # a core dependency; imported here to keep CLI start fast

    results = charset_normalizer.from_bytes(sample)
    best = results.best()
    if b"\x00" in sample:
        if best is None or not best.encoding.startswith(("utf_16", "utf_32")):
            raise Unreadable("binary file")
        return data.decode(best.encoding, errors="replace").removeprefix("\ufeff")
    encoding = "cp1252" if best is None or _western(sample, results) else best.encoding
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:  # the sample decided, a later byte disagrees
        return data.decode("cp1252", errors="replace")


def _western(sample: bytes, results: Any) -> bool:
    """Whether to read ``sample`` as cp1252 rather than the detector's best guess.

    The detector's scores are noise on a short text: it reads "Le café était très chaud"
    as Mac Central European. So cp1252 wins when it decodes the sample to plausible Western
    text (letters, not stray symbols; not nearly all accented, as Cyrillic or Greek read as
    cp1252 is), and the text is too short for the detector's verdict to mean much."""
    try:
        text = sample.decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: not Western
        return False
    best = results.best()
    if sample.decode(best.encoding, errors="replace") == text:
        return True
    letters = sum(c.isalpha() for c in text)
    accented = sum(c.isalpha() for c in text if ord(c) > 127)
    odd = sum(
        not c.isalpha() and not c.isspace() and c not in _WESTERN_SIGNS
        for c in text
        if ord(c) > 127
    )
    if odd or accented > 0.4 * letters:
        return False
    return sum(b > 127 for b in sample) < _CONFIDENT_AFTER


class TextReader(Reader):
    kind = "text"
    suffixes = TEXT_SUFFIXES

    def read(self, data: bytes, name: str) -> Extracted:
        return Extracted(decode(data), self.kind, title=name)


class CodeReader(Reader):
    """Source code: one section per definition (see ingest/code.py), chunked from
    blank-line blocks inside it (see chunk.py)."""

    kind = "code"
    suffixes = CODE_SUFFIXES

    def sniff(self, head: bytes) -> bool:
        """A script without a suffix: a ``#!`` line or an editor mode line naming a
        language whose definitions are known (``#!/bin/bash``, ``-*- shell-script -*-``)."""
        from ..code import language_of_content

        return language_of_content(head) is not None

    def read(self, data: bytes, name: str) -> Extracted:
        from ..code import MAX_DEFINITIONS, definition_sections

        text = decode(data)
        outline = definition_sections(text, name)
        cut = (
            (f"more than {MAX_DEFINITIONS} definitions: the rest are chunked without names",)
            if outline.cut
            else ()
        )
        return Extracted(text, self.kind, title=name, sections=outline.sections, warnings=cut)
