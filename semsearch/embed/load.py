"""Choosing an embedder: ONNX Runtime when it can be used ("auto"), sentence-transformers else."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .. import config
from ..errors import MissingDependencyError, UsageError
from .base import DEFAULT_PRECISION, Embedder, check_precision
from .sbert import SentenceTransformerEmbedder


def load_embedder(
    model: str | None = None,
    precision: str = DEFAULT_PRECISION,
    *,
    runtime: str | None = None,
    model_cache: Path | None = None,
) -> Embedder:
    """The embedder for a model, shared per process so a model loads once.

    ``runtime="auto"`` uses ONNX Runtime, the fast path that needs no torch once the model has
    been exported (on first use, cached under ``model_cache``), and falls back to
    sentence-transformers (the reference) for fp32 when ONNX cannot be used. ``int8`` is
    ONNX-only. Unset ``runtime`` and ``model_cache`` come from :mod:`semsearch.config`.
    """
    if runtime is None or model_cache is None:
        cfg = config.load()
        runtime = runtime or cfg.runtime
        model_cache = model_cache or cfg.model_cache
    return _load(model, precision, runtime, model_cache)


@lru_cache(maxsize=8)
def _load(model: str | None, precision: str, runtime: str, model_cache: Path) -> Embedder:
    check_precision(precision)
    if runtime not in config.RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}: choose one of {', '.join(config.RUNTIMES)}")
    if runtime == "torch":
        if precision != "fp32":
            raise UsageError("int8 precision needs the ONNX runtime; use --precision fp32")
        return SentenceTransformerEmbedder(model)
    from .onnx_runtime import OnnxEmbedder

    try:
        return OnnxEmbedder(model, precision=precision, model_cache=model_cache)
    except MissingDependencyError:
        if runtime == "onnx" or precision != "fp32":
            raise
        return SentenceTransformerEmbedder(model)
