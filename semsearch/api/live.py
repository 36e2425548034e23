"""Following the live generation: what one index handle searches (its open view) and the
writer (settings, embedder, engine) that view was opened with, swapped together, here only,
when a write publishes or another process does, under the same model or another one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import indexing as _build
from ..embed import Embedder
from ..errors import IndexFormatError, UsageError
from ..indexing import writer as _writer
from ..indexing.settings import Requested, Settings
from ..store.embedding_cache import EmbeddingCache
from ..store.layout import IndexDir, Live
from .view import View, open_view

if TYPE_CHECKING:
    from ..watch.delta import Refresh

#: How a handle opens the live generation for searching: (index directory, embedder,
#: backend, the live generation when just read) to a view. The sharded index fans out.
Opener = Callable[[IndexDir, Embedder, str, Live | None], View]


class LiveHandle:
    """One index directory's live generation, followed.

    ``view`` is the generation searched (None before the first write); ``writer``,
    ``embedder`` and ``settings`` are what it was opened with. A handle given a model (an
    embedder, a model name or a precision) stays on it; one that was not follows the index
    to the model phase 2 of a progressive build publishes. Writes and reloads hold
    ``lock``, one at a time; searches read ``view`` without it (a swap replaces the whole
    view).
    """

    def __init__(
        self,
        index_dir: IndexDir,
        requested: Requested,
        *,
        embedder: Embedder | None = None,
        cache: EmbeddingCache | None = None,
        live: Live | None = None,
        opener: Opener = open_view,
    ) -> None:
        """Open ``index_dir`` (``live``: its live generation, when the caller just read it)."""
        self.dir = index_dir
        self.lock = threading.RLock()
        self.view: View | None = None
        if embedder is not None:  # a model given stands for its name and precision
            requested = replace(requested, model=embedder.name, precision=embedder.precision)
        self._requested, self._opener = requested, opener
        #: Named a model (or precision): then it never follows the index to another one.
        self._pinned = requested.model is not None or requested.precision is not None
        if live is None and index_dir.exists():
            live = index_dir.live()
        manifest = live.manifest if live is not None else None
        self._use(
            _writer.open_writer(
                index_dir.path, manifest, requested, embedder=embedder, cache=cache, rebuild=True
            )
        )
        if live is not None:
            self.reload(live)

    writer: _writer.Writer
    embedder: Embedder
    settings: Settings

    def _use(self, writer: _writer.Writer) -> None:
        """The one place the writer, and the embedder and settings read through it, change."""
        self.writer, self.embedder, self.settings = writer, writer.embedder, writer.settings

    @property
    def engine(self) -> _build.Engine:
        """The local engine, made on first write: reading never opens the embedding cache."""
        return self.writer.engine

    def require(self) -> View:
        """The view, or a clear error when nothing is indexed yet."""
        if self.view is None:
            raise UsageError("the index is empty")
        return self.view

    def apply(
        self, changes: _build.Changes, progress: _build.Progress | None = None
    ) -> _build.BuildStats:
        """Write ``changes`` as a new generation (under the index's model, should phase 2
        have been published meanwhile) and search it."""
        with self.lock:
            self.follow_model()
            stats = _build.build(self.dir, changes, self.engine, self.settings, progress=progress)
            if stats.changed or self.view is None:
                self.reload()
            return stats

    def refresh(self, *, budget: float | None = None) -> Refresh:
        """Apply what changed in the folders the index was built from, as one generation
        (see :meth:`semsearch.api.SemanticIndex.refresh`)."""
        from ..watch.delta import refresh

        with self.lock:
            result = refresh(self.dir, lambda _: self.engine, budget=budget, settings=self.settings)
            if result.stats.changed:
                self.reload()
            else:
                self.reload_if_changed()  # another writer may have got there first
            return result

    def reload_if_changed(self) -> bool:
        """Pick up a generation published by another process or thread; True if it did.
        Costs one read of the small live-generation pointer when nothing changed."""
        v = self.view
        try:
            pointer = self.dir.pointer()
        except IndexFormatError:
            return False
        if v is not None and pointer == v.pointer:
            return False
        self.reload()
        return True

    def reload(self, live: Live | None = None) -> None:
        """Open the live generation (``live``, when just read). A writer may publish (and
        later delete) generations while we open one; then we retry on the newer one, so a
        reader always gets a whole generation and never an error caused by the race. When
        opening fails the view searched so far stays."""
        with self.lock:
            try:
                self.view = self._open(live)
            except IndexFormatError:
                if not self.follow_model():
                    raise
                self.view = self._open(None)

    def _open(self, live: Live | None) -> View:
        return self._opener(self.dir, self.embedder, self.settings.backend, live)

    def follow_model(self) -> bool:
        """Progressive indexing publishes phase 2 under another model: a handle that named
        no model follows the index to it (each query is embedded by the model of the
        vectors it searches, see :class:`View`). False when that is not what happened."""
        if self._pinned:
            return False
        with self.lock:
            try:
                m = self.dir.live().manifest
            except IndexFormatError:
                return False
            if (m.model, m.precision) == (self.settings.model, self.settings.precision):
                return False
            unnamed = replace(self._requested, model=None, precision=None)
            self._use(_writer.open_writer(self.dir.path, m, unnamed, rebuild=True))
            return True
