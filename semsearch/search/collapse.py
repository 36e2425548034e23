"""Copies of one passage in several files (Sphinx's ``_sources/x.rst.txt`` beside
``x.html``, a vendored file, a backup) become one hit that names the other sources."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .shape import NEAR_DUPLICATE

_NOT_WORD = re.compile(r"[\W_]+")


def text_key(text: str) -> str:
    """The text with case, punctuation, markup signs and spacing left out, hashed: two
    passages with one key say the same thing in the same words."""
    return hashlib.blake2b(_NOT_WORD.sub(" ", text.casefold()).strip().encode()).hexdigest()


def copies(texts: Sequence[str], sources: Sequence[str], vectors: np.ndarray) -> list[int]:
    """For each position (best first), the earlier position it is a copy of (same words, or
    a cosine of at least ``NEAR_DUPLICATE``, in another file), or -1 when it is its own."""
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = (vecs / np.where(norms > 0, norms, 1)).astype(np.float32)
    keys = [text_key(t) for t in texts]
    kept: list[int] = []
    out = []
    for n in range(len(texts)):
        of = -1
        for m in kept:
            if sources[m] != sources[n] and (
                keys[m] == keys[n] or float(vecs[m] @ vecs[n]) >= NEAR_DUPLICATE
            ):
                of = m
                break
        out.append(of)
        if of < 0:
            kept.append(n)
    return out
