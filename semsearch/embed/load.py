"""Choosing an embedder: ONNX Runtime when it can be used ("auto"), sentence-transformers else;
``static`` for the static model distilled from the bundled one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from .. import config
from ..errors import IndexFormatError, MissingDependencyError, UsageError
from .base import DEFAULT_PRECISION, Embedder, check_precision
from .models import STATIC_MODEL, STATIC_TEACHER, max_tokens_from_config, resolve_model
from .sbert import SentenceTransformerEmbedder

log = logging.getLogger("semsearch")


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


def check_recorded_model(model: str, where: object) -> None:
    """An index names the model it was built with, but a file is not the user: loading any
    directory or hub name it says would run code and data the user never chose. Only
    models semsearch knows are loaded on an index's word."""
    from . import models

    if model not in models.KNOWN_MODELS:
        raise IndexFormatError(
            f"index at {where} was built with model {model!r:.200}, which semsearch loads "
            "only when you name it: pass that model explicitly to search this index"
        )


def load_recorded(
    model: str,
    precision: str,
    dim: int,
    where: object,
    load: Callable[[str, str], Embedder] = load_embedder,
) -> Embedder:
    """The model an index at ``where`` records, loaded (by ``load``) on the index's word only
    if semsearch knows it (D25), and only if it still gives vectors of the index's ``dim``.
    Light to import: a query starts loading it before the rest of what opening an index
    needs (``api.start_loading_model``)."""
    check_recorded_model(model, where)
    embedder = load(model, precision)
    if embedder.dim != dim:
        raise IndexFormatError(
            f"model {model} now gives {embedder.dim}-dimensional vectors but the "
            f"index at {where} holds {dim}; rebuild it to use them"
        )
    return embedder


@lru_cache(maxsize=8)
def _load(model: str | None, precision: str, runtime: str, model_cache: Path) -> Embedder:
    check_precision(precision)
    if model == STATIC_MODEL:
        return _load_static(model_cache)
    if runtime not in config.RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}: choose one of {', '.join(config.RUNTIMES)}")
    if runtime == "torch":
        if precision != "fp32":
            raise UsageError("int8 precision needs the ONNX runtime; use --precision fp32")
        return SentenceTransformerEmbedder(model)
    from .onnx_runtime import OnnxEmbedder

    _announce_first_export(model, precision, model_cache)
    try:
        return OnnxEmbedder(model, precision=precision, model_cache=model_cache)
    except MissingDependencyError:
        if runtime == "onnx" or precision != "fp32":
            raise
        return SentenceTransformerEmbedder(model)


def _load_static(model_cache: Path) -> Embedder:
    """The static model, whatever the runtime and precision: they choose how a transformer
    runs, and the static model has none. Distilled from its teacher on first use."""
    from .static import StaticEmbedder
    from .static_distill import ensure_static

    identity, location = resolve_model(STATIC_TEACHER)
    max_tokens = max_tokens_from_config(Path(location)) or Embedder.max_tokens
    return StaticEmbedder(ensure_static(identity, location, model_cache, max_tokens=max_tokens))


def _announce_first_export(model: str | None, precision: str, model_cache: Path) -> None:
    """The one-time export and quantisation take seconds with nothing to show: say so."""
    from .onnx_export import MODEL_FILE, onnx_model_dir

    try:
        identity, _ = resolve_model(model)
    except Exception:  # the loader reports a bad model itself, in one line
        return
    if not (onnx_model_dir(identity, precision, model_cache) / MODEL_FILE).is_file():
        log.info("preparing the model for fast inference (once, about 10 s) …")
