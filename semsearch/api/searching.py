"""Running a search on an open generation: the queries checked, retrieval, hits, and an
optional cross-encoder pass. :class:`~semsearch.api.index.SemanticIndex` holds the view
and calls :func:`search_view`; every front end reaches it through ``search_with``."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..embed import Embedder
from ..errors import IndexFormatError, UsageError
from ..search import heap
from ..search.request import MAX_K, SearchOptions
from ..search.rerank import RERANK_DEPTH, Reranker, load_reranker, rerank_order
from ..search.retrieve import retrieve
from ..util import check_text
from .hits import Hit
from .ranked import ranked_hits
from .view import View

log = logging.getLogger("semsearch")


@dataclass
class LongQueryWarning:
    """Says once per index handle that a query is past the model's input, instead of
    cutting it silently on every search."""

    warned: bool = False

    def check(self, embedder: Embedder, queries: Sequence[str]) -> None:
        if self.warned or max(embedder.count_tokens(queries)) <= embedder.max_tokens:
            return
        self.warned = True
        log.warning(
            "a query is longer than the model's %d-token input; only its start is used",
            embedder.max_tokens,
        )


def search_view(
    view: View | None,
    queries: Sequence[str],
    opts: SearchOptions,
    *,
    root: Path,
    long_queries: LongQueryWarning,
    rerank: str | os.PathLike[str] | Reranker | None = None,
) -> list[list[Hit]]:
    """Best hits for each query on ``view`` (None: nothing indexed yet), the index at
    ``root``; ``rerank`` re-scores the best ``max(k, RERANK_DEPTH)`` with a cross-encoder."""
    if isinstance(queries, str):
        raise UsageError("a batch search takes a list of queries; use search() for one")
    if rerank is not None:
        reranker = rerank if isinstance(rerank, Reranker) else load_reranker(rerank)
        deep = replace(opts, k=max(opts.k, RERANK_DEPTH))
        first = search_view(view, queries, deep, root=root, long_queries=long_queries)
        pairs = zip(queries, first, strict=True)
        return [_reranked(reranker, q, hits, opts.k) for q, hits in pairs]
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise UsageError("query is empty")
        check_text(q, "the query")
    if not queries:
        return []
    if view is None or view.manifest.chunks == 0:
        return [[] for _ in queries]
    long_queries.check(view.embedder, queries)
    heap.searched()  # at the process's second search: keep the temporaries' pages
    # Folding copies leaves fewer hits: rank twice as many to fill k (diverse needs not, its
    # MMR already keeps near-duplicates apart).
    deep_k = opts.k * 2 if opts.collapse and not opts.diverse else opts.k
    dense_model = None if opts.mode == "keyword" else view.manifest.model
    try:
        ranked = retrieve(
            queries, replace(opts, k=min(deep_k, MAX_K)), embedder=view.embedder,
            index=view.index, store=view.store, vectors=view.vectors,
        )  # fmt: skip
    except sqlite3.DatabaseError as exc:  # a damaged page of a large, unchecked database
        raise IndexFormatError(
            f"index at {root} is damaged ({exc}); check it with semsearch info --verify"
        ) from None
    return ranked_hits(ranked, view.store, opts, dense_model, where=root)


def _reranked(reranker: Reranker, query: str, hits: list[Hit], k: int) -> list[Hit]:
    """``hits`` re-ordered by the cross-encoder, its score as each hit's, the best ``k``."""
    pos, scores = rerank_order(reranker, query, [h.text for h in hits])
    return [replace(hits[p], score=float(s)) for p, s in zip(pos[:k], scores[:k], strict=True)]
