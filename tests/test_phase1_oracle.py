"""Phase 1's fast paths against the paths they replaced, as oracles.

- Chunking by token counts (the static model's per-word memo) gives exactly the chunks
  chunking by token spans gave, on real files of every kind (code, HTML, Markdown, CJK,
  odd budgets that force cuts).
- The memoised keyword analyser gives exactly the terms of the plain one (kept below as it
  was), with and without stemming, in every language.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from semsearch.embed import resolve_model
from semsearch.embed import static as static_mod
from semsearch.embed import static_distill as sd
from semsearch.embed.static import StaticEmbedder
from semsearch.indexing.engine import chunk_rows
from semsearch.indexing.settings import ChunkParams
from semsearch.ingest.chunk import iter_chunks
from semsearch.ingest.read import read_or_reason
from semsearch.store import tokenize as tk

from .test_static import _random_model

REPO = Path(__file__).resolve().parents[1]
STDLIB = Path(json.__file__).resolve().parents[1]

HOSTILE = [
    "",
    " \n\n \t",
    "naïve café — “quoted” résumé. Ångström!  Zürich; İstanbul ǅ ﬁnance ½ ①",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다. 漢字かなカナ混じりの文。",
    "word\x0bvertical\x0cfeed\x1cfile\x1dgroup\x85next line",
    "e\u0301 a\u0300 o\u0308 क\u093f \u0915\u094d\u0937 ά Ελληνικά Русский текст عربي\u064e",
    "parseConfig parse_config config.parse HTTPServer os.path.join __init__ _x x_ a.b.c",
    "Der Hund und die Katze sind nicht im Haus. Le chat est sur la table avec des amis.",
    "emoji 🙂🙃 zero\u200bwidth soft\u00adhyphen tab\tsep  double  space",
    "A" * 3000,
    "x. " * 700,
    "def f():\n    return 1\n\n\n\nclass C:\n    pass\n" * 40,
]


@functools.cache
def _embedder(tmp: str) -> StaticEmbedder:
    teacher, _ = resolve_model(None)
    out = Path(tmp) / "static"
    sd.write_static(out, _random_model(), teacher=teacher, stamp="x", max_tokens=254)
    return StaticEmbedder(out)


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> StaticEmbedder:
    return _embedder(str(tmp_path_factory.mktemp("oracle")))


def _real_files() -> list[Path]:
    """Code, Markdown, HTML and text of this repository and of Python's standard library:
    a fixed sample, so the test is the same on every run."""
    picked = sorted(REPO.glob("semsearch/**/*.py"))[::4]
    picked += sorted(REPO.glob("docs/*.md"))[::2]
    picked += [p for p in (REPO / "README.md", REPO / "semsearch/serve/page.html") if p.exists()]
    stdlib = sorted(
        p for p in STDLIB.glob("*/*.py") if "site-packages" not in p.parts and p.stat().st_size
    )
    picked += random.Random(7).sample(stdlib, min(25, len(stdlib)))
    picked += sorted(STDLIB.glob("*/*.html"))[:4]  # idlelib's help, where installed
    return [p for p in picked if p.is_file()]


def _span_chunks(text: str, emb: StaticEmbedder, budget: int, kind: str) -> Iterator[tuple]:
    for c in iter_chunks(
        text, doc_id="d", source="s", token_spans=emb.token_spans, max_tokens=budget, kind=kind
    ):
        yield c.start, c.end, c.text


#: Texts the counting path asked spans for: those over the budget, to cut them.
_ASKED: list[str] = []


def _spans_asked(emb: StaticEmbedder):  # type: ignore[no-untyped-def]
    def spans(texts: list[str]) -> list[list[tuple[int, int]]]:
        _ASKED.extend(texts)
        return emb.token_spans(texts)

    return spans


def _count_chunks(text: str, emb: StaticEmbedder, budget: int, kind: str) -> Iterator[tuple]:
    for c in iter_chunks(
        text, doc_id="d", source="s", token_spans=_spans_asked(emb),
        token_counts=emb.token_counts, max_tokens=budget, kind=kind,
        counts_add_up=emb.counts_add_up,
    ):  # fmt: skip
        yield c.start, c.end, c.text


@pytest.mark.parametrize("budget", [8, 13, 61, 200])
def test_counting_chunks_like_spans_on_real_files(static: StaticEmbedder, budget: int) -> None:
    files = _real_files()
    assert len(files) >= 40
    kinds = set()
    _ASKED.clear()
    for path in files:
        doc = read_or_reason(path)
        assert not isinstance(doc, str), doc
        kinds.add(doc.kind)
        for kind in {doc.kind, "text", "code"}:
            want = list(_span_chunks(doc.text, static, budget, kind))
            assert list(_count_chunks(doc.text, static, budget, kind)) == want, (path, kind)
        # Through the engine too (sections, lines, pages), as a build chunks.
        params = ChunkParams(budget, 1)
        assert chunk_rows(doc, static, params) == _engine_rows_by_spans(doc, static, params)
    assert {"code", "html", "markdown"} <= kinds
    # Spans were asked only to cut units over the budget, and some were (so compared too).
    assert all(len(s) > budget for s in static.token_spans(_ASKED))
    assert _ASKED or budget > 100


def test_code_counted_by_lines_chunks_like_spans(static: StaticEmbedder) -> None:
    """Code blocks long enough to be counted by their lines alone (``counts_add_up``), with
    lines of nothing but controls, form feeds, zero-width or odd spaces, and lines cut."""
    assert static.counts_add_up
    rng = random.Random(13)
    lines = [*HOSTILE[2:9], "\x0c", "\x1c\x85", "\u200b", "   \t", "x = f(a, b)  # é", "A" * 900]
    for _ in range(60):
        block = "\n".join(rng.choice(lines) for _ in range(rng.randrange(1, 40)))
        text = "\n\n".join([block, "def g():\n    pass", block[::-1]])
        for budget in (8, 13, 61, 200):
            want = list(_span_chunks(text, static, budget, "code"))
            assert list(_count_chunks(text, static, budget, "code")) == want, (budget, text)


def _engine_rows_by_spans(doc, static: StaticEmbedder, params: ChunkParams) -> list:  # type: ignore[no-untyped-def]
    class SpansOnly:
        token_spans = staticmethod(static.token_spans)
        token_counts = None
        counts_add_up = False  # the oracle: every block counted whole, by its spans

    from semsearch.indexing import engine

    return engine.chunk_rows(doc, SpansOnly(), params)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [8, 31, 200])
@pytest.mark.parametrize("kind", ["text", "code"])
def test_counting_chunks_like_spans_on_hostile_text(
    static: StaticEmbedder, budget: int, kind: str
) -> None:
    text = "\n\n".join(HOSTILE) + "\n" + "\n".join(reversed(HOSTILE))
    assert list(_count_chunks(text, static, budget, kind)) == list(
        _span_chunks(text, static, budget, kind)
    )


def test_token_counts_equal_spans_and_survive_the_memo_starting_over(
    static: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [*HOSTILE, *(t[:500] for t in HOSTILE), "Solar panels convert sunlight."]
    want = [len(s) for s in static.token_spans(texts)]
    assert static.token_counts(texts) == want
    monkeypatch.setattr(static_mod, "_MAX_WORDS", 5)
    for _ in range(3):  # the memo starts over within and between calls
        assert static.token_counts(texts) == want
        ids = static._words(texts)  # type: ignore[misc]
        assert ids == [
            e.ids for e in static._span_tok.encode_batch(texts, add_special_tokens=False)
        ]


# --- the keyword analyser ------------------------------------------------------------------
# The plain analyser as it was before the memo (TERMS_VERSION 3): the oracle.


def _reference_detect(words: list[str]) -> str | None:
    counts = dict.fromkeys(tk.LANGUAGE_WORDS, 0)
    for w in words:
        if len(w) > 1:
            for lang, vocab in tk.LANGUAGE_WORDS.items():
                counts[lang] += w in vocab
    n = max(counts.values())
    tied = [lang for lang, c in counts.items() if c == n]
    if n < tk.MIN_EVIDENCE or (len(tied) > 1 and tk.DEFAULT_LANGUAGE not in tied):
        return None
    return tk.DEFAULT_LANGUAGE if tk.DEFAULT_LANGUAGE in tied else tied[0]


def _reference_fold(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        return text
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and out and ord(out[-1]) < 0x0800:
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


#: The identifier pattern as first written, lookbehind first (the oracle of ``tk._IDENTIFIER``).
_PLAIN_IDENTIFIER = re.compile(r"(?<!\w)[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?!\w)")


def _reference_terms(text: str, stem: bool = True, language: str | None = None) -> list[str]:
    words = tk._WORD.findall(_reference_fold(text))
    lang = language or _reference_detect(words) or tk.DEFAULT_LANGUAGE
    out: list[str] = []
    for word in words:
        if not word.isascii() and tk._CJK.search(word):
            pos = 0
            for m in tk._CJK.finditer(word):
                if m.start() > pos:
                    out.extend(tk._word_terms(word[pos : m.start()], stem, lang))
                run = m.group()
                out.extend(
                    [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
                )
                pos = m.end()
            if pos < len(word):
                out.extend(tk._word_terms(word[pos:], stem, lang))
        else:
            out.extend(tk._word_terms(word, stem, lang))
    for m in _PLAIN_IDENTIFIER.finditer(text):
        token = m.group()
        if "_" in token.strip("_") or "." in token or tk._CAMEL.search(token):
            out.extend(tk.identifier_terms(token, stem))
    return out


def _real_texts() -> list[str]:
    texts = list(HOSTILE)
    for path in _real_files():
        doc = read_or_reason(path)
        assert not isinstance(doc, str)
        # Pieces of odd sizes, as chunks are, cut anywhere (mid-word, mid-identifier).
        rng = random.Random(len(doc.text))
        at = 0
        while at < len(doc.text) and len(texts) < 4000:
            size = rng.choice((1, 7, 130, 999, 2500))
            texts.append(doc.text[at : at + size])
            at += size
    return texts


def test_terms_equal_the_plain_analyser_on_real_text(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _real_texts()
    assert len(texts) > 1000
    assert any(not t.isascii() for t in texts) and any(tk._CJK.search(t) for t in texts)
    for stem in (True, False):
        for t in texts:
            assert tk.terms(t, stem=stem) == _reference_terms(t, stem), t[:80]
    monkeypatch.setattr(tk, "_MAX_MEMO", 10)  # memos start over all the time: same terms
    for t in texts[:800]:
        assert tk.terms(t) == _reference_terms(t)
    for lang in tk.LANGUAGE_WORDS:
        for t in texts[:300]:
            assert tk.terms(t, language=lang) == _reference_terms(t, True, lang)


def _compound(found: list[str]) -> list[str]:
    """The identifiers that add terms (what ``terms`` looks up), in order."""
    return [t for t in found if "_" in t.strip("_") or "." in t or tk._CAMEL.search(t)]


def test_identifiers_equal_the_plain_pattern_on_any_text() -> None:
    """Where identifiers start next to letters of any script, digits, underscores, dots,
    capitals, line ends and the text's ends: the fast pattern finds exactly the compound
    identifiers the plain one finds, and fewer plain words."""
    alphabet = [
        *"aZ9_._.\n .(Bq", "é", "ß", "東", "\u0301", "١", "x_y", "A.b", "İ", "\x00", "aB", "AB",
        "__", "a.", ".1", "HTTPServer", "_x", "x_",
    ]  # fmt: skip
    rng = random.Random(5)
    for _ in range(30000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 16)))
        found, plain = tk._IDENTIFIER.findall(text), _PLAIN_IDENTIFIER.findall(text)
        assert _compound(found) == _compound(plain), repr(text)
        assert set(found) <= set(plain)
    skipped = 0
    for t in _real_texts():
        found, plain = tk._IDENTIFIER.findall(t), _PLAIN_IDENTIFIER.findall(t)
        assert _compound(found) == _compound(plain)
        skipped += len(plain) - len(found)
    assert skipped > 1000  # the plain words it skips


def test_language_detection_equals_the_plain_count() -> None:
    rng = random.Random(3)
    vocab = [*sorted({w for v in tk.LANGUAGE_WORDS.values() for w in v}), "x", "o", "e", "zz"]
    for _ in range(3000):
        words = [rng.choice(vocab) for _ in range(rng.randrange(0, 12))]
        assert tk.detect_language(words) == _reference_detect(words), words


def test_fold_equals_the_letter_by_letter_fold() -> None:
    samples = [*HOSTILE, "İ", "ﬃ", "Å", "한국어", "ｶﾀｶﾅ", "Ǆ", "\u1e9b\u0323", "x\u0345"]
    samples += [chr(c) for c in range(0x80, 0x3000, 7)]
    for s in samples:
        assert tk._fold(s) == _reference_fold(s), repr(s)


def test_piece_ids_equal_the_tokenizer_on_random_text(static: StaticEmbedder) -> None:
    """Texts built from the characters where cutting at ASCII punctuation could go wrong:
    combining marks after punctuation, CJK, accents, odd spaces, controls, long runs."""
    alphabet = [*"aZ9_.,;:'\"()[]{}<>!?#$%&*+-/=@\\^`|~ \t\n",
        "\u0301", "\u0308", "\u20dd", "\u093f", "é", "ß", "İ", "東", "京", "한", "ｶ",
        "\u00a0", "\u2003", "\u3000", "\u200b", "\u00ad", "\ufffd", "\x00", "\x07", "🙂",
        "¿", "«", "»", "—", "…", "©", "→", "½", "ﬁ", "x" * 120, "[CLS]", "[mask]", "[SEP",
    ]  # fmt: skip
    rng = random.Random(11)
    texts = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(3000)
    ]
    want = [e.ids for e in static._span_tok.encode_batch(texts, add_special_tokens=False)]
    assert static._words(texts) == want  # type: ignore[misc]
    assert static.token_counts(texts) == [len(w) for w in want]


def test_phase_one_searches_exactly_and_phase_two_builds_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the flat limit ``auto`` trains an approximate index, except for phase 1 (its
    vectors are replaced by phase 2's), which stays exact; the manifest keeps ``auto``."""
    from semsearch import api
    from semsearch.index import ann
    from semsearch.store.layout import IndexDir

    monkeypatch.setattr(sd, "distil", lambda location: _random_model())
    monkeypatch.setattr(ann, "FLAT_MAX_ROWS", 20)
    tree = tmp_path / "tree"
    tree.mkdir()
    for n in range(12):
        text = "\n\n".join(f"Paragraph {i} of file {n} about topic {i * n % 7}." for i in range(60))
        (tree / f"f{n}.txt").write_text(text, encoding="utf-8")

    def built(name: str, **kw: object) -> tuple[str, str]:
        api.index_paths([tree], tmp_path / name, chunk_tokens=8, **kw)  # type: ignore[arg-type]
        m = IndexDir(tmp_path / name).manifest()[1]
        assert m.chunks > 256  # past both limits: auto would not be flat
        return m.index_type, str(m.index_params["requested"])

    assert built("phase1", progressive=True) == ("flat", "auto")
    assert built("static", model="static")[0] != "flat"


def test_html_whitespace_collapsed_as_the_pattern_does() -> None:
    """``_collapsed`` against ``\\s+`` -> one space, with every whitespace character Python
    knows (``\\s`` and ``str.split`` agree on each), marks, letters and empty texts."""
    import sys

    from semsearch.ingest.readers import html

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert all(re.fullmatch(r"\s", c) for c in spaces) and len(spaces) > 20
    alphabet = [*spaces, "a", "é", "東", "\ue000", "\u200b", "\ufeff", "\x00", "x y"]
    rng = random.Random(17)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert html._collapsed(text) == html._SPACE.sub(" ", text), repr(text)


def test_html_block_marks_become_breaks_as_the_pattern_does() -> None:
    from semsearch.ingest.readers import html

    marks = html._MARKS
    plain = re.compile(f"[ \t]*{re.escape(marks.block)}[{re.escape(marks.block)} \t]*")
    alphabet = [" ", "\t", marks.block, marks.block, "a", "\n", "x y", "\u00a0", marks.pre_open]
    rng = random.Random(19)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14)))
        assert marks.breaks(text) == plain.sub("\n\n", text), repr(text)
