"""Streaming, incremental builds: every change to an index is a new generation.

A generation keeps the old segments as they are and writes one segment of its own: the
new and changed documents (chunked and embedded by an engine, in fixed-size pieces), plus
the documents of any old segments the merge policy (:mod:`.merge`) folds in, copied in
bulk (rows, chunk ids, terms and vectors, never re-embedded). Deleted and replaced
documents of kept segments become tombstones. So a write costs what it changes, plus an
occasional merge; memory is bounded by the piece, not the corpus or one document.

What is derived is never trusted more than what it derives from: a segment whose faiss
index or vectors fail their checksum is rewritten (vectors re-embedded from the chunk
texts), vectors are fully verified before they are carried into a merge, and a damaged
chunk database stops the build with one line instead of silently starting over.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import IndexFormatError, IndexWriteError, UsageError
from ..index import VectorIndex, build_vector_index, resolve_backend, resolve_index_type
from ..ingest.document import Document
from ..store.chunkstore import ChunkStore
from ..store.layout import IndexDir
from ..store.manifest import (
    CHUNKS,
    FORMAT_VERSION,
    VECTORS,
    Manifest,
)
from ..store.npy import RowFile, VectorWriter, load_vectors, release
from ..store.records import SkippedFile, StoredDocument
from ..store.segments import (
    Segment,
)
from ..util import first_line
from .engine import Engine, Processed
from .manifests import new_manifest, remembered_sources
from .merge import choose_merges
from .plan import Plan, file_sha256, make_plan
from .previous import Previous
from .settings import (
    BuildStats,
    Changes,
    Item,
    Progress,
    Settings,
    check_chunk_tokens,
    check_same_chunking,
)

log = logging.getLogger("semsearch")

#: Rows copied (24 MB of 384-d vectors), or re-embedded, at a time.
COPY_BLOCK = 16_384
EMBED_BLOCK = 256
#: Most rows a phase-1 segment searches exactly under ``auto``: its vectors live only until
#: phase 2, so training and tuning an approximate index for them is wasted (13 s of CPU, a
#: fifth of phase 1, for 44,663 chunks); 100,000 static rows are ~100 MB.
PHASE1_FLAT_MAX_ROWS = 100_000


def build(
    index_dir: IndexDir,
    changes: Changes,
    engine: Engine,
    settings: Settings,
    *,
    progress: Progress | None = None,
    lock_timeout: float = 10.0,
) -> BuildStats:
    """Apply ``changes`` to the index at ``index_dir`` as one atomic new generation."""
    started = time.perf_counter()
    settings = replace(settings, backend=resolve_backend(settings.backend))
    resolve_index_type(settings.backend, settings.index_type)  # fail before any work
    with index_dir.lock(lock_timeout):
        index_dir.cleanup()
        old = Previous.open(
            index_dir, settings, changes.rebuild or changes.reembed, salvage=changes.compact
        )
        if changes.reembed:
            check_same_chunking(settings, old.manifest)
        check_chunk_tokens(settings, engine.max_tokens, old.manifest)
        gen = _Generation(index_dir, engine, settings, changes, old)
        try:
            stats = gen.run(progress)
        except (OSError, sqlite3.OperationalError, RuntimeError) as exc:
            # Disk full or unwritable, from SQLite, NumPy or faiss: the live generation is
            # untouched, so say so in one line rather than a traceback.
            if isinstance(exc, RuntimeError) and not _is_write_failure(exc):
                raise
            raise IndexWriteError(
                f"cannot write the new index generation in {index_dir.path}: "
                f"{_reason(exc)}; the index is unchanged"
            ) from None
        finally:
            gen.close()
            old.close()
    return replace(stats, seconds=time.perf_counter() - started)


def _is_write_failure(exc: RuntimeError) -> bool:
    """faiss reports a failed write (disk full) as a RuntimeError naming the write."""
    text = str(exc).lower()
    return any(w in text for w in ("no space", "fwrite", "write error", "error writing"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return first_line(exc)


class _Generation:
    """One build: owns the temporary generation until it is published or removed.

    The new generation keeps the old segments as they are (their deleted and replaced
    documents tombstoned) and writes one segment of its own: the documents added or
    changed, plus those of any old segments the merge policy rewrites."""

    def __init__(
        self,
        index_dir: IndexDir,
        engine: Engine,
        settings: Settings,
        changes: Changes,
        old: Previous,
    ) -> None:
        self.index_dir, self.engine, self.settings = index_dir, engine, settings
        self.changes, self.old = changes, old
        self.tmp: Path | None = None
        self.next_chunk_id = old.manifest.next_chunk_id if old.manifest else 0
        self.built: VectorIndex | None = None
        self.merged: set[str] = set()
        self.skipped: list[SkippedFile] = []
        #: Documents of kept segments hidden from now on (replaced, removed or carried).
        self.dead: set[str] = set()
        #: Phase 2 of a progressive build: every chunk re-embedded, progress in chunks.
        self.reembed = changes.reembed
        self.progress: Progress | None = None
        self.total_rows = 0

    def run(self, progress: Progress | None) -> BuildStats:
        plan = make_plan(self.changes, self.old.docs, self.old.skipped)
        if self.changes.rebuild:
            self._rebuild_kept(plan)
        segments = self.old.store.segments if self.old.store else ()
        sizes = [(s.ref.name, s.ref.rows, self._live_rows(s.ref.name)) for s in segments]
        compact = self.changes.compact and (len(sizes) > 1 or any(r > n for _, r, n in sizes))
        if self.reembed and not (self.old.manifest and self.old.manifest.upgrade):
            return self._stats(plan, changed=False)  # another process finished phase 2
        needed = plan.changed or compact or self.old.repair or self.reembed
        if self.old.manifest is not None and not needed:
            return self._stats(plan, changed=False)  # merges ride along with writes only
        self.merged = choose_merges(
            sizes,
            self.old.repair,
            incoming=self._expected_rows(len(plan.process)),
            everything=self.changes.rebuild or compact or self.reembed,
        )
        if self.reembed:
            self.progress, self.total_rows = progress, sum(n for _, _, n in sizes)
        self.tmp = self.index_dir.new_tmp()
        self.store = ChunkStore.create(self.tmp / CHUNKS)
        self.writer = VectorWriter(self.tmp / VECTORS, self.settings.dim)
        self.row = 0
        self._copy_kept(plan)
        total, done, current = len(plan.process), 0, None
        unreadable: list[str] = []
        for piece in self.engine.process(plan.process, self.settings.chunking):
            if piece is None:
                self._skipped(plan, plan.process[done], unreadable)
                done += 1
            else:
                self._write(piece, first=piece.doc.doc_id != current)
                current = piece.doc.doc_id
                done += 0 if piece.more else 1
            if progress and (piece is None or not piece.more):
                progress(done, total)
        plan.skipped_sources.extend(self.engine.counts.skipped)
        for doc_id, st in plan.restat.items():
            self.store.update_stat(doc_id, st)
        self._remember_skipped(plan, unreadable)
        self.store.commit()
        own_docs, own_chunks = self.store.count_documents(), self.store.count_chunks()
        kept_refs = []
        for seg in segments:
            if seg.ref.name in self.merged:
                continue
            gone = [self.old.docs[d] for d in self.dead if self.old.home(d) == seg.ref.name]
            docs, rows = self.old.live[seg.ref.name]
            live = (docs - len(gone), rows - sum(d.n_chunks for d in gone))
            kept_refs.append(seg.ref._replace(documents=live[0], chunks=live[1]))
        kept = [s for s in segments if s.ref.name not in self.merged]
        documents = own_docs + sum(r.documents for r in kept_refs)
        chunks = own_chunks + sum(r.chunks for r in kept_refs)
        if chunks == 0 and self.old.manifest is None:
            raise UsageError("no text to index: every file was empty, binary or unreadable")
        self.store.close()
        self.writer.close()
        if own_docs or not kept:
            self._write_vector_index()
        else:  # nothing of its own: the generation only hides documents
            for name in (CHUNKS, VECTORS):
                (self.tmp / name).unlink()
        tombstones = {
            s.ref.name: sorted(
                {*self.old.tombstones.get(s.ref.name, ())}
                | {d for d in self.dead if self.old.home(d) == s.ref.name}
            )
            for s in kept
        }
        self.index_dir.publish(
            self.tmp,
            self._manifest(documents, chunks),
            kept_refs,
            {k: v for k, v in tombstones.items() if v},
            (own_docs, own_chunks),
            self.skipped,
        )
        self.tmp = None
        return self._stats(plan, changed=True, documents=documents, chunks=chunks)

    def _live_rows(self, name: str) -> int:
        return self.old.live.get(name, (0, 0))[1]

    def _expected_rows(self, documents: int) -> int:
        """Rows ``documents`` new or changed documents should bring, at the index's mean
        chunks per document (chunking them is what tells, and merging is decided first)."""
        docs = sum(d for d, _ in self.old.live.values())
        rows = sum(r for _, r in self.old.live.values())
        return -(-documents * rows // docs) if docs else documents

    def close(self) -> None:
        if self.tmp is not None:  # failed or interrupted: the live generation is untouched
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- deciding ---------------------------------------------------------------------------

    def _rebuild_kept(self, plan: Plan) -> None:
        """Under new settings every kept document is chunked and embedded again: from its
        file when that still holds the indexed content, else from the stored chunks."""
        store = self.old.store
        if store is None:
            return
        queued = {str(i) if not isinstance(i, Document) else i.doc_id for i in plan.process}
        for doc_id, d in self.old.docs.items():
            if doc_id in plan.drop or doc_id in queued:
                continue
            plan.drop.add(doc_id)
            plan.updated += 1
            path = Path(d.source)
            if doc_id == d.source and path.is_file() and file_sha256(path) == d.sha256:
                plan.process.append(path)
                continue
            found = store.document(doc_id)
            meta = found[1] if found else None
            text = store.document_text(doc_id)
            stat = None if d.size is None else (d.size, d.mtime_ns or 0, d.inode or 0)
            plan.process.append(  # the file's stat kept: it still reads as changed or missing
                Document(doc_id, d.source, text, d.sha256, meta, d.title, d.kind, stat=stat)
            )
        plan.unchanged = 0  # everything kept was embedded again, so counted as updated

    # --- writing ----------------------------------------------------------------------------

    def _copy_kept(self, plan: Plan) -> None:
        """Rewrite the merged segments' documents not dropped into the new segment, and
        carry over documents of kept segments whose file stat moved (so it is recorded).
        Every other kept document stays where it is, untouched; dropped ones are hidden."""
        if self.old.store is None:
            return
        for seg in self.old.store.segments:
            if seg.ref.name in self.merged:
                self._carry(seg, plan.drop, None)
        self.dead |= {d for d in plan.drop if d in self.old.docs}
        restat = [d for d in plan.restat if self.old.home(d) not in self.merged]
        for seg in self.old.store.segments:
            mine = {d for d in restat if self.old.home(d) == seg.ref.name}
            if mine and seg.ref.name not in self.merged:
                self._carry(seg, (), mine)
                self.dead |= mine

    def _carry(self, seg: Segment, drop: Collection[str], only: Collection[str] | None) -> None:
        """Copy documents of an old segment into the new one: rows, chunk ids, terms and
        vectors kept (vectors that fail their checksum embedded again from the texts)."""
        self.old.check_chunks(seg)
        start = self.row
        rows = self.store.copy_documents_from(seg.store, drop, start, only)
        vectors = self.old.vectors(seg) if len(rows) and not self.reembed else None
        if vectors is not None:
            reader = RowFile.of(vectors)  # read, not mapped: the pages stay out of our RSS
            for at in range(0, len(rows), COPY_BLOCK):
                block = rows[at : at + COPY_BLOCK]
                got = reader.take(block) if reader is not None else vectors[block]
                self.writer.append(np.asarray(got, dtype=np.float32))
                release(vectors)
        else:
            for at in range(start, start + len(rows), EMBED_BLOCK):
                texts = self.store.chunk_texts(at, min(at + EMBED_BLOCK, start + len(rows)))
                self.writer.append(self.engine.encode(texts))
                if self.progress:
                    self.progress(at + len(texts), self.total_rows)
        self.row += len(rows)

    def _skipped(self, plan: Plan, item: Item, unreadable: list[str]) -> None:
        """Count an item the engine could not read: its old version kept if it had one,
        else it is neither added nor updated, and a file is remembered as skipped."""
        plan.skipped += 1
        doc_id = item.doc_id if isinstance(item, Document) else str(item)
        if self._keep_old(item):
            plan.updated, plan.unchanged = plan.updated - 1, plan.unchanged + 1
        elif doc_id in self.old.docs:
            plan.updated, plan.removed = plan.updated - 1, plan.removed + 1
        else:
            plan.added -= 1
            if not isinstance(item, Document) and doc_id in plan.stats:
                unreadable.append(doc_id)

    def _remember_skipped(self, plan: Plan, unreadable: list[str]) -> None:
        """Files skipped, kept with the generation (not a segment: they hold no rows)."""
        reasons = self.engine.counts.reasons
        self.skipped = [
            *plan.still_skipped.values(),
            *(SkippedFile(p, *plan.stats[p], reasons.get(p, "could not be read"))
              for p in unreadable),
        ]  # fmt: skip

    def _keep_old(self, item: Item) -> bool:
        """A changed file that cannot be read now (vanished, truncated, corrupt) keeps the
        version indexed before, with its chunk ids and vectors: nothing indexed is lost."""
        doc_id = item.doc_id if isinstance(item, Document) else str(item)
        home = self.old.home(doc_id)
        if self.old.store is None or home is None or self.changes.rebuild:
            return False
        seg = next(s for s in self.old.store.segments if s.ref.name == home)
        if home not in self.merged:
            self.dead.discard(doc_id)  # still live where it is
            return True
        if self.old.vectors(seg) is None:
            return False
        self._carry(seg, (), {doc_id})
        return True

    def _write(self, piece: Processed, *, first: bool) -> None:
        d = piece.doc
        if first:
            self._reuse = self._old_ids_by_text(d.doc_id)
            self._doc_chunks = 0
        rows = []
        for i, r in enumerate(piece.rows):
            chunk_id = self._reuse.pop(r.text, None)
            if chunk_id is None:
                chunk_id, self.next_chunk_id = self.next_chunk_id, self.next_chunk_id + 1
            rows.append(r._replace(row=self.row + i, chunk_id=chunk_id))
        self.row += len(rows)
        self._doc_chunks += len(rows)
        if first:
            size, mtime_ns, inode = d.stat if d.stat is not None else (None, None, None)
            doc = StoredDocument(
                d.doc_id, d.source, d.sha256, len(rows), d.title, d.kind, size, mtime_ns, inode
            )
            self.store.add_document(doc, rows, d.meta, piece.terms)
        else:
            self.store.add_chunks(d.doc_id, rows, piece.terms)
            self.store.set_chunk_count(d.doc_id, self._doc_chunks)
        self.writer.append(piece.vectors)

    def _old_ids_by_text(self, doc_id: str) -> dict[str, int]:
        """An updated document keeps the ids of chunks whose text did not change."""
        if self.old.store is None or doc_id not in self.old.docs:
            return {}
        out: dict[str, int] = {}
        for r in self.old.store.document_rows(doc_id):
            out.setdefault(r.text, r.chunk_id)
        return out

    def _write_vector_index(self) -> None:
        """Exact or approximate (tuned to recall@10 >= 0.95) index over the finished vectors."""
        if self.tmp is None:
            raise IndexFormatError("internal error: no generation to write into")
        s = self.settings
        vectors = load_vectors(self.tmp / VECTORS, s.dim)
        kind = s.index_type
        if kind == "auto" and self._upgrade() is not None and len(vectors) <= PHASE1_FLAT_MAX_ROWS:
            kind = "flat"  # the manifest still records "auto", which phase 2 builds with
        index = build_vector_index(s.backend, s.dim, vectors, kind)
        if index.file_name != VECTORS:  # the NumPy backend searches vectors.npy itself
            index.save(self.tmp / index.file_name)
        self.built = index

    def _manifest(self, documents: int, chunks: int) -> Manifest:
        roots, globs, excludes, follow = remembered_sources(self.old.manifest, self.changes)
        if self.built is None:  # only tombstones: the index is described as it was
            if self.old.manifest is None:
                raise IndexFormatError("internal error: no vector index built")
            return replace(
                self.old.manifest, format_version=FORMAT_VERSION, semsearch_version=__version__,
                documents=documents, chunks=chunks, next_chunk_id=self.next_chunk_id,
                created=time.time(), roots=roots, globs=globs, excludes=excludes,
                follow_symlinks=follow,
            )  # fmt: skip
        return new_manifest(
            self.settings, documents, chunks, self.next_chunk_id, self.built,
            roots=roots, globs=globs, excludes=excludes, follow_symlinks=follow,
            upgrade=self._upgrade(),
        )  # fmt: skip

    def _upgrade(self) -> dict[str, str] | None:
        """The pending phase 2, kept across phase-1 updates; gone once it is done (or the
        index is rebuilt under another model)."""
        old = self.old.manifest
        if self.reembed:
            return None
        if self.changes.upgrade is not None:
            return dict(self.changes.upgrade)
        if old is not None and old.upgrade and old.model == self.settings.model:
            return dict(old.upgrade)
        return None

    def _stats(
        self, plan: Plan, *, changed: bool, documents: int = -1, chunks: int = -1
    ) -> BuildStats:
        if documents < 0 and self.old.manifest is not None:
            documents, chunks = self.old.manifest.documents, self.old.manifest.chunks
        return BuildStats(
            documents=documents,
            chunks=chunks,
            added=plan.added,
            updated=plan.updated,
            removed=plan.removed,
            unchanged=plan.unchanged,
            skipped=plan.skipped,
            embedded_chunks=self.engine.counts.embedded,
            cache_hits=self.engine.counts.cache_hits,
            seconds=0.0,
            backend=self.settings.backend,
            changed=changed,
            skipped_sources=tuple(plan.skipped_sources),
        )
