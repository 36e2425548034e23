"""Optional second stage: a local cross-encoder re-scores the first stage's best chunks.

A cross-encoder reads query and passage together, which ranks far better than comparing
two vectors (on BEIR a MiniLM cross-encoder over BM25's top 100 lifts the average nDCG@10
from 0.438 to 0.532) but costs one transformer pass per candidate. No such weights ship
with semsearch and nothing is downloaded, so it is never the default: the caller names a
local sentence-transformers ``CrossEncoder`` directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError, UsageError
from ..util import first_line

#: Candidates the cross-encoder re-scores per query (the first stage's best chunks).
RERANK_DEPTH = 100
BATCH = 32


@dataclass(frozen=True)
class Reranker:
    """A loaded cross-encoder and the directory it came from."""

    path: Path
    model: Any

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Relevance of each passage to ``query`` (higher is better), one float each."""
        if not passages:
            return np.zeros(0, np.float32)
        raw = self.model.predict(
            [(query, p) for p in passages],
            batch_size=BATCH,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        out = np.asarray(raw, dtype=np.float32)
        # A model with several labels: the last one is "relevant" by convention.
        return out[:, -1] if out.ndim == 2 else out


def load_reranker(path: str | os.PathLike[str]) -> Reranker:
    """Open a local CrossEncoder directory (cached per resolved path); never downloads."""
    where = Path(path).expanduser()
    if not where.is_dir():
        raise UsageError(f"reranker {where}: not a directory (a local CrossEncoder model)")
    if not (where / "config.json").is_file():
        raise ModelError(f"cannot load reranker {where}: no config.json (not a model directory)")
    return _load(where.resolve())


@lru_cache(maxsize=2)
def _load(where: Path) -> Reranker:
    import logging

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise MissingDependencyError(
            "sentence-transformers (needed for reranking)", package="sentence-transformers"
        ) from None
    try:
        model = CrossEncoder(str(where), device="cpu", local_files_only=True)
    except Exception as exc:  # any loader failure becomes one line naming the directory
        raise ModelError(f"cannot load reranker {where}: {first_line(exc)}") from None
    return Reranker(where, model)


def rerank_order(
    reranker: Reranker, query: str, passages: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``passages`` best first by the cross-encoder (ties keep the first
    stage's order), and each position's cross-encoder score."""
    s = reranker.scores(query, passages)
    pos = np.lexsort((np.arange(len(s)), -s))
    return pos, s[pos]
