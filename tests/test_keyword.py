"""Keyword search in any script, typo fallback, and the keyword index kept in sync."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from semsearch import SemanticIndex
from semsearch.search.keyword import edit_distance
from semsearch.store.chunkstore import ChunkStore
from semsearch.store.manifest import SegmentRef
from semsearch.store.postings import CHUNK
from semsearch.store.segments import Segment, SegmentedStore
from semsearch.store.tokenize import terms

from .conftest import FakeEmbedder

# One real sentence per script; the query differs from the text in case, accents or
# inflection, as a person would type it.
SENTENCES = {
    "fr": ("Les élèves étudient à l'université de Genève depuis septembre.", "ELEVES geneve"),
    "de": ("Die Straße in München ist im Sommer völlig überfüllt.", "strasse MUNCHEN"),
    "es": ("La niña comió paella en Valencia durante las vacaciones.", "nina valència"),
    "ru": ("Москва — столица России и крупнейший город страны.", "столицы москвы"),
    "uk": ("Київ розташований на берегах річки Дніпро.", "ДНІПРО"),
    "el": ("Η Αθήνα είναι η πρωτεύουσα και η μεγαλύτερη πόλη της Ελλάδας.", "ΑΘΗΝΑ πρωτευουσα"),
    "ar": ("القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.", "عاصمة مصر"),
    "he": ("ירושלים היא עיר עתיקה עם היסטוריה ארוכה.", "ירושלים"),
    "zh": ("北京是中华人民共和国的首都，也是全国的政治中心。", "政治中心"),
    "ja": ("東京は日本の首都であり、最大の都市です。", "最大の都市"),
    "ko": ("서울은 대한민국의 수도이며 가장 큰 도시이다.", "대한민국"),
    "hi": ("दिल्ली भारत की राजधानी है और एक बड़ा शहर है।", "राजधानी"),
}


@pytest.fixture(scope="module")
def world() -> SemanticIndex:
    texts = [s for s, _ in SENTENCES.values()]
    return SemanticIndex.from_texts(texts, ids=list(SENTENCES), embedder=FakeEmbedder())


@pytest.mark.parametrize("lang", list(SENTENCES))
def test_keyword_search_finds_each_script(world: SemanticIndex, lang: str) -> None:
    hits = world.search(SENTENCES[lang][1], k=5, mode="keyword")
    assert [h.doc_id for h in hits] == [lang]  # found, and nothing in another script matches


@pytest.mark.parametrize("lang", ["zh", "ja", "ko", "ru", "ar"])
def test_hybrid_ranks_the_script_match_first(world: SemanticIndex, lang: str) -> None:
    assert world.search(SENTENCES[lang][1], k=3, mode="hybrid")[0].doc_id == lang


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The CAFÉ was naïve", ["cafe", "naiv"]),  # stopword, case, accents, English stem
        ("Straße", ["strass"]),  # ß casefolds to ss
        ("Ёлки и ЕЛКИ", ["елк", "елк"]),  # ё folds to е; the one-letter "и" is dropped
        ("ΚΑΛΗΜΕΡΑ καλημέρα", ["καλημερ", "καλημερ"]),  # Greek case and tonos
        ("كَتَبَ كتب", ["كتب", "كتب"]),  # Arabic short vowels dropped
        ("中文检索", ["中文", "文检", "检索"]),  # CJK as overlapping pairs
        ("が", ["が"]),  # a lone kana stays, its dakuten kept (が is not か)
        # underscores split (the whole name kept too), one-letter words dropped
        ("foo_bar x", ["foo", "bar", "foobar"]),
    ],
)
def test_terms(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize("seed", range(20))
def test_edit_distance_against_full_table(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = "".join(rng.choice(list("abcd"), rng.integers(0, 7)))
    b = "".join(rng.choice(list("abcd"), rng.integers(0, 7)))
    full = _osa(a, b)
    assert edit_distance(a, b, 10) == full
    assert edit_distance(a, b, 1) == min(full, 2)


def _osa(a: str, b: str) -> int:
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if min(i, j) == 0:
                d[i][j] = max(i, j)
                continue
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


TEXTS = [
    "A recipe for apple pie with cinnamon and nutmeg.",
    "Quarterly trade volumes fell sharply in the spring.",
    "The committee discussed agricultural subsidies.",
]


@pytest.mark.parametrize(
    ("query", "target"),
    [("cinamon", 0), ("cinnamonn", 0), ("agricultral", 2), ("quartelry trade", 1)],
)
def test_misspelled_words_still_find_their_document(query: str, target: int) -> None:
    index = SemanticIndex.from_texts(TEXTS, embedder=FakeEmbedder())
    assert index.search(query, k=1, mode="keyword")[0].doc_id == f"text-{target}"


def test_keyword_index_follows_updates_and_deletes(tmp_path) -> None:
    index = SemanticIndex(embedder=FakeEmbedder(), path=tmp_path / "ix")
    index.upsert(TEXTS, ids=["pie", "trade", "farm"])
    assert index.search("nutmeg", mode="keyword")[0].doc_id == "pie"
    index.upsert(["A recipe for pear tart with vanilla."], ids=["pie"])  # update
    assert index.search("nutmeg", mode="keyword") == []
    assert index.search("vanilla", mode="keyword")[0].doc_id == "pie"
    index.delete(["farm"])
    assert index.search("subsidies", mode="keyword") == []
    # the unchanged document was carried into each new generation with its terms
    reopened = SemanticIndex.load(tmp_path / "ix", embedder=FakeEmbedder())
    assert reopened.search("quarterly volumes", mode="keyword")[0].doc_id == "trade"
    kw = reopened.live.view.store.keyword_index()  # type: ignore[union-attr]
    assert kw.current and kw.n_docs == 2
    assert kw.document_frequencies(["vanilla", "nutmeg", "subsidi"]) == {"vanilla": 1}


def test_a_store_from_before_terms_is_still_searched(tmp_path: Path) -> None:
    """A segment written before terms and postings existed (porter FTS5 over the text) is
    analyzed again when opened, in memory, and searched like any other."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT, sha256 TEXT,"
        " n_chunks INTEGER, meta TEXT);"
        "CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id INTEGER, doc_id TEXT,"
        ' ordinal INTEGER, start INTEGER, "end" INTEGER, line_start INTEGER,'
        " line_end INTEGER, text TEXT);"
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='row',"
        " tokenize='porter unicode61');"
        "INSERT INTO documents VALUES ('a', 'a', '', 1, NULL), ('b', 'b', '', 1, NULL);"
        "INSERT INTO chunks VALUES (0, 0, 'a', 0, 0, 31, 1, 1, 'Running shoes for trail runners'),"
        " (1, 1, 'b', 0, 0, 9, 1, 1, 'Apple pie');"
        "INSERT INTO chunks_fts(rowid, text) SELECT row, text FROM chunks;"
    )
    conn.commit()
    conn.close()
    ref = SegmentRef("gen-000001", 2, {})
    store = SegmentedStore([Segment(ref, tmp_path, 0, ChunkStore.open_readonly(path))])
    kw = store.keyword_index()
    assert not kw.current and kw.n_docs == 2
    found = kw.score(kw.query_terms("run shoe"), CHUNK)
    assert found.ids.tolist() == [0] and found.scores[0] > 0
    assert kw.full_match(kw.query_terms("run shoe")) > 0


def test_edit_distances_at_once_equal_one_at_a_time() -> None:
    from semsearch.search.keyword import edit_distances

    rng = np.random.default_rng(4)
    words = ["".join(rng.choice(list("abcde"), size=rng.integers(1, 9))) for _ in range(400)]
    for a in ["abcd", "ba", "eeeedd", "acbde", "a"]:
        for limit in (1, 2):
            got = edit_distances(a, words, limit)
            want = [min(edit_distance(a, w, limit), limit + 1) for w in words]
            assert [min(g, limit + 1) for g in got.tolist()] == want


@pytest.mark.parametrize("seed", range(4))
def test_edit_distances_of_long_identifiers_equal_one_at_a_time(seed: int) -> None:
    """Long terms against many candidates of near length (code identifiers): the
    character-count filter keeps every candidate within the limit, alone or among many."""
    from semsearch.search.keyword import edit_distances

    rng = np.random.default_rng(seed)
    alphabet = list("abcdefghijklmnopqrstuvwxyz_" if seed % 2 else "abcd")
    a = "".join(rng.choice(alphabet, size=13 + 4 * seed))
    words = ["".join(rng.choice(alphabet, size=len(a) + int(rng.integers(-2, 3))))
             for _ in range(150 + 97 * seed)]  # fmt: skip
    for i in range(30):  # near misses: a few edits (swaps too) of ``a``
        w = list(a)
        for _ in range(int(rng.integers(0, 4))):
            at = int(rng.integers(0, len(w) - 1))
            op = int(rng.integers(0, 4))
            if op == 0:
                w[at] = str(rng.choice(alphabet))
            elif op == 1:
                del w[at]
            elif op == 2:
                w.insert(at, str(rng.choice(alphabet)))
            else:
                w[at], w[at + 1] = w[at + 1], w[at]
        words.insert(i * 5, "".join(w))
    for limit in (1, 2):
        want = [min(edit_distance(a, w, limit), limit + 1) for w in words]
        for pick in (words, [w for w, d in zip(words, want, strict=True) if d <= limit][:3]):
            got = edit_distances(a, pick, limit)
            expect = [min(edit_distance(a, w, limit), limit + 1) for w in pick]
            assert [min(g, limit + 1) for g in got.tolist()] == expect
        assert any(d <= limit for d in want)  # the test meets the close ones
