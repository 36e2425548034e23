"""``semsearch eval``: index a BEIR collection once, run its queries in every mode, score them.

A document is scored by its best chunk (documents longer than the chunk budget are split),
and the index is cached by corpus content and settings, so re-running is cheap. Copies of
a passage in several documents are not folded into one hit (the search's ``collapse``):
each document is judged on its own, as BEIR and bm25s's runs rank them (CACM has 404
records in groups of identical texts).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .. import config
from ..api import SemanticIndex
from ..embed import DEFAULT_PRECISION, Embedder, load_embedder
from ..errors import UsageError
from ..indexing import Progress
from ..ingest.chunk import DEFAULT_CHUNK_TOKENS
from ..search import MODES, Mode
from ..search.rerank import RERANK_DEPTH, load_reranker
from ..util import file_digest
from .beir import BeirDoc, BeirQuery, load_beir
from .compare import Paired, paired, read_baseline
from .metrics import evaluate, per_query

#: Chunk hits kept per query before collapsing to documents (enough for Recall@100).
CHUNK_DEPTH = 300
#: Chunks ranked per hit kept: the search ranks twice ``k`` to fill ``k`` hits when it folds
#: copies; the evaluation folds none but ranks as deep, so its candidate lists (and a hybrid
#: query's fusion, which depends on their depth) are those measured before.
RANKED_PER_KEPT = 2
QUERY_BATCH = 64
#: What to do with a hit whose id is the query's own id (BEIR's ``ignore_identical_ids``).
SelfHits = Literal["auto", "drop", "keep"]
SELF_HITS: tuple[str, ...] = ("auto", "drop", "keep")


@dataclass(frozen=True)
class ModeScores:
    mode: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    #: nDCG@10 of each judged query, for paired comparisons (:mod:`.compare`).
    per_query: Mapping[str, float] = field(default_factory=dict)
    #: This mode minus the collection's BM25 baseline, per query, when it ships one.
    vs_baseline: Paired | None = None


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    split: str
    documents: int
    chunks: int
    queries: int
    model: str
    precision: str
    chunk_tokens: int
    index_dir: str
    scoring: str
    results: tuple[ModeScores, ...]
    #: nDCG@10 of the collection's own BM25 baseline (``bm25_baseline.json``), if any.
    baseline_ndcg_at_10: float | None = None
    #: Queries whose own document was removed from their hits (see :func:`self_hit_queries`).
    self_hits_dropped: int = 0


def run_eval(
    dataset: str | os.PathLike[str],
    *,
    modes: Sequence[Mode] = MODES,  # type: ignore[assignment]
    model: str | None = None,
    embedder: Embedder | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    split: str = "test",
    precision: str = DEFAULT_PRECISION,
    progress: Progress | None = None,
    cache: Path | None = None,
    self_hits: SelfHits = "auto",
    rerank: str | os.PathLike[str] | None = None,
) -> EvalReport:
    """Evaluate every mode on a BEIR collection and return the mean metrics.

    ``self_hits``: "drop" removes every hit whose id is the query's id (BEIR's
    evaluator does so for all collections); "auto" removes it only where that document's
    text is the query's text (ArguAna: the query is a corpus argument), because elsewhere
    (MED, CACM, NPL) query and document ids are both small numbers that collide by chance.
    ``rerank``: a local CrossEncoder directory re-scoring each mode's best
    ``RERANK_DEPTH`` chunks (reported as mode "+rerank"; Recall@100 then counts only them).
    """
    if self_hits not in SELF_HITS:
        raise UsageError(f"self-hits must be one of {', '.join(SELF_HITS)}, got {self_hits!r}")
    collection = load_beir(Path(dataset), split)
    reranker = load_reranker(rerank) if rerank is not None else None
    depth = RERANK_DEPTH if reranker is not None else CHUNK_DEPTH
    ranked = depth if reranker is not None else RANKED_PER_KEPT * depth
    baseline = read_baseline(collection.root) if split == "test" else None
    embedder = embedder if embedder is not None else load_embedder(model, precision)
    root = cache if cache is not None else config.load().eval_cache
    index_dir = root / _index_key(collection.corpus_path, embedder, chunk_tokens)
    index = SemanticIndex(embedder=embedder, chunk_tokens=chunk_tokens, path=index_dir)
    docs = list(collection.corpus())
    index.upsert([d.full_text for d in docs], ids=[d.id for d in docs], progress=progress)
    queries = list(collection.queries)
    own = self_hit_queries(queries, docs, self_hits)
    results = []
    for mode in modes:
        run: dict[str, list[tuple[str, float]]] = {}
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start : start + QUERY_BATCH]
            texts = [q.text for q in batch]
            hits = index.search_batch(texts, ranked, mode=mode, collapse=False, rerank=reranker)
            for q, qhits in zip(batch, hits, strict=True):
                best: dict[str, float] = {}
                for h in qhits:  # best first: the first chunk seen is the document's score
                    best.setdefault(h.doc_id, h.score)
                if q.id in own:
                    best.pop(q.id, None)
                run[q.id] = list(best.items())[:100]
        ev = evaluate(collection.qrels, run, ks=(10, 100))
        each = {q: e.at(10).ndcg for q, e in per_query(collection.qrels, run, ks=(10,)).items()}
        results.append(
            ModeScores(
                mode + ("+rerank" if reranker else ""), ev.at(10).ndcg, ev.at(10).recall,
                ev.at(100).recall, ev.at(10).mrr, each,
                paired(each, baseline.per_query) if baseline else None,
            )
        )  # fmt: skip
    info = index.info()
    return EvalReport(
        dataset=str(collection.root),
        split=split,
        documents=info.documents,
        chunks=info.chunks,
        queries=len(queries),
        model=info.model,
        precision=info.precision,
        chunk_tokens=chunk_tokens,
        index_dir=str(index_dir),
        scoring="a document's score is its best chunk's score",
        results=tuple(results),
        baseline_ndcg_at_10=baseline.ndcg_at_10 if baseline else None,
        self_hits_dropped=len(own),
    )


def self_hit_queries(
    queries: Sequence[BeirQuery], docs: Sequence[BeirDoc], self_hits: SelfHits
) -> frozenset[str]:
    """Ids of the queries whose hit with the same id is dropped (see :func:`run_eval`)."""
    if self_hits == "keep":
        return frozenset()
    ids = {q.id for q in queries}
    if self_hits == "drop":
        return frozenset(ids)
    text = {q.id: " ".join(q.text.split()) for q in queries}
    return frozenset(
        d.id
        for d in docs
        if d.id in ids and text[d.id] in (" ".join(d.text.split()), " ".join(d.full_text.split()))
    )


def _index_key(corpus: Path, embedder: Embedder, chunk_tokens: int) -> str:
    """One cached index per corpus content and settings."""
    key = f"{file_digest(corpus)}|{embedder.name}|{embedder.cache_tag}|{chunk_tokens}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]
