"""The keyword query path against what it was before its latency cuts (stop 33), kept here as
the oracle: the same candidates, chunk and document scores (to the last bit), best documents
and full-match figures, and the same hits through the API, on indexes of one-chunk documents,
of several-chunk documents and of many segments with tombstones; each cut's part against the
old one on odd sizes, ties and adversarial orders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pytest

import semsearch.indexing.merge as merge
from semsearch import SemanticIndex
from semsearch.search import feedback as fb
from semsearch.search import keyword as kwmod
from semsearch.search.keyword import KeywordHits, keyword_hits
from semsearch.store.bm25 import Scored, bm25, idf, summed, term_weights
from semsearch.store.postings import CHUNK, DOC, SegmentPostings
from semsearch.store.postings_v3 import Postings
from semsearch.store.segmented_keyword import SegmentedKeyword
from semsearch.store.tokenize import query_languages, terms

from .conftest import FakeEmbedder

# --- the oracle: the code as it was (e6796ab), word for word ------------------------------


def _old_best(ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by score, ties to the smaller id."""
    if len(ids) > k:
        kth = -np.partition(-scores, k - 1)[k - 1]
        pos = np.flatnonzero(scores >= kth)
    else:
        pos = np.arange(len(ids))
    return pos[np.lexsort((ids[pos], -scores[pos]))][:k]


def _old_top_documents(kw, keys: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Keys of the best ``k`` documents (as a set), equal scores at the cut decided by
    document id, as one segment would: ids are read only for such a tie."""
    if k <= 0 or not len(keys):
        return keys[:0]
    if len(keys) <= k:
        return keys
    kth = -np.partition(-scores, k - 1)[k - 1]
    above, tied = keys[scores > kth], keys[scores == kth]
    if len(above) + len(tied) <= k:
        return np.concatenate([above, tied])
    names = kw.doc_ids(tied.tolist())
    chosen = sorted(tied.tolist(), key=lambda key: names[int(key)])[: k - len(above)]
    return np.concatenate([above, np.asarray(chosen, np.int64)])


def _old_analysed(kw: SegmentedKeyword, text: str) -> list[str]:
    options: list[list[str]] = []
    for lang in query_languages(text):
        found = terms(text, language=lang)
        if found not in options:
            options.append(found)
    if len(options) == 1:
        return options[0]
    known = kw.document_frequencies({t for found in options for t in found})
    return max(options, key=lambda found: len(set(found) & known.keys()))


_EMPTY = np.zeros(0, np.int32)


def _old_get(self: SegmentPostings, level: int, term: str) -> Postings:
    if self._old is not None:
        return self._old.get(level, term)
    if level == CHUNK:
        return self._chunk(term)
    own = self._stored(DOC, term)
    ids, tfs = self._chunk(term)
    if not len(ids):
        return own
    one = self.single[ids]  # type: ignore[index]
    if not one.any():
        return own
    docs, counts = self.row_doc[ids[one]], tfs[one]
    if len(own.ids):
        docs = np.concatenate([docs, own.ids])
        counts = np.concatenate([counts.astype(np.int32), own.tfs.astype(np.int32)])
    if len(docs) > 1 and np.any(docs[1:] < docs[:-1]):
        order = np.argsort(docs, kind="stable")
        docs, counts = docs[order], counts[order]
    return Postings(docs, counts)


def _old_read_postings(self: SegmentedKeyword, level: int, term: str) -> list:  # type: ignore[type-arg]
    out = []
    lives = self._chunk_live if level == CHUNK else self._doc_live
    for i, (p, live) in enumerate(zip(self._parts, lives, strict=True)):
        ids, tfs = p.get(level, term)
        if len(ids):
            keep = live[ids]
            if not keep.all():
                ids, tfs = ids[keep], tfs[keep]
            if len(ids):
                out.append((i, ids, tfs))
    return out


def _old_score(
    self: SegmentedKeyword, query_terms: Sequence[str] | Mapping[str, float], level: int
) -> Scored:
    n = self.n_chunks if level == CHUNK else self.n_docs
    avgdl = self._avgdl[level]
    ids_all, contrib_all = [], []
    for term, times in term_weights(query_terms).items():
        found = self._live_postings(level, term)
        df = sum(len(ids) for _, ids, _ in found)
        if not df:
            continue
        weight = times * idf(n, df)
        for seg, ids, tfs in found:
            p = self._parts[seg]
            lengths = (p.chunk_lengths if level == CHUNK else p.doc_lengths)[ids]
            contrib_all.append(bm25(tfs, lengths, weight, avgdl))
            base = self._store.segments[seg].offset if level == CHUNK else self.doc_base[seg]
            ids_all.append(ids.astype(np.int64) + base)
    return summed(ids_all, contrib_all)


def _old_doc_of(self: SegmentedKeyword, rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.int64)
    out = np.empty(len(rows), np.int64)
    for seg, pos, local in self._store.split(rows):
        i = self._store.segments.index(seg)
        out[pos] = self._parts[i].row_doc[local] + self.doc_base[i]
    return out


def _old_document_frequencies(
    self: SegmentedKeyword, query_terms: Iterable[str], level: int = DOC
) -> dict[str, int]:
    out = {}
    for t in set(query_terms):
        df = sum(len(ids) for _, ids, _ in self._live_postings(level, t))
        if df:
            out[t] = df
    return out


def _old_evidence(
    self: KeywordHits, rows: np.ndarray, docs: np.ndarray, *, every_doc: bool = True
) -> np.ndarray:
    doc = kwmod._lookup(self.docs, docs)
    if not every_doc:
        doc = np.where(np.isin(docs, self.top_docs), doc, 0.0)
    own = kwmod._lookup(self.chunks, rows)
    return (1.0 - kwmod.CHUNK_WEIGHT) * doc + kwmod.CHUNK_WEIGHT * own


def _use_old(mp: pytest.MonkeyPatch) -> None:
    """Swap every cut part for its old version."""
    mp.setattr(kwmod, "_best", _old_best)
    mp.setattr(kwmod, "_top_documents", _old_top_documents)
    mp.setattr(kwmod, "_analysed", _old_analysed)
    mp.setattr(KeywordHits, "evidence", _old_evidence)
    mp.setattr(SegmentPostings, "get", _old_get)
    mp.setattr(SegmentedKeyword, "_read_postings", _old_read_postings)
    mp.setattr(SegmentedKeyword, "score", _old_score)
    mp.setattr(SegmentedKeyword, "doc_of", _old_doc_of)
    mp.setattr(SegmentedKeyword, "document_frequencies", _old_document_frequencies)


# --- the parts against the old ones --------------------------------------------------------


def _scores(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "few":  # many ties, as BM25 of one-term queries over equal lengths gives
        return rng.integers(0, 7, n).astype(np.float64) / 3.0
    if kind == "equal":
        return np.full(n, 1.25)
    s = rng.random(n)
    if kind == "ascending":  # the best last: a strided sample sees the worst first
        return np.sort(s)
    if kind == "descending":
        return np.sort(s)[::-1].copy()
    if kind == "spike":  # the best k packed into one run the stride can step over
        s = rng.random(n) * 0.1
        at = rng.integers(0, max(n - 64, 1))
        s[at : at + 64] = 1.0 + rng.random(min(64, n - at))
        return s
    return s


@pytest.mark.parametrize("kind", ["random", "few", "equal", "ascending", "descending", "spike"])
@pytest.mark.parametrize("n", [1, 7, 199, 2_001, 40_003])
@pytest.mark.parametrize("k", [1, 3, 10, 200, 801])
def test_best_and_top_documents_equal_the_old_ones(kind: str, n: int, k: int) -> None:
    rng = np.random.default_rng(n * 31 + k)
    scores = _scores(kind, n, rng)
    ids = np.sort(rng.choice(n * 3, n, replace=False)).astype(np.int64)
    assert np.array_equal(kwmod._best(ids, scores, k), _old_best(ids, scores, k))
    names = {int(i): f"doc-{rng.integers(0, 10**6):07d}-{int(i)}" for i in ids}

    class Names:
        def doc_ids(self, keys: Iterable[int]) -> dict[int, str]:
            return {int(key): names[int(key)] for key in keys}

    got = kwmod._top_documents(Names(), ids, scores, k)  # type: ignore[arg-type]
    assert np.array_equal(got, _old_top_documents(Names(), ids, scores, k))


@pytest.mark.parametrize("n", [48, 1_000, 40_003])
def test_contenders_hold_every_score_at_or_above_the_kth(n: int) -> None:
    rng = np.random.default_rng(n)
    for kind in ("random", "few", "ascending", "spike"):
        scores = _scores(kind, n, rng)
        for k in (1, 3, 12):
            pos = kwmod._contenders(scores, k)
            kth = np.sort(scores)[::-1][k - 1]
            assert np.array_equal(np.flatnonzero(scores >= kth), pos[scores[pos] >= kth])
            assert np.all(np.diff(pos) > 0)


# --- whole queries against the old path ----------------------------------------------------

WORDS = (
    "harbour lighthouse tide anchor sail rope gull wave reef keel mast dock "
    "häuser straße maison niño parseConfig 北京首都"
).split()
QUERIES = [
    "harbour gull", "keel reef", "wave", "tide tide anchor", "sial", "harbor lighthuose",
    "zzz", "the harbour of the tide", "Häuser Straße", "maison", "der die häuser",
    "parse_config", "北京", "wave wave wave gull", "rope mast dock sail keel",
]  # fmt: skip


NAMES = [
    "one-chunk documents",
    "several-chunk documents",
    "segments with tombstones",
    "one-chunk segments with tombstones",
]


def _texts(n: int, seed: int, length: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # Zipf-like: the first words far more often, so scores tie and lists differ in length.
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(WORDS, size=length, p=p)) + f" item{i % 17}" for i in range(n)]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SemanticIndex]:
    base = tmp_path_factory.mktemp("kworacle")
    out = {}
    one = SemanticIndex(embedder=FakeEmbedder(), path=base / "one", backend="numpy")
    one.add_texts(_texts(301, 1, 9), ids=[f"o{i:03d}" for i in range(301)])
    out["one-chunk documents"] = one
    many = SemanticIndex(
        embedder=FakeEmbedder(), path=base / "several", backend="numpy", chunk_tokens=16
    )
    many.add_texts(_texts(97, 2, 40), ids=[f"s{i}" for i in range(97)])
    out["several-chunk documents"] = many
    mp = pytest.MonkeyPatch()
    mp.setattr(merge, "TIER_FACTOR", 0)  # every write keeps every old segment
    mp.setattr(merge, "MIN_NEW_ROWS", 0)
    try:
        seg = SemanticIndex(
            embedder=FakeEmbedder(), path=base / "segments", backend="numpy", chunk_tokens=16
        )
        texts = _texts(211, 3, 12) + _texts(13, 4, 60)
        ids = [f"m{i}" for i in range(len(texts))]
        start = 0
        for size in [7, 31, 1, 53, 13, 2, 90, 27]:
            seg.add_texts(texts[start : start + size], ids=ids[start : start + size])
            start += size
            seg.delete([ids[start - 2]])
            seg.upsert([texts[start - 5] + " keel"], ids=[ids[start - 5]])
        assert len(seg.live.require().store.segments) > 3
        out["segments with tombstones"] = seg
        short = SemanticIndex(embedder=FakeEmbedder(), path=base / "short", backend="numpy")
        texts = _texts(180, 5, 7)
        for start in range(0, 180, 45):
            short.add_texts(texts[start : start + 45], ids=[f"t{start + i}" for i in range(45)])
            short.delete([f"t{start + 3}", f"t{start + 30}"])
        out["one-chunk segments with tombstones"] = short
    finally:
        mp.undo()
    return out


def test_one_chunk_documents_score_once(indexes: dict[str, SemanticIndex]) -> None:
    same = {n: ix.live.require().store.keyword_index().docs_are_chunks for n, ix in indexes.items()}
    assert same == {
        "one-chunk documents": True, "several-chunk documents": False,
        "segments with tombstones": False, "one-chunk segments with tombstones": True,
    }  # fmt: skip


def _hits(
    kw: SegmentedKeyword,
    query: str,
    depth: int,
    subset: np.ndarray | None,
    feedback: fb.Feedback | None = None,
) -> KeywordHits:
    kw.clear_cache()
    for p in kw._parts:
        p._cache.clear()
    return keyword_hits(kw, query, depth, subset, feedback=feedback)


def _same(a: KeywordHits, b: KeywordHits) -> None:
    assert a.terms == b.terms
    for x, y in [
        (a.rows, b.rows), (a.chunks.ids, b.chunks.ids), (a.chunks.scores, b.chunks.scores),
        (a.docs.ids, b.docs.ids), (a.docs.scores, b.docs.scores), (a.top_docs, b.top_docs),
    ]:  # fmt: skip
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert a.full_match == b.full_match and a.full_evidence == b.full_evidence
    docs = np.arange(-1, int(a.docs.ids.max(initial=0)) + 2)
    rows = np.arange(len(docs))
    for every in (True, False):
        assert np.array_equal(
            a.evidence(rows, docs, every_doc=every), _old_evidence(b, rows, docs, every_doc=every)
        )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("depth", [1, 3, 10])
def test_keyword_hits_equal_the_old_path(
    indexes: dict[str, SemanticIndex], name: str, depth: int
) -> None:
    store = indexes[name].live.require().store
    kw = store.keyword_index()
    every = np.concatenate(
        [
            s.offset + np.arange(len(p.chunk_lengths))
            for s, p in zip(store.segments, kw._parts, strict=True)
        ]
    ).astype(np.int64)
    rng = np.random.default_rng(depth)
    subsets = [None, np.sort(rng.choice(every, len(every) // 3, replace=False))]
    found = 0
    for query in QUERIES:
        for subset in subsets:
            new = _hits(kw, query, depth, subset)
            found += len(new.rows) > 0
            with pytest.MonkeyPatch.context() as mp:
                _use_old(mp)
                old = _hits(kw, query, depth, subset)
                assert np.array_equal(kw.doc_of(new.rows), _old_doc_of(kw, new.rows))
            assert np.array_equal(kw.doc_of(new.rows), _old_doc_of(kw, new.rows))
            _same(new, old)
    assert found >= 2 * len(QUERIES) - 8  # the queries find something (some find nothing)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["rm3", "bo1"])
def test_keyword_hits_with_feedback_equal_the_old_path(
    indexes: dict[str, SemanticIndex], name: str, method: fb.Method
) -> None:
    kw = indexes[name].live.require().store.keyword_index()
    setting = fb.Feedback(method=method, docs=3, terms=4)
    for query in QUERIES[:6]:
        new = _hits(kw, query, 5, None, setting)
        with pytest.MonkeyPatch.context() as mp:
            _use_old(mp)
            old = _hits(kw, query, 5, None, setting)
        _same(new, old)


@pytest.mark.parametrize("name", NAMES)
def test_keyword_search_gives_the_old_hits(indexes: dict[str, SemanticIndex], name: str) -> None:
    ix = indexes[name]
    for query in QUERIES:
        for mode in ("keyword", "hybrid"):
            ix.live.require().store.keyword_index().clear_cache()
            new = ix.search(query, k=7, mode=mode)  # type: ignore[arg-type]
            with pytest.MonkeyPatch.context() as mp:
                _use_old(mp)
                ix.live.require().store.keyword_index().clear_cache()
                old = ix.search(query, k=7, mode=mode)  # type: ignore[arg-type]
            assert [(h.doc_id, h.score, h.text) for h in new] == [
                (h.doc_id, h.score, h.text) for h in old
            ]
