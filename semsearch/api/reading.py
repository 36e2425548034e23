"""Reading an index back: documents, chunks with their context, best sentences, copies."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..embed import Embedder
from ..errors import UsageError
from ..ingest.chunk import sentence_spans
from ..search.query_vectors import query_vectors
from ..store.layout import IndexDir, generation_size
from ..store.manifest import FORMAT_VERSION, Manifest, SegmentRef, segment_refs
from ..store.phase2 import read_progress
from ..store.segments import SegmentedStore, read_skipped, read_tombstones
from ..store.tokenize import query_languages, terms
from .hits import ChunkContext, DocumentView, Hit, IndexInfo, Passage, to_passage
from .view import View

#: Neighbouring chunks a caller may ask for on each side of one chunk (every front end's cap).
MAX_CONTEXT = 20


def document(store: SegmentedStore, doc_id: str) -> DocumentView:
    """A whole document, its text rebuilt from the chunks (never read from disk, so no
    parameter can make this read a file outside the index)."""
    found = store.document(str(doc_id))
    if found is None:
        raise UsageError(f"no document {str(doc_id)[:200]!r} in the index")
    d, meta = found
    text = store.document_text(d.doc_id)
    return DocumentView(d.doc_id, d.source, d.title, d.kind, text, d.n_chunks, meta)


def chunk(store: SegmentedStore, chunk_id: int, context: int) -> ChunkContext:
    """A chunk by id with up to ``context`` chunks of its document on each side."""
    if isinstance(chunk_id, bool) or not isinstance(chunk_id, int):
        raise UsageError(f"chunk id must be an integer, got {chunk_id!r:.40}")
    if isinstance(context, bool) or not isinstance(context, int):
        raise UsageError(f"context must be an integer, got {context!r:.40}")
    if not 0 <= context <= MAX_CONTEXT:
        raise UsageError(f"context must be from 0 to {MAX_CONTEXT}, got {context}")
    rec = store.chunk_by_id(chunk_id)
    if rec is None:
        raise UsageError(f"no chunk {chunk_id} in the index")
    around = store.document_records(
        rec.doc_id, max(rec.ordinal - context, 0), rec.ordinal + context
    )
    before = tuple(to_passage(r) for r in around if r.ordinal < rec.ordinal)
    after = tuple(to_passage(r) for r in around if r.ordinal > rec.ordinal)
    return ChunkContext(to_passage(rec), before, after)


def passages(store: SegmentedStore, doc_id: str) -> tuple[Passage, ...]:
    """A document's chunks in order, each with its lines, page and section."""
    found = tuple(to_passage(r) for r in store.document_records(str(doc_id)))
    if not found:
        raise UsageError(f"no document {str(doc_id)[:200]!r} in the index")
    return found


def best_sentences(embedder: Embedder, query: str, hits: Sequence[Hit]) -> list[tuple[int, int]]:
    """For each hit, the span of its sentence closest to ``query``.

    The sentences sharing the most of the query's keyword terms compete, by their vectors'
    similarity to the query's; when none shares a term, all do. A sentence that alone shares
    the most needs no model run, nor does a one-sentence hit; each distinct competing text
    is embedded once (a text's vector does not depend on its batch), and the query's vector
    is the one its search cached. On 300 SciFact queries (top 5 hits) this picks the
    sentence embedding all of them picks 78% of the time, embedding a fifth as many
    (docs/front-door.md)."""
    spans = [sentence_spans(h.text) or [(0, len(h.text))] for h in hits]
    wanted = _query_terms(query)
    competing = [_sharing_most(h.text, sp, wanted) for h, sp in zip(hits, spans, strict=True)]
    rows: dict[str, int] = {}
    for h, sp in zip(hits, competing, strict=True):
        if len(sp) > 1:
            for a, b in sp:
                rows.setdefault(h.text[a:b], len(rows))
    if not rows:
        return [sp[0] for sp in competing]
    qvec = query_vectors(embedder, [query])[0]  # the search's own, from its cache
    scores = embedder.encode(list(rows)) @ qvec
    return [
        sp[int(np.argmax([scores[rows[h.text[a:b]]] for a, b in sp]))] if len(sp) > 1 else sp[0]
        for h, sp in zip(hits, competing, strict=True)
    ]


def _query_terms(query: str) -> frozenset[str]:
    """The query's keyword terms, stemmed in each language it may be in (a sentence's own
    language is detected when its terms are made)."""
    return frozenset(t for lang in query_languages(query) for t in terms(query, language=lang))


def _sharing_most(
    text: str, spans: list[tuple[int, int]], wanted: frozenset[str]
) -> list[tuple[int, int]]:
    """The sentences of ``text`` that share the most distinct terms with ``wanted`` (in
    order), or all of them when none shares one."""
    if len(spans) == 1 or not wanted:
        return spans
    shared = [len(wanted.intersection(terms(text[a:b]))) for a, b in spans]
    most = max(shared)
    return [s for s, n in zip(spans, shared, strict=True) if n == most] if most else spans


def copy_generation(view: View, target: IndexDir) -> Path:
    """Publish a copy of an open generation (its segments and tombstones) into another index
    directory, atomically: the copied segments are named only by the last step, the swap."""
    m = view.manifest
    with target.lock():
        target.cleanup()
        refs = segment_refs(view.gen, m)
        renamed: dict[str, SegmentRef] = {}
        tmp: Path | None = None
        try:
            for ref in refs:
                tmp = target.new_tmp()
                for name in ref.files:
                    shutil.copyfile(view.gen.parent / ref.name / name, tmp / name)
                sealed = target.add_segment(tmp, replace(m, format_version=FORMAT_VERSION))
                renamed[ref.name] = sealed._replace(documents=ref.documents, chunks=ref.chunks)
                tmp = None
            tombstones = {renamed[k].name: v for k, v in read_tombstones(view.gen, m).items()}
            tmp = target.new_tmp()  # the copy's own generation only lists the segments
            skipped = tuple(read_skipped(view.gen, m).values())
            return target.publish(
                tmp, replace(m, format_version=FORMAT_VERSION), list(renamed.values()), tombstones,
                skipped=skipped,
            )  # fmt: skip
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise


def describe(view: View, path: Path | None) -> IndexInfo:
    """An open generation's manifest and files, as :class:`IndexInfo`."""
    return describe_generation(view.gen, view.manifest, view.index.backend, path)


def describe_generation(gen: Path, m: Manifest, backend: str, path: Path | None) -> IndexInfo:
    """A generation's manifest and files, as :class:`IndexInfo` (no model, no vectors)."""
    return IndexInfo(
        path=str(path.resolve()) if path else None,
        generation=gen.name,
        documents=m.documents,
        chunks=m.chunks,
        model=m.model,
        precision=m.precision,
        dim=m.dim,
        backend=backend,
        index_type=m.index_type,
        chunk_tokens=m.chunk_tokens,
        overlap=m.overlap,
        size_bytes=generation_size(gen, m),
        recall_at_10=m.recall_at_10,
        roots=tuple(m.roots),
        phase=m.phase,
        pending_model=m.upgrade["model"] if m.upgrade else None,
        phase2=read_progress(gen.parent) if m.upgrade else None,
    )
