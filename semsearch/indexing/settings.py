"""What a build is asked to do, with which settings, and what it reports.

An existing index keeps the settings it was built with. A request that names different
ones is refused, unless it asks to rebuild, because silently starting over under new
settings would throw away every document indexed before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..ingest.chunk import DEFAULT_CHUNK_TOKENS
from ..ingest.document import Document
from ..store.manifest import Manifest

Progress = Callable[[int, int], None]
Item = Path | Document


class ChunkParams(NamedTuple):
    chunk_tokens: int
    overlap: int


@dataclass(frozen=True)
class Settings:
    """What decides the vectors and their layout; old vectors are reused only if these match."""

    model: str
    precision: str
    dim: int
    chunk_tokens: int
    overlap: int
    backend: str
    index_type: str = "auto"

    @property
    def chunking(self) -> ChunkParams:
        return ChunkParams(self.chunk_tokens, self.overlap)

    def differences(self, m: Manifest) -> list[str]:
        """The settings that differ from those the index at ``m`` was built with."""
        pairs = [
            ("model", self.model, m.model),
            ("precision", self.precision, m.precision),
            ("chunk-tokens", self.chunk_tokens, m.chunk_tokens),
            ("overlap", self.overlap, m.overlap),
        ]
        return [f"{name} {old} (asked: {new})" for name, new, old in pairs if new != old]


@dataclass(frozen=True)
class Requested:
    """Settings a caller asked for; ``None`` means "the index's own, or the default"."""

    model: str | None = None
    precision: str | None = None
    chunk_tokens: int | None = None
    overlap: int | None = None
    backend: str = "auto"
    index_type: str | None = None

    def model_for(self, m: Manifest | None) -> str | None:
        return self.model if self.model is not None or m is None else m.model

    def precision_for(self, m: Manifest | None, default: str) -> str:
        if self.precision is not None:
            return self.precision
        return m.precision if m is not None else default

    def resolve(
        self,
        m: Manifest | None,
        model: str,
        precision: str,
        dim: int,
        *,
        rebuild: bool,
        max_tokens: int | None = None,
    ) -> Settings:
        """Final settings: the index's own for anything not asked; a conflict is an error
        naming the setting and how to rebuild, unless ``rebuild``."""
        chunk_tokens = self.chunk_tokens
        overlap = self.overlap
        index_type = self.index_type
        backend = self.backend
        if m is not None:
            # Backend and index type are the index's own unless asked: "auto" would pick
            # faiss again for an index built with --backend numpy.
            backend = m.backend if backend == "auto" else backend
            chunk_tokens = m.chunk_tokens if chunk_tokens is None else chunk_tokens
            overlap = m.overlap if overlap is None else overlap
            if index_type is None:
                index_type = str(m.index_params.get("requested", "auto"))
        settings = Settings(
            model=model,
            precision=precision,
            dim=dim,
            chunk_tokens=_default_chunk_tokens(max_tokens)
            if chunk_tokens is None
            else chunk_tokens,
            overlap=0 if overlap is None else overlap,
            backend=backend,
            index_type=index_type or "auto",
        )
        if m is not None and not rebuild:
            diff = settings.differences(m)
            if diff:
                raise UsageError(
                    f"the index was built with {'; '.join(diff)}; drop the option to keep the "
                    "index's settings, or add --rebuild to re-embed every document under the "
                    "new ones"
                )
        return settings


def _default_chunk_tokens(max_tokens: int | None) -> int:
    """The default budget, or less for a model that reads fewer tokens."""
    if max_tokens is None or max_tokens <= 0:
        return DEFAULT_CHUNK_TOKENS
    return max(8, min(DEFAULT_CHUNK_TOKENS, max_tokens))


@dataclass(frozen=True)
class Changes:
    """What a build should do to the live index.

    ``items`` are added or refreshed (a path or a Document; unchanged content is kept as is).
    Documents under ``roots`` that are not among ``items`` are removed, as are ``remove``.
    ``rebuild`` re-chunks and re-embeds every document kept, under the build's settings.
    ``globs``, ``excludes`` and ``follow_symlinks`` are remembered with ``roots`` so the
    index can be refreshed. ``compact`` merges every segment into one.

    Progressive indexing: ``upgrade`` (``{"model", "precision"}``) records, on a new index
    built with the static model, the model phase 2 will re-embed with. ``reembed`` is phase
    2: every chunk is embedded again from its stored text under the build's model (the
    chunks, their ids and terms stay exactly as they are), into one segment published at
    once, so no query ever mixes the vectors of two models.
    """

    items: Sequence[Item] = ()
    roots: Sequence[Path] = ()
    remove: frozenset[str] = frozenset()
    rebuild: bool = False
    globs: Sequence[str] = ()
    excludes: Sequence[str] = ()
    follow_symlinks: bool = False
    #: Merge every segment into one (dropping tombstoned rows), whatever the policy says.
    compact: bool = False
    upgrade: Mapping[str, str] | None = None
    reembed: bool = False


@dataclass(frozen=True)
class BuildStats:
    """What a build did. ``documents`` = ``added + updated + unchanged + kept`` where
    ``kept`` counts documents outside this build's roots that stayed as they were."""

    documents: int
    chunks: int
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: int
    embedded_chunks: int
    cache_hits: int
    seconds: float
    backend: str
    changed: bool
    skipped_sources: tuple[str, ...] = ()

    @property
    def kept(self) -> int:
        return max(self.documents - self.added - self.updated - self.unchanged, 0)

    @property
    def cache_hit_rate(self) -> float:
        total = self.embedded_chunks + self.cache_hits
        return self.cache_hits / total if total else 0.0


def check_chunk_tokens(settings: Settings, limit: int | None, old: Manifest | None) -> None:
    """A chunk longer than the model's input would be cut off unread: refuse new settings
    that ask for it (an index already built that way can still be updated). ``limit``:
    the model's input in tokens (None: unbounded)."""
    if limit is None or settings.chunk_tokens <= limit:
        return
    if old is not None and old.chunk_tokens == settings.chunk_tokens:
        return
    raise UsageError(
        f"chunks of {settings.chunk_tokens} tokens are more than the model reads "
        f"({limit} tokens); the rest of each chunk would be ignored. Use at most {limit}"
    )


def check_same_chunking(settings: Settings, old: Manifest | None) -> None:
    """Re-embedding keeps the chunks as they are, so it needs the chunking they were made by."""
    if old is None:
        raise UsageError("there is no index to re-embed")
    if (old.chunk_tokens, old.overlap) != settings.chunking:
        raise UsageError(
            f"re-embedding keeps the chunks, made with {old.chunk_tokens} tokens and overlap "
            f"{old.overlap}; it cannot change them to {settings.chunk_tokens} and "
            f"{settings.overlap}"
        )
