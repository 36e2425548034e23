"""Keyword queries: user text to index terms, with a fuzzy fallback for misspelled words.

A query term the index has never seen is most often a typo. It is replaced by the indexed
terms within one edit (two for long words) that share its first letter, most frequent
first, so "econmic" still finds "economic" in keyword and hybrid mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..index.base import first_positions
from ..store.bm25 import Scored
from ..store.postings import CHUNK, DOC
from ..store.segmented_keyword import SegmentedKeyword as KeywordIndex
from ..store.tokenize import is_cjk, query_languages, terms
from ..util import unique_sorted
from . import feedback as fb

#: Matching chunks taken per document among the best documents (a long document's best).
DOC_CHUNK_FACTOR = 4
#: Weight of a chunk's own BM25 beside its document's in the keyword evidence.
CHUNK_WEIGHT = 0.25
#: Replacements kept for one unknown term.
FUZZY_CHOICES = 2
#: Shortest term corrected (shorter ones have too many neighbours to guess from).
FUZZY_MIN_LENGTH = 4
#: Candidates aligned one at a time (each step of the table at once costs a NumPy call).
SCALAR_ALIGNMENTS = 4
#: Scores sampled per one kept when bounding the best ``k`` of many (:func:`_contenders`),
#: the sample's stride below which all are partitioned, and how many times ``k`` the bound
#: is expected to keep (a shortfall, far in the tail, falls back to all of them).
SAMPLE_PER_KEPT, MIN_SAMPLE_STEP, SAMPLE_MARGIN = 4, 4, 3


def query_terms(kw: KeywordIndex, text: str, *, fuzzy: bool = True) -> list[str]:
    """The index terms of ``text`` (repeats kept: they weigh in BM25), unknown ones
    replaced by their nearest indexed spellings when ``fuzzy``."""
    found = _analysed(kw, text)
    if not fuzzy or not found:
        return found
    known = kw.document_frequencies(found)
    out: list[str] = []
    fixes: dict[str, list[str]] = {}
    for t in found:
        if t in known or len(t) < FUZZY_MIN_LENGTH or is_cjk(t):
            out.append(t)
            continue
        if t not in fixes:
            fixes[t] = nearest_terms(kw, t)
        out.extend(fixes[t] or [t])
    return out


def near_range(term: str) -> tuple[str, int, int]:
    """What :meth:`KeywordIndex.near` is asked for ``term``'s corrections: its first letter
    and the lengths within its edit budget."""
    budget = 1 if len(term) < 8 else 2
    return term[0], len(term) - budget, len(term) + budget


def _analysed(kw: KeywordIndex, text: str) -> list[str]:
    """The query's terms in its own language; when it shows none (no function word), in the
    language whose analysis the index knows best (most terms found; ties to the first
    language, English)."""
    options: list[list[str]] = []
    for lang in query_languages(text):
        found = terms(text, language=lang)
        if found not in options:
            options.append(found)
    if len(options) == 1:
        return options[0]
    # One lookup for every reading's terms (a sharded index answers it in one round).
    known = kw.document_frequencies({t for found in options for t in found})
    return max(options, key=lambda found: len(set(found) & known.keys()))


def nearest_terms(kw: KeywordIndex, term: str) -> list[str]:
    """Indexed terms within the edit budget of ``term``: closest, then most frequent."""
    budget = 1 if len(term) < 8 else 2
    cands = kw.near(*near_range(term))
    found = edit_distances(term, cands, budget)
    close = {c: int(d) for c, d in zip(cands, found.tolist(), strict=True) if d <= budget}
    df = kw.document_frequencies(close)  # only for the few within the budget
    scored = sorted((d, -df[c], c) for c, d in close.items() if c in df)
    return [c for _, _, c in scored[:FUZZY_CHOICES]]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours),
    or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: Sequence[int] = ()
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def edit_distances(a: str, cands: Sequence[str], limit: int) -> np.ndarray:
    """:func:`edit_distance` from ``a`` to every candidate at once (NumPy over the
    candidates, one step per pair of positions): hundreds of candidates in a millisecond
    or two, where the scalar version takes a hundred. Values above ``limit`` are not exact.
    Only candidates :func:`_close_bags` keeps are aligned (a 21-letter identifier against
    170 candidates took 31 ms)."""
    out = np.full(len(cands), limit + 1, np.int64)
    keep = np.flatnonzero(_close_bags(a, cands, limit)).tolist()
    if len(keep) > SCALAR_ALIGNMENTS:
        out[keep] = _aligned(a, [cands[i] for i in keep], limit)
    else:
        for i in keep:
            out[i] = edit_distance(a, cands[i], limit)
    return out


def _close_bags(a: str, cands: Sequence[str], limit: int) -> np.ndarray:
    """Candidates that may lie within ``limit`` edits of ``a``: an insertion or deletion
    changes one character count by one, a substitution two counts, a swap none, so a
    candidate whose counts differ from ``a``'s by more than ``2 * limit`` in all is
    farther."""
    if not cands:
        return np.zeros(0, bool)
    alphabet: dict[str, int] = {}
    codes = [alphabet.setdefault(ch, len(alphabet)) for c in cands for ch in c]
    mine = [alphabet.setdefault(ch, len(alphabet)) for ch in a]
    size = len(alphabet)
    lens = np.fromiter((len(c) for c in cands), np.int64, len(cands))
    owner = np.repeat(np.arange(len(cands), dtype=np.int64), lens)
    flat = owner * size + np.asarray(codes, np.int64)
    counts = np.bincount(flat, minlength=len(cands) * size).reshape(len(cands), size)
    wanted = np.bincount(np.asarray(mine, np.int64), minlength=size)
    return np.abs(counts - wanted).sum(axis=1) <= 2 * limit


def _aligned(a: str, cands: Sequence[str], limit: int) -> np.ndarray:
    """The optimal-string-alignment table of :func:`edit_distance`, for every candidate
    at once."""
    if not cands:
        return np.zeros(0, np.int64)
    lens = np.fromiter((len(c) for c in cands), np.int64, len(cands))
    width = int(lens.max())
    codes = np.full((len(cands), width), -1, np.int64)
    for row, c in enumerate(cands):
        codes[row, : len(c)] = [ord(ch) for ch in c]
    mine = [ord(ch) for ch in a]
    prev2 = np.zeros((len(cands), width + 1), np.int64)
    prev = np.broadcast_to(np.arange(width + 1), (len(cands), width + 1)).copy()
    for i in range(1, len(mine) + 1):
        cur = np.empty_like(prev)
        cur[:, 0] = i
        for j in range(1, width + 1):
            cost = codes[:, j - 1] != mine[i - 1]
            v = np.minimum(np.minimum(prev[:, j], cur[:, j - 1]) + 1, prev[:, j - 1] + cost)
            if i > 1 and j > 1:
                swap = (codes[:, j - 2] == mine[i - 1]) & (codes[:, j - 1] == mine[i - 2])
                v = np.where(swap, np.minimum(v, prev2[:, j - 2] + 1), v)
            cur[:, j] = v
        prev2, prev = prev, cur
        if prev.min() > limit:
            return np.full(len(cands), limit + 1, np.int64)
    return prev[np.arange(len(cands)), lens]


@dataclass(frozen=True)
class KeywordHits:
    """One query's keyword candidates (global chunk rows), every chunk and document it
    matches with their BM25, the best documents, and the full-match BM25 that turns scores
    into fractions (:func:`semsearch.search.fuse.keyword_part`)."""

    rows: np.ndarray
    chunks: Scored
    docs: Scored
    top_docs: np.ndarray  # sorted document keys
    #: What turns evidence into a fraction (:func:`semsearch.search.fuse.keyword_part`):
    #: a full match's document-level BM25 (hybrid's part, saturating at 1: among strong
    #: keyword matches the dense part decides), and ``full_evidence`` (keyword mode's
    #: score, which never saturates, so it tells strong matches apart).
    full_match: float
    terms: tuple[str, ...]
    full_evidence: float = 0.0

    def evidence(self, rows: np.ndarray, docs: np.ndarray, *, every_doc: bool = True) -> np.ndarray:
        """Keyword evidence of each chunk: its document's BM25 and its own, weighted
        ``1 - CHUNK_WEIGHT : CHUNK_WEIGHT`` (the document ranks, the chunk picks the
        passage). 0 where no query term matched. Unless ``every_doc``, only the best
        documents lend their BM25 (keyword mode)."""
        doc = _lookup(self.docs, docs)
        if not every_doc:
            doc = np.where(_member(docs, self.top_docs), doc, 0.0)
        own = _lookup(self.chunks, rows)
        return (1.0 - CHUNK_WEIGHT) * doc + CHUNK_WEIGHT * own


def _lookup(scored: Scored, ids: np.ndarray) -> np.ndarray:
    """Scores of ``ids`` (0 where absent)."""
    ids = np.asarray(ids, np.int64)
    if not len(scored.ids) or not len(ids):
        return np.zeros(len(ids), np.float64)
    at = np.minimum(np.searchsorted(scored.ids, ids), len(scored.ids) - 1)
    return np.where(scored.ids[at] == ids, scored.scores[at], 0.0)


def _best(ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by score, ties to the smaller id: the vector side's
    :func:`first_positions`, over the contenders a sampled bound leaves of many."""
    pos = _contenders(scores, k) if len(ids) > k else np.arange(len(ids))
    return pos[first_positions(scores[pos][None], ids[pos][None], k)[0]]


def _kth_largest(scores: np.ndarray, k: int) -> float:
    return float(-np.partition(-scores, k - 1)[k - 1])


def _contenders(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions (ascending) of a part of ``scores`` that holds its ``k`` largest and every
    score equal to the kth largest: the scores at or above a bound read from a strided
    sample, when at least ``k`` are (else all of them). A partition costs ~10 ns a score
    on this machine, the sample's, the comparison and the kept ones' far less (docs/segments.md,
    "Keyword latency")."""
    n = len(scores)
    step = n // (SAMPLE_PER_KEPT * k) if k > 0 else 0
    if step < MIN_SAMPLE_STEP:
        return np.arange(n)
    sample = scores[::step]
    above = min(len(sample), -(-SAMPLE_MARGIN * k // step))  # ~SAMPLE_MARGIN * k expected
    bound = np.partition(sample, len(sample) - above)[len(sample) - above]
    pos = np.flatnonzero(scores >= bound)
    return pos if len(pos) >= k else np.arange(n)


def keyword_hits(
    kw: KeywordIndex,
    text: str,
    depth: int,
    subset: np.ndarray | None = None,
    *,
    fuzzy: bool = True,
    feedback: fb.Feedback | None = fb.DEFAULT,
) -> KeywordHits:
    """The best ``depth`` chunks by BM25, plus the best ``DOC_CHUNK_FACTOR * depth``
    matching chunks of the best ``depth`` documents by document-level BM25 (a document can
    match as a whole where no single chunk holds all the query's words). ``subset``: the
    only rows allowed (sorted), and documents only through them. With ``feedback``, the
    query is first expanded from its best documents (:mod:`.feedback`)."""
    qt = query_terms(kw, text, fuzzy=fuzzy)
    allowed = kw.doc_of(subset) if subset is not None else None
    weighted: Sequence[str] | dict[str, float] = qt
    docs = kw.score(qt, DOC)
    doc_keys, doc_scores = _allowed(docs, allowed)
    if feedback is not None and len(doc_keys):
        weighted = expand(kw, qt, doc_keys, doc_scores, feedback)
        docs = kw.score(weighted, DOC)
        doc_keys, doc_scores = _allowed(docs, allowed)
    chunks = kw.score(weighted, CHUNK)
    rows, scores = chunks.ids, chunks.scores
    if subset is not None:
        keep = np.isin(rows, subset)
        rows, scores = rows[keep], scores[keep]
    best = rows[_best(rows, scores, depth)] if depth > 0 else rows[:0]
    top = _top_documents(kw, doc_keys, doc_scores, depth)
    if len(top):
        inside = _member(kw.doc_of(rows), top)
        more = rows[inside][_best(rows[inside], scores[inside], DOC_CHUNK_FACTOR * depth)]
        best = unique_sorted(np.concatenate([best, more]))
    else:
        best = unique_sorted(best)
    full = kw.full_match(weighted)
    return KeywordHits(
        best, chunks, docs, np.sort(top), full, tuple(qt), full_evidence(kw, weighted, full)
    )


def _member(keys: np.ndarray, few: np.ndarray) -> np.ndarray:
    """``np.isin(keys, few)`` for many non-negative ``keys`` and a few: one mask lookup
    each (isin sorts both, 10 ms for the 150,000 matching chunks of a query at 1M)."""
    if not len(keys) or not len(few):
        return np.zeros(len(keys), bool)
    mark = np.zeros(int(few.max()) + 2, bool)
    mark[few] = True
    return mark[np.minimum(keys, len(mark) - 1)]


def _allowed(docs: Scored, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Keys and BM25 of the matched documents (only ``allowed`` ones, if given)."""
    if allowed is None:
        return docs.ids, docs.scores
    keep = np.isin(docs.ids, allowed)
    return docs.ids[keep], docs.scores[keep]


def expand(
    kw: KeywordIndex,
    terms: Sequence[str],
    doc_keys: np.ndarray,
    doc_scores: np.ndarray,
    setting: fb.Feedback,
) -> dict[str, float]:
    """The query's terms with weights, expanded from its best ``setting.docs`` documents."""
    top = _best(doc_keys, doc_scores, setting.docs)
    keys = doc_keys[top].tolist()
    found = kw.document_terms(keys, fb.DOC_CHARS)
    words = [found.get(int(k), []) for k in keys]
    if setting.method == "rm3":
        return fb.rm3(terms, words, doc_scores[top].tolist(), setting.terms, setting.original)
    df = kw.document_frequencies({t for w in words for t in w})
    return fb.bo1(terms, words, df, kw.n_docs, setting.terms, setting.original)


def full_evidence(
    kw: KeywordIndex, query_terms: Sequence[str] | dict[str, float], doc_full: float
) -> float:
    """The evidence of a full match at both levels: each level's idf sum, weighted as
    :meth:`KeywordHits.evidence` weighs them. Chunk-level idf is larger (more, smaller
    rows), so a fraction of the document level's alone passes 1 on a chunk's own BM25
    (every hit of a keyword query then showed 1.000); this one stays below 1."""
    own = kw.full_match(query_terms, chunks=True)
    return (1.0 - CHUNK_WEIGHT) * doc_full + CHUNK_WEIGHT * own


def _top_documents(kw: KeywordIndex, keys: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Keys of the best ``k`` documents (as a set), equal scores at the cut decided by
    document id, as one segment would: ids are read only for such a tie."""
    if k <= 0 or not len(keys):
        return keys[:0]
    if len(keys) <= k:
        return keys
    pos = _contenders(scores, k)
    keys, scores = keys[pos], scores[pos]
    kth = _kth_largest(scores, k)
    above, tied = keys[scores > kth], keys[scores == kth]
    if len(above) + len(tied) <= k:
        return np.concatenate([above, tied])
    names = kw.doc_ids(tied.tolist())
    chosen = sorted(tied.tolist(), key=lambda key: names[int(key)])[: k - len(above)]
    return np.concatenate([above, np.asarray(chosen, np.int64)])
