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
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
            id_lists = [self._known(ids[: self.max_tokens]) for ids in self._words(clipped)]
        else:
            encs = self._tok.encode_batch_fast(clipped, add_special_tokens=False)
            id_lists = [self._known(e.ids) for e in encs]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(i) for i in id_lists], out=indptr[1:])
        ids = np.concatenate(id_lists) if indptr[-1] else np.zeros(0, dtype=np.int64)
        # Token counts per text as a sparse matrix, times the table: each text's sum reads
        # its distinct tokens once, in id order, so it is the same whatever else is in the
        # batch; 13x faster than gathering every token's row (measured). No known token: zero.
        counts = sparse.csr_matrix(
            (np.ones(len(ids), dtype=np.float32), ids, indptr), shape=(n, len(self._table))
        )
        counts.sum_duplicates()
        out = np.asarray(counts @ self._table, dtype=np.float32)
        return normalize(out)

    def _known(self, token_ids: Sequence[int]) -> np.ndarray:
        """The ids, truncated already, without [UNK] (model2vec's order: cut, then drop)."""
        ids = np.asarray(token_ids, dtype=np.int64)
        return ids if self._unk is None else ids[ids != self._unk]

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encs = self._span_tok.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encs]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Token counts from the per-word memo the encoder fills too, so the chunker and
        the encoder tokenise a corpus's words once between them (the same numbers as
        :meth:`token_spans`, tested)."""
        if self._words is None:
            encs = self._span_tok.encode_batch_fast(list(texts), add_special_tokens=False)
            return [len(e.ids) for e in encs]
        return self._words.counts(texts)


#: Control characters Python's ``str.split`` treats as whitespace but BERT's cleaning deletes.
_SPLIT_DIFFERS = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
#: Distinct words remembered; past it the memo starts over (results never change).
_MAX_WORDS = 200_000
#: A text's pieces: runs between whitespace and ASCII punctuation, and each ASCII punctuation
#: mark alone. BERT's pre-tokeniser always isolates those marks and its normaliser leaves them
#: as they are, so a text's tokens are its pieces' tokens in order; and code repeats pieces
#: (``foo``, ``(``) far more than whitespace-separated words (``foo(bar,``).
_PIECE = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


def _splits_on_whitespace(tok: Tokenizer) -> bool:
    """BERT's normaliser and pre-tokeniser never join or split across whitespace, so a text's
    tokens are its words' tokens, one word after another."""
    spec = json.loads(tok.to_str())
    kinds = (
        (spec.get("normalizer") or {}).get("type"),
        (spec.get("pre_tokenizer") or {}).get("type"),
    )
    return kinds == ("BertNormalizer", "BertPreTokenizer")


class _WordIds:
    """Token ids of texts, memoised per piece (``_PIECE``): a corpus repeats its words, and a
    dict lookup is 5x cheaper than tokenising them again (measured on SciFact).

    The ids equal the tokenizer's on the whole text (tested against it, hostile text
    included); a text holding a control character the two splits disagree on goes to the
    tokenizer whole.
    """

    def __init__(self, tok: Tokenizer) -> None:
        self._tok = tok
        self._memo: dict[str, list[int]] = {}
        # Added tokens ([CLS], [MASK]...) are matched in the raw text before any splitting:
        # a text holding one (in any case) is tokenised whole.
        added = sorted(t.content for t in tok.get_added_tokens_decoder().values() if t.content)
        self._added = re.compile("|".join(map(re.escape, added)), re.IGNORECASE) if added else None

    def _whole(self, text: str) -> bool:
        """Whether ``text`` must be tokenised whole rather than piece by piece."""
        return bool(_SPLIT_DIFFERS.search(text) or (self._added and self._added.search(text)))

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        split, table, whole = self._lookup(texts)
        whole_ids = iter(whole)
        out: list[list[int]] = []
        for ws in split:
            if ws is None:
                out.append(next(whole_ids))
                continue
            ids: list[int] = []
            for got in map(table.__getitem__, ws):
                ids.extend(got)
            out.append(ids)
        return out

    def counts(self, texts: Sequence[str]) -> list[int]:
        """How many ids each text has (the length of what calling this gives)."""
        split, table, whole = self._lookup(texts)
        whole_counts = iter([len(ids) for ids in whole])
        return [
            next(whole_counts) if ws is None else sum(map(len, map(table.__getitem__, ws)))
            for ws in split
        ]

    def _lookup(
        self, texts: Sequence[str]
    ) -> tuple[list[list[str] | None], dict[str, list[int]], list[list[int]]]:
        """Each text's words (None: tokenised whole), a table holding every word's ids,
        and the ids of the texts tokenised whole, in order."""
        memo = self._memo
        split = [None if self._whole(t) else _PIECE.findall(t) for t in texts]
        new = list(set(itertools.chain.from_iterable(ws for ws in split if ws)).difference(memo))
        made = self._tok.encode_batch_fast(new, add_special_tokens=False) if new else ()
        fresh = {w: e.ids for w, e in zip(new, made, strict=True)}
        whole = [t for t, ws in zip(texts, split, strict=True) if ws is None]
        encs = self._tok.encode_batch_fast(whole, add_special_tokens=False) if whole else ()
        whole_ids = [e.ids for e in encs]
        if len(memo) + len(fresh) > _MAX_WORDS:
            # Start over, keeping this batch's words: the table below must hold them all.
            kept = {w: memo[w] for ws in split if ws for w in ws if w in memo}
            memo = self._memo = kept
        memo.update(fresh)
        return split, memo, whole_ids
