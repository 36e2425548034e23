"""Copies of one passage in several files (Sphinx's ``_sources/x.rst.txt`` beside
``x.html``, a vendored file, a backup) become one hit that names the other sources."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

_NOT_WORD = re.compile(r"[\W_]+")
#: ASCII bytes to what the key keeps of them: letters in lower case, digits, else a space.
_ASCII_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256)
)


def text_key(text: str) -> str:
    """The text with case, punctuation, markup signs and spacing left out, hashed: two
    passages with one key say the same thing in the same words."""
    return hashlib.blake2b(_words(text)).hexdigest()


def _words(text: str) -> bytes:
    """What :func:`text_key` hashes: the words of ``text``, lower case, one space apart. An
    ASCII text (most code) is mapped byte by byte, 4x faster than the expression, to the
    same words."""
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_WORDS).split())
    return _NOT_WORD.sub(" ", text.casefold()).strip().encode()


def copies(texts: Sequence[str], sources: Sequence[str]) -> list[int]:
    """For each position (best first), the earlier position it is a copy of (the same
    :func:`text_key`, in another file), or -1 when it is its own.

    Vector closeness alone is not enough: passages of one template or one repeated word
    list differ in their words yet sit at a cosine above 0.98; ``diverse`` (MMR) handles
    those."""
    first: dict[bytes, int] = {}  # (the words themselves: one key, not hashed, per text)
    out = []
    for n, text in enumerate(texts):
        m = first.setdefault(_words(text), n)
        out.append(m if m != n and sources[m] != sources[n] else -1)
    return out
