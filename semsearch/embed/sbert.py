"""The reference embedder: a sentence-transformers model on the CPU (imports torch lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..util import first_line
from .base import Embedder, Kind
from .models import dim_from_config, max_tokens_from_config, resolve_model


class SentenceTransformerEmbedder(Embedder):
    """The reference embedder: a sentence-transformers model on the CPU."""

    def __init__(self, model: str | None = None, *, batch_size: int = 32) -> None:
        self.name, self.location = resolve_model(model)
        self.batch_size = batch_size
        max_tokens = max_tokens_from_config(Path(self.location))
        if max_tokens is not None:
            self.max_tokens = max_tokens
        dim = dim_from_config(Path(self.location))
        if dim is not None:
            self.dim = dim  # known without loading torch
        else:
            self.dim = int(self._model.get_embedding_dimension())

    @cached_property
    def _model(self) -> Any:
        import logging
        import os

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        for noisy in ("sentence_transformers", "transformers", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()

            model = SentenceTransformer(self.location, device="cpu")
        except Exception as exc:  # any loader failure becomes one line naming the model
            raise ModelError(f"cannot load model {self.name!r}: {first_line(exc)}") from None
        self.max_tokens = int(model.max_seq_length or self.max_tokens + 2) - 2
        return model

    @cached_property
    def _tokenizer(self) -> Any:
        """The fast tokenizer from ``tokenizer.json`` when present: no torch needed to chunk."""
        path = Path(self.location) / "tokenizer.json"
        if path.is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(path))
            tok.no_truncation()
            tok.no_padding()
            return tok
        return None

    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._model
        prompt = (getattr(model, "prompts", None) or {}).get(kind) or None
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
            prompt=prompt,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        tok = self._tokenizer
        if tok is not None:
            encs = tok.encode_batch(list(texts), add_special_tokens=False)
            return [[(int(a), int(b)) for a, b in e.offsets] for e in encs]
        hf = self._model.tokenizer
        out = []
        for t in texts:
            enc = hf(t, add_special_tokens=False, return_offsets_mapping=True)
            out.append([(int(a), int(b)) for a, b in enc["offset_mapping"]])
        return out
