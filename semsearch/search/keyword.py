"""Keyword queries: user text turned into a safe FTS5 query."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
#: Common English words dropped from keyword queries: they match nearly every chunk.
STOPWORDS = frozenset(
    (
        "a an and are as at be but by for from has have if in into is it its no not of on or "
        "such that the their then there these they this to was were will with what which who "
        "whom why how when where do does did can could should would may might"
    ).split()
)


def keyword_query(text: str) -> str | None:
    """An FTS5 query matching any of the words of ``text`` (each quoted, so user text can
    never be read as FTS syntax). None when nothing searchable is left."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    if not words:
        return None
    unique = list(dict.fromkeys(words))
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)
