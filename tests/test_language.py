"""Latin-script language detection for stemming: texts and queries stemmed in their own
language, and a query without function words analysed the way the index knows best."""

from __future__ import annotations

import re

import pytest

from semsearch import SemanticIndex
from semsearch.store.tokenize import detect_language, query_languages, terms

from .conftest import FakeEmbedder


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wie viele Einwohner hat die Stadt und wann wurde sie gegründet?", "german"),
        ("Quelle est la capitale de la France et pour quelle raison?", "french"),
        ("¿Cuál es la capital de España y por qué fue elegida?", "spanish"),
        ("How many people live in the city and when was it founded?", "english"),
        ("Häuser Berlin", None),  # no function word of any language
        ("Chi-Square Quantiles", None),  # one Italian function word is chance
        ("Sorting X + Y", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(re.findall(r"[^\W_]+", text.casefold())) == language


def test_a_german_text_is_stemmed_as_german() -> None:
    german = terms("Die Häuser der Stadt sind sehr alt.")
    assert "haus" in german  # German Snowball: häuser -> haus (English would keep "hauser")
    assert "die" not in german and "der" not in german  # German function words dropped
    assert "hauser" in terms("Hauser is a surname in the United States.")  # English text
    assert terms("Häuser", language="german") == ["haus"]
    assert terms("Häuser", language="english") == ["hauser"]


def test_query_languages() -> None:
    assert query_languages("wie alt sind die Häuser") == ("german",)
    assert query_languages("Häuser Berlin")[0] == "english"  # every language, English first
    assert len(query_languages("Häuser Berlin")) > 1
    assert query_languages("北京 上海") == ("english",)  # no Latin word: nothing to choose


DOCS = {
    "de": "Die Häuser der Altstadt sind sehr alt und wurden aus Stein gebaut.",
    "en": "The houses of the old town are very old and were built from stone.",
}


@pytest.fixture(scope="module")
def index() -> SemanticIndex:
    return SemanticIndex.from_texts(list(DOCS.values()), ids=list(DOCS), embedder=FakeEmbedder())


@pytest.mark.parametrize(
    ("query", "doc"),
    [
        ("Häuser", "de"),  # no function word: the German analysis is the one the index holds
        ("wie alt sind die Häuser", "de"),  # detected German
        ("houses", "en"),
        ("which houses were built from stone", "en"),
    ],
)
def test_keyword_query_in_its_own_language(index: SemanticIndex, query: str, doc: str) -> None:
    hits = index.search(query, k=5, mode="keyword")
    assert hits and hits[0].doc_id == doc


class _CountingKeyword:
    """Just enough of a keyword index: known terms, and how often it was asked."""

    def __init__(self, known: set[str]) -> None:
        self.known, self.calls = known, 0

    def document_frequencies(self, query_terms: set[str], level: int = 0) -> dict[str, int]:
        self.calls += 1
        return {t: 1 for t in set(query_terms) if t in self.known}


@pytest.mark.parametrize("query", ["running houses", "Häuser laufen schnell", "trade decline"])
@pytest.mark.parametrize("known_language", ["english", "german", "french", None])
def test_the_reading_is_chosen_with_one_lookup(query: str, known_language: str | None) -> None:
    """Every reading's terms go to the index in one lookup (one round for a sharded index),
    and the reading chosen is the one the old reading-by-reading rule chose: most terms
    known, ties to the first language."""
    from semsearch.search.keyword import _analysed

    known = set(terms(query, language=known_language)) if known_language else set()
    kw = _CountingKeyword(known)
    got = _analysed(kw, query)  # type: ignore[arg-type]
    options: list[list[str]] = []
    for lang in query_languages(query):
        found = terms(query, language=lang)
        if found not in options:
            options.append(found)
    want = max(options, key=lambda found: len(set(found) & known))
    assert got == want
    assert kw.calls == (1 if len(options) > 1 else 0)
