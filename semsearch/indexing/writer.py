"""The one place an index is opened for writing.

Every writer (``SemanticIndex`` writes, ``index_paths``, refresh/update/watch/``query
--refresh``, ``optimize``, the Ray engine) resolves its settings, loads its embedder and
makes its embedding cache and engine here, so backend and index type are always the
index's own unless asked, and an index's recorded model is loaded only when semsearch
knows it or the caller names it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import config as _config
from ..embed import (
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    STATIC_MODEL,
    Embedder,
    check_recorded_model,
    load_embedder,
    load_recorded,
)
from ..errors import UsageError
from ..store.embedding_cache import EmbeddingCache, encode_cached
from ..store.manifest import Manifest
from .settings import Requested, Settings

if TYPE_CHECKING:
    from .engine import Engine

ENGINES = ("local", "ray")


class Writer:
    """An index opened for writing: its settings, and its embedder, cache and engine, each
    made on first use (a write that embeds nothing never loads the model or opens the cache).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | Callable[[], Embedder],
        *,
        cache: EmbeddingCache | None = None,
        engine: str = "local",
        ray_address: str | None = None,
        ray_workers: int | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}: choose local or ray")
        self.settings = settings
        self._embedder = embedder if isinstance(embedder, Embedder) else None
        self._load = None if isinstance(embedder, Embedder) else embedder
        self._cache = cache
        self._kind, self._address, self._workers = engine, ray_address, ray_workers
        self._engine: Engine | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            assert self._load is not None
            self._embedder = self._load()
        return self._embedder

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(_config.load().embedding_cache)
        return self._cache

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> Engine:
        embedder = self.embedder
        if self._kind == "ray":
            from .ray import RayEngine

            cfg = _config.load()
            model = None if embedder.name == DEFAULT_MODEL else embedder.name
            return RayEngine(
                model,
                address=self._address,
                num_workers=self._workers,
                make_embedder=functools.partial(
                    load_embedder,
                    model,
                    embedder.precision,
                    runtime=cfg.runtime,
                    model_cache=cfg.model_cache,
                ),
                expect=(embedder.name, embedder.precision, embedder.dim),
                embedding_cache=cfg.embedding_cache,
            )
        from .engine import LocalEngine  # the chunking and reading a search never needs

        if embedder.name == STATIC_MODEL:
            # Storing a static vector (hash, SQLite row) costs more than computing it again:
            # 2.3 s of a 44 s phase-1 build (profiled), so the static model skips the cache,
            # and a large build reads, chunks and embeds in worker processes.
            from .pipeline import static_engine

            return static_engine(embedder)
        return LocalEngine(embedder, functools.partial(_embed, embedder, self.cache))

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()


def _embed(
    embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str]
) -> tuple[np.ndarray, int]:
    return encode_cached(embedder, texts, cache)


def open_writer(
    where: Path,
    manifest: Manifest | None,
    requested: Requested | None = None,
    *,
    embedder: Embedder | None = None,
    cache: EmbeddingCache | None = None,
    rebuild: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
) -> Writer:
    """Open the index at ``where`` (whose live manifest is ``manifest``, None when new) for
    writing under ``requested`` settings: anything not asked is the index's own."""
    requested = requested or Requested()
    kw: dict[str, Any] = {
        "cache": cache, "engine": engine, "ray_address": ray_address, "ray_workers": ray_workers
    }  # fmt: skip
    if embedder is None and manifest is not None and requested.model is None:
        if requested.precision in (None, manifest.precision):
            # The index's own model: settings from its manifest, the model loaded when needed.
            own = requested.resolve(
                manifest, manifest.model, manifest.precision, manifest.dim, rebuild=rebuild
            )
            return Writer(own, functools.partial(_load_recorded, where, manifest), **kw)
        check_recorded_model(manifest.model, where)
    if embedder is None:
        embedder = _load(
            requested.model_for(manifest), requested.precision_for(manifest, DEFAULT_PRECISION)
        )
    settings = requested.resolve(
        manifest,
        embedder.name,
        embedder.precision,
        embedder.dim,
        rebuild=rebuild,
        max_tokens=embedder.max_tokens,
    )
    return Writer(settings, embedder, **kw)


def _load(model: str | None, precision: str) -> Embedder:
    cfg = _config.load()
    return load_embedder(model, precision, runtime=cfg.runtime, model_cache=cfg.model_cache)


def _load_recorded(where: Path, manifest: Manifest) -> Embedder:
    """The model the index records (:func:`semsearch.embed.load_recorded`), by :func:`_load`."""
    return load_recorded(manifest.model, manifest.precision, manifest.dim, where, _load)


def engine_maker(where: Path, embedder: Embedder | None = None) -> Callable[[Manifest], Engine]:
    """For refresh, watch and optimize: the local engine of the index's own settings, made
    when a batch needs one; the model is loaded and the cache opened once, on first use."""
    opened: list[Writer] = []

    def make(manifest: Manifest) -> Engine:
        if opened:
            first = opened[0]
            writer = open_writer(where, manifest, embedder=first.embedder, cache=first.cache)
        else:
            writer = open_writer(where, manifest, embedder=embedder)
            opened.append(writer)
        return writer.engine

    return make
