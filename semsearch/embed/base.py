"""The embedder interface: texts in, L2-normalised float32 vectors out.

An embedder implements one method, :meth:`Embedder.encode`. Everything else (token spans for
the chunker, the token limit) has a working default, so a test fake or a new backend stays a
few lines long.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..errors import UsageError

Kind = Literal["query", "document"]

_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Embedder(ABC):
    """Maps texts to unit vectors. Subclasses set ``name`` and ``dim`` and implement ``encode``."""

    name: str = "embedder"
    dim: int = 0
    #: Longest input the model reads, in tokens, not counting special tokens.
    max_tokens: int = 510
    #: The numeric behaviour (fp32, int8...); same name + precision means the same vectors.
    precision: str = "fp32"
    #: A text's token count is the sum of its lines' (a tokenizer that splits at whitespace):
    #: the chunker may then count a long code block by its lines alone.
    counts_add_up: bool = False

    @property
    def cache_tag(self) -> str:
        """What, besides the model's name, decides the exact vectors: the key of the embedding
        cache. Backends whose vectors changed between versions add the version here."""
        return self.precision

    @abstractmethod
    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 array of L2-normalised rows."""

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens, used by the chunker to respect ``max_tokens``.

        The default counts words and punctuation; real models override it with their tokenizer.
        """
        return [[m.span() for m in _WORDISH.finditer(t)] for t in texts]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(s) for s in self.token_spans(texts)]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Exactly ``len(span)`` of each text's :meth:`token_spans`, never truncated (where
        ``count_tokens`` may stop at the model's limit): the chunker packs by these counts
        and asks for spans only to cut a unit over its budget. Override it only with
        something faster that gives the same numbers."""
        return [len(s) for s in self.token_spans(texts)]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32; zero rows stay zero instead of becoming NaN."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return np.ascontiguousarray(v / norms, dtype=np.float32)


#: Numeric precisions an index can be built with; vectors of different precisions never mix.
PRECISIONS = ("fp32", "int8")
#: Default precision, chosen by measurement (README, "Speed").
DEFAULT_PRECISION = "int8"


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
