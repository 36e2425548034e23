"""Keyword terms for any script: fold case and accents, stem per script, bigram CJK.

Documents and queries go through the same function, so whatever it does to a word it does
on both sides. The output is plain space-separated terms that SQLite's FTS5 ``ascii``
tokenizer splits back without changing them.

Latin-script text is stemmed in its own language: :func:`detect_language` counts each
language's commonest function words (after folding), so a German chunk or query is stemmed
as German and loses German function words. A query with none of those words (``Häuser
Berlin``) says nothing about its language; the keyword search then picks the analysis
whose terms the index holds most (``semsearch.search.keyword.query_terms``).

Identifiers of source code are split into their words and also kept whole, so
``parseConfig``, ``parse_config`` and ``config.parse`` share terms, and an exact identifier
(or dotted path) still matches best: ``parse_config`` and ``parseConfig`` both give
``pars config parseconfig``.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

#: Stored with every keyword index: terms made by another version are made again.
TERMS_VERSION = "3"

#: Lucene's English stopword list (the one bm25s and the baselines use): dropped on both sides.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)

#: Each Latin-script language's commonest function words of two letters or more, folded
#: (accents dropped), leaving out those that are also English or code words (was, plus,
#: per, non, su, es, os, as, do, is, op, te, con): what :func:`detect_language` counts,
#: and (but English's) what its text loses as stopwords.
LANGUAGE_WORDS = {
    "english": frozenset(
        "the of and to is in that it was for on are with as be by this at from have which "
        "or has were not but an their been had".split()
    ),
    "german": frozenset(
        "der die und den das nicht ist von zu mit sich des auf fur im dem eine einer ein "
        "wie wird auch als bei nach sind wurde oder aus welche welcher wer wo wann".split()
    ),
    "french": frozenset(
        "le la les et des est une du que pour dans qui par sur au avec ce pas sont ont "
        "aux cette il elle quel quelle".split()
    ),
    "spanish": frozenset(
        "el la los las del que en por una para se lo como mas fue sus cual quien donde".split()
    ),
    "italian": frozenset(
        "il di che la un una sono del della si le gli nel alla anche piu quale dove".split()
    ),
    "dutch": frozenset(
        "de het een en van dat zijn voor met niet aan er ook als bij door wordt "
        "welke wie waar".split()
    ),
    "portuguese": frozenset(
        "da dos das que em um uma para com nao por se mais foi sao ao qual quem onde".split()
    ),
}
#: The languages each function word belongs to (a word may be in several).
_LANGUAGES_OF = {
    w: tuple(lang for lang, vocab in LANGUAGE_WORDS.items() if w in vocab)
    for w in frozenset().union(*LANGUAGE_WORDS.values())
}
#: Latin text with no function word of any language is stemmed as this one.
DEFAULT_LANGUAGE = "english"
#: Function words needed to name a language: one is chance ("Chi-Square" is not Italian,
#: "X + Y" not Spanish; CACM has such titles).
MIN_EVIDENCE = 2

_WORD = re.compile(r"[^\W_]+")
# Han, Hiragana, Katakana, Hangul and their extensions: written without spaces between
# words (Hangul mostly with, but its words inflect), so they are indexed as overlapping
# character pairs, the way Lucene's CJK analyzer does.
_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]+"
)


# An ASCII identifier or dotted path (not part of a longer word), case kept for camelCase.
# `(?<!\w)X` written as `X(?<!\w.)`: a pattern that starts with a character set lets the
# regex engine skip ahead to candidates (15% faster on Python's library, same matches).
# Only those that can be compound are found (the look-ahead: an underscore, a capital or a
# dot after the first letter, which every compound one has), so plain words, nine in ten,
# are not looked up: the same compound identifiers as the plain pattern, tested.
_IDENTIFIER = re.compile(
    r"[A-Za-z_](?<!\w.)(?=[A-Za-z0-9_]*(?:_|\.[A-Za-z_]|[A-Z]))"
    r"[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?!\w)"
)
# Inside a word: lower/digit then upper (parseConfig), or an acronym's end (HTTPServer).
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _script(ch: str) -> str:
    o = ord(ch)
    if 0x0370 <= o <= 0x03FF or 0x1F00 <= o <= 0x1FFF:
        return "greek"
    if 0x0400 <= o <= 0x052F:
        return "russian"
    if 0x0600 <= o <= 0x06FF or 0x0750 <= o <= 0x077F:
        return "arabic"
    if o < 0x0250 or 0x1E00 <= o <= 0x1EFF:
        return "latin"
    return ""


@functools.lru_cache(maxsize=8)
def _stemmer(language: str) -> Callable[[str], str]:
    import Stemmer

    return Stemmer.Stemmer(language).stemWord  # type: ignore[no-any-return]


def _fold(text: str) -> str:
    """Casefold and drop accents of Latin, Greek, Cyrillic and Arabic letters (é→e, ά→α,
    Arabic short vowels), leaving marks that change the letter in other scripts (Japanese
    dakuten, Indic vowel signs)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        return text
    nfd = unicodedata.normalize("NFD", text)
    if not any(map(unicodedata.combining, set(nfd))):  # no mark to drop: the loop below's
        return unicodedata.normalize("NFC", nfd)  # result, without going letter by letter
    out: list[str] = []
    for ch in nfd:
        if unicodedata.combining(ch) and out and ord(out[-1]) < 0x0800:
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def is_cjk(term: str) -> bool:
    """Whether a term is a CJK character pair (or single character)."""
    return bool(_CJK.match(term))


def detect_language(words: list[str]) -> str | None:
    """The language whose function words are most frequent among ``words`` (folded), or
    None when fewer than ``MIN_EVIDENCE`` are there or two languages tie (English wins a
    tie it is in)."""
    counts = dict.fromkeys(LANGUAGE_WORDS, 0)
    # Only function words are counted (one in five words of Python's docs): filtered in C
    # first. Every one has two letters or more (one letter is a variable as often as a
    # word: x, y, o, e).
    found = Counter(filter(_LANGUAGES_OF.__contains__, words))
    for w, n in found.items():
        for lang in _LANGUAGES_OF[w]:
            counts[lang] += n
    n = max(counts.values())
    tied = [lang for lang, c in counts.items() if c == n]
    if n < MIN_EVIDENCE or (len(tied) > 1 and DEFAULT_LANGUAGE not in tied):
        return None
    return DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in tied else tied[0]


def query_languages(text: str) -> tuple[str, ...]:
    """The languages a query's Latin-script words may be stemmed in: its detected one, or
    every language of ``LANGUAGE_WORDS`` when it has none of their function words."""
    words = _WORD.findall(_fold(text))
    found = detect_language(words)
    if found is not None:
        return (found,)
    if any(_script(w[0]) == "latin" for w in words):
        return tuple(LANGUAGE_WORDS)
    return (DEFAULT_LANGUAGE,)


def terms(text: str, *, stem: bool = True, language: str | None = None) -> list[str]:
    """The keyword terms of ``text`` (stopwords and one-letter words dropped): its words in
    order, then the extra terms of its compound identifiers (:func:`identifier_terms`).
    Latin-script words are stemmed in ``language``, by default the text's own
    (:func:`detect_language`, else ``DEFAULT_LANGUAGE``)."""
    words = _WORD.findall(_fold(text))
    lang = language or detect_language(words) or DEFAULT_LANGUAGE
    out = list(itertools.chain.from_iterable(map(_memo(stem, lang).__getitem__, words)))
    identifiers = _IDENTIFIER.findall(text)
    out.extend(itertools.chain.from_iterable(map(_memo(stem, "").__getitem__, identifiers)))
    return out


#: Distinct words remembered per analysis; past it the memo starts over (results never change).
_MAX_MEMO = 1 << 17


class _Memo(dict[str, tuple[str, ...]]):
    """The terms of each word (or, for ``lang=""``, what each identifier adds), made on first
    sight: a corpus repeats its words, so analysing text is mostly dict lookups."""

    def __init__(self, stem: bool, lang: str) -> None:
        super().__init__()
        self.stem, self.lang = stem, lang

    def __missing__(self, word: str) -> tuple[str, ...]:
        if self.lang:
            made = tuple(_word(word, self.stem, self.lang))
        elif "_" in word.strip("_") or "." in word or _CAMEL.search(word):
            made = tuple(identifier_terms(word, self.stem))
        else:
            made = ()
        self[word] = made
        return made


_MEMOS: dict[tuple[bool, str], _Memo] = {}


def _memo(stem: bool, lang: str) -> _Memo:
    memo = _MEMOS.get((stem, lang))
    if memo is None or len(memo) > _MAX_MEMO:
        memo = _MEMOS[stem, lang] = _Memo(stem, lang)
    return memo


def identifier_terms(token: str, stem: bool = True) -> list[str]:
    """What a compound identifier adds to its plain words: the parts of its camelCase
    words (``parseConfig`` is one word otherwise), each snake_case name whole, and a
    dotted path whole (``os.path.join`` → ``ospathjoin``). A whole name is made like a
    camelCase word, so ``parse_config`` and ``parseConfig`` give the same term."""
    out: list[str] = []
    segments = []
    for segment in token.split("."):
        words = [w for w in segment.split("_") if w]
        parts = [p for w in words for p in _CAMEL.split(w)]
        for w in words:
            pieces = _CAMEL.split(w)
            if len(pieces) > 1:
                out.extend(t for p in pieces for t in _word_terms(p.lower(), stem))
        if len(words) > 1:
            out.extend(_word_terms("".join(parts).lower(), stem))
        if len(segment.strip("_")) > 1:
            segments.append("".join(parts).lower())
    if len(segments) > 1:
        out.extend(_word_terms("".join(segments), stem))
    return out


def _word(word: str, stem: bool, lang: str) -> list[str]:
    """The terms of one word of folded text: CJK runs as character pairs, the rest stemmed."""
    if word.isascii() or not _CJK.search(word):
        return _word_terms(word, stem, lang)
    out: list[str] = []
    pos = 0
    for m in _CJK.finditer(word):
        if m.start() > pos:
            out.extend(_word_terms(word[pos : m.start()], stem, lang))
        run = m.group()
        out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        pos = m.end()
    if pos < len(word):
        out.extend(_word_terms(word[pos:], stem, lang))
    return out


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str, latin: str) -> str:
    """``word`` stemmed for its script (Latin script: in the language ``latin``)."""
    language = _script(word[0])
    if language == "latin":
        language = latin
    return _stemmer(language)(word) if language else word


def _word_terms(word: str, stem: bool, lang: str = DEFAULT_LANGUAGE) -> list[str]:
    if len(word) < 2 or word in STOPWORDS:
        return []
    if lang != DEFAULT_LANGUAGE and word in LANGUAGE_WORDS[lang]:
        return []
    return [_stem(word, lang) if stem else word]
