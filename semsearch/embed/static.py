"""The static model: one vector per token, averaged. NumPy and ``tokenizers`` only.

A static model (model2vec) is a table of token vectors distilled from a transformer
(:mod:`.static_distill`). Embedding a text is a tokenisation, a gather and a sum, so it runs
hundreds of times faster than the transformer, at lower quality. It is stored as a plain
``.npy`` table plus the tokenizer JSON, so querying needs neither torch nor model2vec, and
nothing is unpickled.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import ModelError
from ..util import first_line, read_json_object
from .base import Embedder, Kind, normalize
from .models import STATIC_MODEL

if TYPE_CHECKING:
    from tokenizers import Tokenizer

VECTORS_FILE = "vectors.npy"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "semsearch-static.json"
#: Bump when the stored files or the inference change meaning; older distillations are redone.
FORMAT_VERSION = 1


class StaticEmbedder(Embedder):
    """Mean of token vectors, L2-normalised, as model2vec computes it (to fp16 rounding).

    A text is read up to the teacher's token limit (model2vec's default is 512), so the two
    models read the same part of a long query and the truncation warning holds for both.

    Each text is reduced on its own rows, in a fixed order, so its vector is bit-for-bit the
    same alone or in any batch. Chunking uses the same tokenizer and token limit as the
    teacher, so a tree chunks identically under both models.
    """

    name = STATIC_MODEL

    def __init__(self, model_dir: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(model_dir)
        meta = read_json_object(path / META_FILE)
        if meta is None or meta.get("format") != FORMAT_VERSION:
            raise ModelError(f"{path}: not a static model of this semsearch version")
        try:
            # float32 on disk and memory-mapped: a cold query reads only the rows it needs.
            table = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
            tok = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        except Exception as exc:  # a damaged cache is one line, naming the directory
            raise ModelError(f"cannot load the static model at {path}: {first_line(exc)}") from None
        if table.ndim != 2 or table.dtype != np.float32 or table.shape[0] != tok.get_vocab_size():
            raise ModelError(f"{path}: the static vectors do not match the tokenizer")
        self.model_dir = path
        self.meta = meta
        self._table = table
        self.dim = int(table.shape[1])
        self.max_tokens = int(meta["max_tokens"])
        self.precision = "fp32"
        self._cache_tag = f"static{FORMAT_VERSION}-{meta['digest'][:12]}"
        self._max_chars = int(meta["max_chars"])
        unk = meta.get("unk_id")
        self._unk = None if unk is None else int(unk)
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_tokens)
        self._tok = tok
        self._span_tok = Tokenizer.from_str(tok.to_str())
        self._span_tok.no_truncation()
        self._words = _WordIds(self._span_tok) if _splits_on_whitespace(tok) else None
        self.counts_add_up = self._words is not None

    @property
    def cache_tag(self) -> str:
        """Names the exact table, so vectors of another distillation are never reused."""
        return self._cache_tag

    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        from scipy import sparse

        # model2vec cuts the characters first (max tokens x the median token length), which
        # also bounds the tokeniser's work on a huge text.
        clipped = [t[: self._max_chars] for t in texts]
        if self._words is not None:
            ids, ptr = self._words.tokens(clipped)
        else:
            ids, ptr = _tokenised(self._tok, clipped)
        # Each text's first max_tokens ids, then without [UNK] (model2vec's order: cut, drop).
        keep = np.arange(len(ids)) - np.repeat(ptr[:-1], np.diff(ptr)) < self.max_tokens
        if self._unk is not None:
            keep &= ids != self._unk
        indptr = _offsets(keep)[ptr]
        # Token counts per text as a sparse matrix, times the table: each text's sum reads
        # its distinct tokens once, in id order, so it is the same whatever else is in the
        # batch; 13x faster than gathering every token's row (measured). No known token: zero.
        counts = sparse.csr_matrix(
            (np.ones(int(indptr[-1]), dtype=np.float32), ids[keep], indptr),
            shape=(n, len(self._table)),
        )
        counts.sum_duplicates()
        out = np.asarray(counts @ self._table, dtype=np.float32)
        return normalize(out)

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encs = self._span_tok.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encs]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Token counts from a per-piece memo of counts (the same numbers as
        :meth:`token_spans`, tested)."""
        if self._words is None:
            encs = self._span_tok.encode_batch_fast(list(texts), add_special_tokens=False)
            return [len(e.ids) for e in encs]
        return self._words.counts(texts)


#: Control characters Python's ``str.split`` treats as whitespace but BERT's cleaning deletes.
_SPLIT_DIFFERS = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
#: Distinct words (and pieces) remembered; past it the memo starts over (results never change).
_MAX_WORDS = 200_000
#: New pieces tokenised per joined string (one Rust call tokenises the strings on all cores).
_JOIN = 2048
#: Joins new pieces to tokenise them together: ASCII punctuation, so the pre-tokeniser always
#: isolates it and each separator is one token. Only the piece ``|`` itself makes that token
#: too (runs hold no ASCII punctuation, and none of the characters that become one lower-cased
#: or without accents, checked over Unicode, becomes ``|``), so its group has one separator
#: token too many and is tokenised one by one.
_SEP = "|"
#: A text's pieces: runs between whitespace and ASCII punctuation, and each ASCII punctuation
#: mark alone. BERT's pre-tokeniser always isolates those marks and its normaliser leaves them
#: as they are, so a text's tokens are its pieces' tokens in order; and code repeats pieces
#: (``foo``, ``(``) far more than whitespace-separated words (``foo(bar,``).
_PIECE = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


class Tokens(NamedTuple):
    """The token ids of a batch of texts, flat: text ``i``'s are ``ids[ptr[i]:ptr[i + 1]]``."""

    ids: np.ndarray  # int64
    ptr: np.ndarray  # int64, one more than the texts


def _splits_on_whitespace(tok: Tokenizer) -> bool:
    """BERT's normaliser and pre-tokeniser never join or split across whitespace, so a text's
    tokens are its words' tokens, one word after another."""
    spec = json.loads(tok.to_str())
    kinds = (
        (spec.get("normalizer") or {}).get("type"),
        (spec.get("pre_tokenizer") or {}).get("type"),
    )
    return kinds == ("BertNormalizer", "BertPreTokenizer")


def _tokenised(tok: Tokenizer, texts: Sequence[str]) -> Tokens:
    """The tokenizer's ids of each text, flat."""
    encs = tok.encode_batch_fast(list(texts), add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encs), dtype=np.int64)
    return Tokens(ids, _offsets(lengths))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]``: where each run starts in the runs laid end to end."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


class _Memo:
    """Token ids of strings, remembered: string ``s`` gets a number ``k``, and its ids are
    ``ids[ptr[k]:ptr[k + 1]]``, so the ids of many strings are one gather, with no Python
    loop over them. Bounded to ``_MAX_WORDS`` strings: past it, it starts over."""

    def __init__(self, learn: Callable[[list[str]], Tokens]) -> None:
        self._learn = learn  # the ids of strings not seen yet
        self.clear()

    def clear(self) -> None:
        self._index: dict[str, int] = {}
        # Grown by doubling, so learning a few keys never copies the whole memo.
        self._ptr = np.zeros(1024, dtype=np.int64)  # valid up to [len(self._index)]
        self._ids = np.zeros(4096, dtype=np.int64)  # valid up to [self._ptr[len(index)]]

    def numbers(self, keys: list[str]) -> np.ndarray:
        """Each key's number, the new ones learnt first (in order of first appearance)."""
        return np.array(self.listed(keys), dtype=np.int64).reshape(len(keys))

    def listed(self, keys: list[str]) -> list[int]:
        """:meth:`numbers` as a list."""
        got = list(map(self._index.get, keys))
        if None in got:
            # No Python loop over the keys (a new tree makes most of them new): C-level maps.
            missed = map(operator.is_, got, itertools.repeat(None))
            new = list(dict.fromkeys(itertools.compress(keys, missed)))
            if self._index and len(self._index) + len(new) > _MAX_WORDS:
                self.clear()  # start over; the keys all go in again
                return self.listed(keys)
            self._add(new, self._learn(new))
            return list(map(self._index.__getitem__, keys))
        return got  # type: ignore[return-value]  # no None

    def _add(self, new: list[str], learnt: Tokens) -> None:
        base = len(self._index)
        end = int(self._ptr[base])
        size = end + len(learnt.ids)
        if size > len(self._ids):
            self._ids = np.resize(self._ids, max(size, 2 * len(self._ids)))
        if base + len(new) + 1 > len(self._ptr):
            self._ptr = np.resize(self._ptr, max(base + len(new) + 1, 2 * len(self._ptr)))
        self._ids[end:size] = learnt.ids
        self._ptr[base + 1 : base + len(new) + 1] = end + learnt.ptr[1:]
        self._index.update(zip(new, range(base, base + len(new)), strict=True))

    def gather(self, numbers: np.ndarray, groups: np.ndarray) -> Tokens:
        """The ids of ``numbers`` laid end to end, grouped: group ``g`` is
        ``numbers[groups[g]:groups[g + 1]]``."""
        starts = self._ptr[numbers]
        lengths = self._ptr[numbers + 1] - starts
        ends = _offsets(lengths)
        at = np.arange(ends[-1], dtype=np.int64) + np.repeat(starts - ends[:-1], lengths)
        return Tokens(self._ids[at], ends[groups])


class _WordIds:
    """Token ids of texts, memoised per whitespace word, and a new word's per piece
    (``_PIECE``): a corpus repeats its words, code repeats its pieces (``foo``, ``(``) far
    more than its words (``foo(bar,``), and a lookup is far cheaper than tokenising again.
    ``str.split`` finds words at C speed; only new words are cut into pieces, and only new
    pieces are tokenised, together in a few strings (one Rust call on all cores), joined by
    ``_SEP``, whose tokens are counted (one by one if the count disagrees).

    The ids equal the tokenizer's on the whole text (tested against it, hostile text
    included); a text holding a control character the two splits disagree on, or an added
    token, goes to the tokenizer whole.
    """

    def __init__(self, tok: Tokenizer) -> None:
        self._tok = tok
        added = [t.content for t in tok.get_added_tokens_decoder().values() if t.content]
        # Added tokens ([CLS], [MASK]...) are matched in the raw text before any splitting:
        # a text holding one (in any case) is tokenised whole.
        marks = "|".join(re.escape(a) for a in sorted(added))
        self._added = re.compile(marks, re.IGNORECASE).search if marks else None
        # The separator between new pieces, if it is one token (else one by one).
        sep = tok.encode(_SEP, add_special_tokens=False).ids
        self._sep = sep[0] if len(sep) == 1 else None
        self._pieces = _Memo(self._tokenise_pieces)
        self._words = _Memo(self._tokenise_words)
        self._sizes: dict[str, int] = {}  # a piece's token count, for counts()
        # Ids of the pieces counts() tokenised: the encoder reads them rather than tokenise
        # the same new pieces again (the chunker counts a text's lines before it is encoded).
        self._counted: dict[str, list[int]] = {}

    def clear(self) -> None:
        """Forget every word and piece (the results stay the same; only the speed changes)."""
        self._words.clear()
        self._pieces.clear()
        self._sizes.clear()
        self._counted.clear()

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, as lists (what ``Tokenizer.encode`` gives)."""
        ids, ptr = self.tokens(texts)
        return [ids[a:b].tolist() for a, b in itertools.pairwise(ptr.tolist())]

    def counts(self, texts: Sequence[str]) -> list[int]:
        """How many ids each text has (the length of what calling this gives), from a memo
        of its own: each piece's count, in a plain dict. The chunker asks a few lines at a
        time, often with a new word, where the arrays' numpy calls cost more than they save
        (phase 1's token counts took 1.7x the CPU on them). A new piece's ids are kept
        too, for the encoder to read instead of tokenising the piece again."""
        whole_at = self._whole_at(texts)
        sizes = self._sizes
        split = [_PIECE.findall(t) for t in texts]
        for i in whole_at:
            split[i] = []
        new = set(itertools.chain.from_iterable(split)).difference(sizes)
        if len(sizes) + len(new) > _MAX_WORDS:
            sizes.clear()  # start over; this batch's pieces all go in again
            self._counted.clear()
            new = set(itertools.chain.from_iterable(split))
        if new:
            ordered = list(new)
            made = [e.ids for e in self._tok.encode_batch_fast(ordered, add_special_tokens=False)]
            sizes.update(zip(ordered, map(len, made), strict=True))
            self._counted.update(zip(ordered, made, strict=True))
        counts = [sum(map(sizes.__getitem__, ps)) for ps in split]
        if whole_at:
            ptr = _tokenised(self._tok, [texts[i] for i in whole_at]).ptr
            for k, i in enumerate(whole_at):
                counts[i] = int(ptr[k + 1] - ptr[k])
        return counts

    def tokens(self, texts: Sequence[str]) -> Tokens:
        """The ids of every text, flat, from the memo (new words tokenised first)."""
        words, per_text, whole = self._split(texts)
        ids, ptr = self._words.gather(words, per_text)
        if whole:  # rare: splice in the texts tokenised whole, in their places
            parts = [ids[a:b] for a, b in itertools.pairwise(ptr.tolist())]
            for i, got in whole.items():
                parts[i] = got
            ids = np.concatenate(parts)
            ptr = _offsets(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
        return Tokens(ids, ptr)

    def _split(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Every word's number in the memo, flat; where each text's words start (one more
        than the texts); and the ids of the texts tokenised whole, by position."""
        whole_at, split = self._words_of(texts)
        words = self._words.numbers(list(itertools.chain.from_iterable(split)))
        per_text = _offsets(np.fromiter(map(len, split), dtype=np.int64, count=len(split)))
        whole: dict[int, np.ndarray] = {}
        if whole_at:
            ids, ptr = _tokenised(self._tok, [texts[i] for i in whole_at])
            whole = {i: ids[ptr[k] : ptr[k + 1]] for k, i in enumerate(whole_at)}
        return words, per_text, whole

    def _words_of(self, texts: Sequence[str]) -> tuple[list[int], list[list[str]]]:
        """Which texts go to the tokenizer whole, and every text's words (none for those)."""
        whole_at = self._whole_at(texts)
        split = [t.split() for t in texts]
        for i in whole_at:
            split[i] = []
        return whole_at, split

    def _whole_at(self, texts: Sequence[str]) -> list[int]:
        """Where the texts are that go to the tokenizer whole."""
        return [
            i
            for i, t in enumerate(texts)
            if _SPLIT_DIFFERS.search(t) or (self._added and self._added(t))
        ]

    def _tokenise_words(self, words: list[str]) -> Tokens:
        """New words' ids: their pieces' ids, one piece after another."""
        split = [_PIECE.findall(w) for w in words]
        pieces = self._pieces.numbers(list(itertools.chain.from_iterable(split)))
        per_word = _offsets(np.fromiter(map(len, split), dtype=np.int64, count=len(split)))
        return self._pieces.gather(pieces, per_word)

    def _tokenise_pieces(self, pieces: list[str]) -> Tokens:
        """New pieces' ids: those :meth:`counts` tokenised from its dict, the others from the
        tokenizer."""
        have = list(map(self._counted.get, pieces))
        missing = [p for p, ids in zip(pieces, have, strict=True) if ids is None]
        if len(missing) == len(pieces):
            return self._tokenised_pieces(pieces)
        fresh: Iterator[list[int]] = iter(())
        if missing:
            got = self._tokenised_pieces(missing)
            flat, ends = got.ids.tolist(), got.ptr.tolist()
            fresh = iter([flat[a:b] for a, b in itertools.pairwise(ends)])
        rows = [next(fresh) if ids is None else ids for ids in have]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64)
        return Tokens(ids, _offsets(lengths))

    def _tokenised_pieces(self, pieces: list[str]) -> Tokens:
        """Pieces' ids from the tokenizer, many pieces to a string."""
        groups = [pieces[i : i + _JOIN] for i in range(0, len(pieces), _JOIN)]
        joined = [_SEP.join(g) for g in groups] if self._sep is not None else []
        encs = self._tok.encode_batch_fast(joined, add_special_tokens=False)
        lengths, ids = [], []
        for k, group in enumerate(groups):
            got = np.asarray(encs[k].ids if encs else [], dtype=np.int64)
            cuts = np.flatnonzero(got == self._sep)
            if encs and len(cuts) == len(group) - 1:
                lengths.append(np.diff(cuts, prepend=-1, append=len(got)) - 1)
                ids.append(got[got != self._sep])
            else:  # no separator, or the piece "|" in the group: one by one
                one_by_one = _tokenised(self._tok, group)
                lengths.append(np.diff(one_by_one.ptr))
                ids.append(one_by_one.ids)
        return Tokens(np.concatenate(ids), _offsets(np.concatenate(lengths)))
