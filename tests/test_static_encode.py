"""The static encoder's fast path (word and piece memos, one gather, new pieces tokenised
joined) against the encoder it replaced, kept here word for word as the oracle: the same
vectors to the last bit, on varied texts, in any batch, cold or warm, and when the memos
start over."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from semsearch.embed import static as static_mod
from semsearch.embed import static_distill as sd
from semsearch.embed.base import normalize
from semsearch.embed.static import StaticEmbedder

from .test_static import TEACHER_ID, _random_model

# --- the encoder of e6796ab, kept as the oracle ---------------------------------------------

_OLD_SPLIT_DIFFERS = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
_OLD_PIECE = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


class _OldWordIds:
    def __init__(self, tok) -> None:  # type: ignore[no-untyped-def]
        self._tok = tok
        self._memo: dict[str, list[int]] = {}
        added = sorted(t.content for t in tok.get_added_tokens_decoder().values() if t.content)
        self._added = re.compile("|".join(map(re.escape, added)), re.IGNORECASE) if added else None

    def _whole(self, text: str) -> bool:
        return bool(_OLD_SPLIT_DIFFERS.search(text) or (self._added and self._added.search(text)))

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        memo = self._memo
        split = [None if self._whole(t) else _OLD_PIECE.findall(t) for t in texts]
        new = list(set(itertools.chain.from_iterable(ws for ws in split if ws)).difference(memo))
        made = self._tok.encode_batch_fast(new, add_special_tokens=False) if new else ()
        memo.update({w: e.ids for w, e in zip(new, made, strict=True)})
        whole = [t for t, ws in zip(texts, split, strict=True) if ws is None]
        encs = self._tok.encode_batch_fast(whole, add_special_tokens=False) if whole else ()
        whole_ids = iter([e.ids for e in encs])
        out: list[list[int]] = []
        for ws in split:
            if ws is None:
                out.append(next(whole_ids))
                continue
            ids: list[int] = []
            for got in map(memo.__getitem__, ws):
                ids.extend(got)
            out.append(ids)
        return out


def _old_encode(emb: StaticEmbedder, words: _OldWordIds, texts: Sequence[str]) -> np.ndarray:
    from scipy import sparse

    n = len(texts)
    if n == 0:
        return np.zeros((0, emb.dim), dtype=np.float32)
    clipped = [t[: emb._max_chars] for t in texts]
    id_lists = []
    for got in words(clipped):
        ids = np.asarray(got[: emb.max_tokens], dtype=np.int64)
        id_lists.append(ids if emb._unk is None else ids[ids != emb._unk])
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(i) for i in id_lists], out=indptr[1:])
    ids = np.concatenate(id_lists) if indptr[-1] else np.zeros(0, dtype=np.int64)
    counts = sparse.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), ids, indptr), shape=(n, len(emb._table))
    )
    counts.sum_duplicates()
    return normalize(np.asarray(counts @ emb._table, dtype=np.float32))


# --- texts ---------------------------------------------------------------------------------

_ALPHABET = [*"aZ9_.,;:'\"()[]{}<>!?#$%&*+-/=@\\^`|~ \t\n",
    "\u0301", "\u0308", "\u093f", "é", "ß", "İ", "東", "京", "한", "ｶ", "\u037e", "\u1fef",
    "\u00a0", "\u2003", "\u3000", "\u2028", "\u200b", "\u00ad", "\ufffd", "\x00", "\x07",
    "\x0b", "\x1c", "\x85", "🙂", "«", "—", "ﬁ", "x" * 120, "[CLS]", "[pad]", "[UNK", " the ",
    " solar panels ", "def f(x):\n    return x ** 2", "naïve café", "||", " | ",
]  # fmt: skip


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    prose = (
        "Solar panels convert sunlight into electricity; the cat sat on the mat. "
        "Gene expression (p < 0.05) rose 3.5-fold in CD4+ T-cells, e.g. IL-2 and TNF-α. "
    )
    out = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            out.append("".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 60))))
        elif kind == 1:
            out.append(prose[rng.randrange(len(prose)) :] * rng.randrange(1, 30))
        elif kind == 2:
            out.append(" ".join(rng.choice(prose.split()) for _ in range(rng.randrange(400))))
        else:
            out.append(rng.choice(["", " ", "\n", "é" * 3000, "x" * 5000, "中文字符和English混合"]))
    return out


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> StaticEmbedder:
    out = tmp_path_factory.mktemp("static") / "static"
    sd.write_static(out, _random_model(), teacher=TEACHER_ID, stamp="x", max_tokens=254)
    return StaticEmbedder(out)


def _fresh(emb: StaticEmbedder) -> StaticEmbedder:
    return StaticEmbedder(emb.model_dir)


@pytest.mark.parametrize("batch", [1, 2, 7, 97, 256, 1000])
def test_vectors_equal_the_old_encoders_in_batches_of_any_size(
    emb: StaticEmbedder, batch: int
) -> None:
    texts = _texts(batch, 1000)
    new, old_words = _fresh(emb), _OldWordIds(emb._span_tok)
    for start in range(0, len(texts), batch):
        part = texts[start : start + batch]
        want = _old_encode(emb, old_words, part)
        got = new.encode(part)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), start


def test_cold_warm_and_alone_give_the_same_bits(emb: StaticEmbedder) -> None:
    texts = _texts(5, 300)
    fresh = _fresh(emb)
    cold = fresh.encode(texts)
    assert fresh.encode(texts).tobytes() == cold.tobytes()  # warm
    assert np.concatenate([fresh.encode([t]) for t in texts]).tobytes() == cold.tobytes()
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    assert _fresh(emb).encode([texts[i] for i in order]).tobytes() == cold[order].tobytes()
    assert _fresh(emb).encode([]).shape == (0, emb.dim)


def test_the_memos_starting_over_change_nothing(
    emb: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _texts(9, 400)
    want = _old_encode(emb, _OldWordIds(emb._span_tok), texts)
    monkeypatch.setattr(static_mod, "_MAX_WORDS", 50)
    monkeypatch.setattr(static_mod, "_JOIN", 7)  # many joined strings, odd last one
    small = _fresh(emb)
    for start in range(0, len(texts), 37):  # both memos start over within and between calls
        part = texts[start : start + 37]
        assert small.encode(part).tobytes() == want[start : start + 37].tobytes()
    assert small.encode(texts).tobytes() == want.tobytes()  # a batch larger than the bound
    assert small._words is not None
    assert len(small._words._words._index) > 50


def test_new_pieces_fall_back_one_by_one_when_the_separator_count_disagrees(
    emb: StaticEmbedder,
) -> None:
    """The joined tokenisation is checked by counting separators; a piece that made the
    separator's id (here by pretending "the" is the separator) sends the group one by one."""
    fresh = _fresh(emb)
    words = fresh._words
    assert words is not None and words._sep == emb._span_tok.token_to_id("|")
    words._sep = emb._span_tok.token_to_id("the")
    texts = ["the cat and the dog", "the the the", "solar | panels", *_texts(2, 200)]
    want = [e.ids for e in emb._span_tok.encode_batch(texts, add_special_tokens=False)]
    assert words(texts) == want
    assert (
        fresh.encode(texts).tobytes()
        == _old_encode(emb, _OldWordIds(emb._span_tok), texts).tobytes()
    )


def test_token_counts_equal_the_tokenizer(emb: StaticEmbedder, tmp_path: Path) -> None:
    texts = _texts(4, 500)
    want = [len(e.ids) for e in emb._span_tok.encode_batch(texts, add_special_tokens=False)]
    fresh = _fresh(emb)
    assert fresh.token_counts(texts) == want  # cold
    assert fresh.token_counts(texts) == want  # warm
    assert fresh.token_counts([]) == []


@pytest.mark.parametrize("bound", [50, 200_000])
def test_pieces_counted_first_give_the_same_ids_and_bits(
    emb: StaticEmbedder, monkeypatch: pytest.MonkeyPatch, bound: int
) -> None:
    """The chunker counts lines before their chunk is encoded: the encoder then reads the
    counted pieces' ids (all, some or none of a batch's) instead of tokenising them again."""
    monkeypatch.setattr(static_mod, "_MAX_WORDS", bound)
    texts = _texts(11, 600)
    want = _old_encode(emb, _OldWordIds(emb._span_tok), texts)
    want_ids = [e.ids for e in emb._span_tok.encode_batch(texts, add_special_tokens=False)]
    fresh = _fresh(emb)
    assert fresh._words is not None
    lines = [line for t in texts[:400:2] for line in t.splitlines()]
    fresh.token_counts(lines)  # some pieces counted, many not
    assert len(fresh._words._counted) > 0
    for start in range(0, len(texts), 53):
        part = texts[start : start + 53]
        fresh.token_counts(part[: len(part) // 2])
        assert fresh.encode(part).tobytes() == want[start : start + 53].tobytes()
    counted = _fresh(emb)
    counted.token_counts(texts)  # every piece counted before
    assert counted._words is not None and counted._words(texts) == want_ids


def test_a_tokenizer_without_the_separator_token_tokenises_pieces_one_by_one(
    emb: StaticEmbedder,
) -> None:
    fresh = _fresh(emb)
    words = fresh._words
    assert words is not None
    words._sep = None
    assert words(["solar"]) == [emb._span_tok.encode("solar", add_special_tokens=False).ids]
    texts = ["a", "solar panels", "x|y", *_texts(6, 100)]
    want = [e.ids for e in emb._span_tok.encode_batch(texts, add_special_tokens=False)]
    assert words(texts) == want
