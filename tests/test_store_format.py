"""Segment format 4 (compact postings, no stored chunk terms, binary hashes): what it stores
equals what a brute-force count of the analysed texts gives, and an index written by the code
of format 3 (``tests/fixtures/index-v3``, made by ``make_index_v3.py`` at faf68ad) answers as
that code did, before and after the write that rewrites it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.store import IndexDir
from semsearch.store import inverted as inverted_mod
from semsearch.store.chunkstore import ChunkStore
from semsearch.store.postings import CHUNK, DOC, decode, decode_array, encode_array
from semsearch.store.records import ChunkRow, StoredDocument
from semsearch.store.segments import SegmentedStore
from semsearch.store.tokenize import terms

from .conftest import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "index-v3.json").read_text(encoding="utf-8"))
WORDS = "harbour gull keel reef wave tide anchor sial mast rope deck sail".split()


# --- the encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gaps",
    [[0], [255], [256], [65535], [65536], [1, 254, 1], [3, 300, 2], [7, 70_000, 1], [2**31 - 9]],
)
@pytest.mark.parametrize("tf", [1, 255, 256, 65_536])
def test_lists_round_trip_at_every_width_boundary(gaps: list[int], tf: int) -> None:
    ids = np.cumsum(gaps).astype(np.int64)
    tfs = np.full(len(ids), tf, np.int64)
    tfs[0] = 1
    rows = list(inverted_mod._lists(CHUNK, ["t"], np.zeros(len(ids), np.int64), ids, tfs))
    assert len(rows) == 1
    level, term, n, id_blob, tf_blob = rows[0]
    assert (level, term, n) == (CHUNK, "t", len(ids))
    got = decode(n, id_blob, tf_blob)
    assert got.ids.tolist() == ids.tolist() and got.tfs.tolist() == tfs.tolist()
    widest = max(gaps)
    assert len(id_blob) == n * (1 if widest < 256 else 2 if widest < 65536 else 4)


def test_many_lists_encode_each_in_its_own_width() -> None:
    rng = np.random.default_rng(5)
    terms_, ids, tfs, want = [], [], [], {}
    for t in range(40):
        n = int(rng.integers(1, 60))
        top = int(rng.choice([200, 60_000, 3_000_000]))
        rows = np.unique(rng.integers(0, top, n))
        f = rng.integers(1, int(rng.choice([3, 300, 70_000])), len(rows))
        terms_.append(np.full(len(rows), t))
        ids.append(rows)
        tfs.append(f)
        want[f"t{t:02d}"] = (rows.tolist(), f.tolist())
    names = [f"t{t:02d}" for t in range(40)]
    got = {
        term: decode(n, a, b)
        for _, term, n, a, b in inverted_mod._lists(
            DOC, names, np.concatenate(terms_), np.concatenate(ids), np.concatenate(tfs)
        )
    }
    assert {t: (p.ids.tolist(), p.tfs.tolist()) for t, p in got.items()} == want


@pytest.mark.parametrize("top", [0, 255, 256, 65_535, 65_536, 2**31 - 1])
def test_unit_arrays_round_trip(top: int) -> None:
    values = np.array([0, top, 3 if top > 3 else 0], np.int64)
    assert decode_array(encode_array(values)).tolist() == values.tolist()


# --- what a segment stores, against a brute-force count -------------------------------------


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 9)))) for _ in range(n)]


def _write(path: Path, docs: dict[str, list[str]], start_row: int = 0) -> None:
    store = ChunkStore.create(path)
    row, chunk_id = start_row, 0
    for doc_id, chunks in docs.items():
        rows = []
        for ordinal, text in enumerate(chunks):
            rows.append(ChunkRow(row, chunk_id, ordinal, 0, len(text), 1, 1, None, "", text))
            row, chunk_id = row + 1, chunk_id + 1
        digest = "ab" * 32 if len(chunks) % 2 else "not-hex"
        store.add_document(
            StoredDocument(doc_id, doc_id, digest, len(rows), "", "text", None, None, None),
            rows,
            None,
        )
    store.commit()
    store.close()


def _brute(docs: dict[str, list[str]], doc_chunks: int) -> tuple[dict, dict]:
    """Expected chunk and document postings: term -> [(row or doc number, tf)]."""
    chunk: dict[str, list[tuple[int, int]]] = {}
    doc: dict[str, list[tuple[int, int]]] = {}
    row = 0
    for number, chunks in enumerate(docs.values(), start=1):
        total: Counter[str] = Counter()
        for ordinal, text in enumerate(chunks):
            words = terms(text)
            for t, n in sorted(Counter(words).items()):
                chunk.setdefault(t, []).append((row, n))
            if ordinal < doc_chunks:
                total.update(words)
            row += 1
        for t, n in sorted(total.items()):
            doc.setdefault(t, []).append((number, n))
    return chunk, doc


def _stored(path: Path, vocab: set[str]) -> tuple[dict, dict]:
    store = ChunkStore.open_readonly(path)
    p = store.postings()
    out: tuple[dict, dict] = ({}, {})
    for level in (CHUNK, DOC):
        for t in sorted(vocab):
            got = p.get(level, t)
            if len(got.ids):
                out[level][t] = list(zip(got.ids.tolist(), got.tfs.tolist(), strict=True))
    store.close()
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_postings_equal_a_brute_force_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Documents of one chunk (read through to the chunk level), of several, and longer
    than the document level's chunk limit (lowered to 3 here), with ties and empty texts."""
    monkeypatch.setattr(inverted_mod, "DOC_CHUNKS", 3)
    rng = np.random.default_rng(seed)
    docs = {f"d{i:03d}": _texts(rng, int(rng.choice([1, 1, 2, 3, 5]))) for i in range(37)}
    docs["d005"] = ["", "keel"]
    _write(tmp_path / "a.sqlite", docs)
    vocab = {t for cs in docs.values() for c in cs for t in terms(c)}
    assert _stored(tmp_path / "a.sqlite", vocab) == _brute(docs, 3)
    store = ChunkStore.open_readonly(tmp_path / "a.sqlite")
    p = store.postings()
    lengths = [len(terms(c)) for cs in docs.values() for c in cs]
    assert p.chunk_lengths.tolist() == lengths
    assert p.doc_rowids.tolist() == list(range(1, len(docs) + 1))
    assert {d.sha256 for d in store.documents()} == {"ab" * 32, "not-hex"}
    assert store.terms_current()
    store.close()


def test_a_merge_remaps_the_copied_postings(tmp_path: Path) -> None:
    """Copying documents (some dropped) renumbers their postings as a fresh write would."""
    rng = np.random.default_rng(9)
    docs = {f"d{i:02d}": _texts(rng, int(rng.choice([1, 2, 4]))) for i in range(25)}
    _write(tmp_path / "old.sqlite", docs)
    drop = {"d00", "d07", "d08", "d24"}
    new = ChunkStore.create(tmp_path / "new.sqlite")
    old = ChunkStore.open_readonly(tmp_path / "old.sqlite", dead=["d13"])
    copied = new.copy_documents_from(old, drop, start=0)
    new.commit()
    new.close()
    kept = {k: v for k, v in docs.items() if k not in drop and k != "d13"}
    assert len(copied) == sum(len(v) for v in kept.values())
    _write(tmp_path / "fresh.sqlite", kept)
    vocab = {t for cs in docs.values() for c in cs for t in terms(c)}
    assert _stored(tmp_path / "new.sqlite", vocab) == _stored(tmp_path / "fresh.sqlite", vocab)
    con = sqlite3.connect(tmp_path / "new.sqlite")
    assert {r[0] for r in con.execute("SELECT typeof(sha256) FROM documents")} == {"blob", "text"}
    con.close()


# --- an index written by the code of format 3 ------------------------------------------------


def _store_answers(path: Path) -> dict:
    """The fixture's JSON, computed by this code; records keyed by chunk id and keyword
    scores by chunk id and document id, so a rewrite that renumbers rows compares equal."""
    gen, m = IndexDir(path).manifest()
    store = SegmentedStore.open(gen, m)
    kw = store.keyword_index()
    records = store.fetch(range(store.rows))
    by_row = {r: rec.chunk_id for r, rec in records.items()}
    out = {
        "documents": [list(d) for d in store.documents()],
        "records": sorted(
            [rec.chunk_id, rec.doc_id, rec.text, rec.sha256, rec.ordinal]
            for rec in records.values()
        ),
        "keyword": {},
        "current": [s.store.terms_current() for s in store.segments],
    }
    for q in EXPECTED["keyword"]:
        chunk = kw.score(kw.query_terms(q), CHUNK)
        doc = kw.score(kw.query_terms(q), DOC)
        names = kw.doc_ids(doc.ids.tolist())
        out["keyword"][q] = (
            dict(zip([by_row[i] for i in chunk.ids.tolist()], chunk.scores.tolist(), strict=True)),
            dict(zip([names[i] for i in doc.ids.tolist()], doc.scores.tolist(), strict=True)),
        )
    store.close()
    return out


def _expected() -> dict:
    """``index-v3.json`` in :func:`_store_answers`' terms."""
    by_row = {r[0]: r[1] for r in EXPECTED["records"]}
    out = {
        "documents": EXPECTED["documents"],
        "records": sorted([r[1], r[2], r[3], r[4], r[5]] for r in EXPECTED["records"]),
        "keyword": {},
    }
    gen, m = IndexDir(FIXTURES / "index-v3").manifest()
    store = SegmentedStore.open(gen, m)  # document keys -> ids, as the fixture numbers them
    kw = store.keyword_index()
    for q, ((c_ids, c_scores), (d_ids, d_scores)) in EXPECTED["keyword"].items():
        names = kw.doc_ids(d_ids)
        out["keyword"][q] = (
            dict(zip([by_row[i] for i in c_ids], c_scores, strict=True)),
            dict(zip([names[i] for i in d_ids], d_scores, strict=True)),
        )
    store.close()
    return out


def _same(got: dict, want: dict) -> None:
    assert got["documents"] == want["documents"]
    assert got["records"] == want["records"]
    assert got["keyword"].keys() == want["keyword"].keys()
    for q, (chunk, doc) in want["keyword"].items():
        g_chunk, g_doc = got["keyword"][q]
        assert g_chunk.keys() == chunk.keys() and g_doc.keys() == doc.keys(), q
        for k, v in chunk.items():
            assert g_chunk[k] == pytest.approx(v, rel=1e-12), (q, k)
        for k, v in doc.items():
            assert g_doc[k] == pytest.approx(v, rel=1e-12), (q, k)


MODES = ["keyword", "hybrid", "dense"]
QUERIES = [*EXPECTED["keyword"], "Möwe Dach"]


def _hits(path: Path) -> dict:
    ix = SemanticIndex.load(path, embedder=FakeEmbedder())
    return {
        (mode, q): [
            (h.chunk_id, h.doc_id, round(h.score, 9)) for h in ix.search(q, k=40, mode=mode)
        ]
        for mode in MODES
        for q in QUERIES
    }


@pytest.fixture
def old_index(tmp_path: Path) -> Path:
    path = tmp_path / "v3"
    shutil.copytree(FIXTURES / "index-v3", path)
    return path


def test_a_format_3_index_answers_as_the_code_that_wrote_it(old_index: Path) -> None:
    got = _store_answers(old_index)
    assert len(got["current"]) == EXPECTED["segments"] and not any(got["current"])
    _same(got, _expected())


def test_optimize_rewrites_it_in_format_4_and_every_answer_stays(old_index: Path) -> None:
    before = _hits(old_index)
    assert any(before.values())
    SemanticIndex.load(old_index, embedder=FakeEmbedder()).optimize()
    got = _store_answers(old_index)
    assert got["current"] == [True]  # one segment, format 4
    _same(got, _expected())
    assert _hits(old_index) == before
    gen, _ = IndexDir(old_index).manifest()
    con = sqlite3.connect(gen / "chunks.sqlite")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert "kw_lists" in tables and not tables & {"chunk_terms", "kw_postings", "kw_arrays"}


def test_the_next_write_rewrites_every_old_segment(old_index: Path) -> None:
    ix = SemanticIndex.load(old_index, embedder=FakeEmbedder())
    ix.upsert(["a reef of keel anchors, new"], ids=["e0"])
    got = _store_answers(old_index)
    assert got["current"] and all(got["current"])
    want = _expected()
    assert [d for d in got["documents"] if d[0] != "e0"] == [
        d for d in want["documents"] if d[0] != "e0"
    ]
    kept = [r for r in want["records"] if r[1] != "e0"]
    assert [r for r in got["records"] if r[1] != "e0"] == kept
    again = SemanticIndex.load(old_index, embedder=FakeEmbedder())
    assert "new" in again.document("e0").text
    assert again.document("d4").metadata == {"n": 4}
    assert again.verify() == []
