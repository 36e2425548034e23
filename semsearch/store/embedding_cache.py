"""Embedding cache: re-indexing unchanged chunks should not pay for the model again.

Vectors live in one SQLite file, keyed by (model identity, precision, sha256 of the chunk text),
stored as raw little-endian float32 bytes (never pickle). WAL mode plus a busy timeout let
several processes index at once; a lost race only means the same vector is written twice.

The cache is an optimisation, never a source of truth: a row that is not a finite unit vector
of the right width is a miss, and a cache that cannot be opened, read or written (garbage,
truncated, foreign schema, read-only, a file where a folder should be) is switched off for the
rest of the process with one warning, while the build goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    from ..embed import Embedder

log = logging.getLogger("semsearch")
#: How far from 1 a cached vector's norm may be before it is treated as damaged.
_NORM_TOLERANCE = 1e-3

#: SQLite caps bound parameters per statement (999 on old builds); stay well below it.
_BATCH = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    precision TEXT NOT NULL,
    key BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, precision, key)
) WITHOUT ROWID
"""


def text_key(text: str) -> bytes:
    """The cache key of a chunk: sha256 of its UTF-8 text (surrogates kept, never an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Vectors already computed, per model and precision, so unchanged chunks skip the model.

    Opened on first use, usable from any thread (one connection behind a lock).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.disabled = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self.disabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA busy_timeout = 30000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(_SCHEMA)
                conn.execute("SELECT model, precision, key, dim, vector FROM embeddings LIMIT 0")
                self._conn = conn
                # Closed at exit too, also when the CLI ends without tearing the
                # interpreter down (its atexit handlers still run): the write-ahead log is
                # folded into the file and removed, not left beside it.
                weakref.finalize(self, conn.close)
            except (OSError, sqlite3.Error) as exc:
                self._disable(exc)
        return self._conn

    def _disable(self, exc: BaseException) -> None:
        if not self.disabled:
            log.warning("embedding cache %s is unusable (%s); going on without it", self.path, exc)
        self.disabled = True
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(
        self, model: str, precision: str, texts: Sequence[str], dim: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(vectors, hit_mask)``; rows of misses are zeros.

        Pass ``dim`` (the embedder's) to get that width even with no hit, and to treat rows
        of another width as misses; otherwise the width is the stored rows' (0 with no hit).
        Only finite unit vectors count as hits.
        """
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            conn = self._connect()
            unique = list(dict.fromkeys(keys)) if conn is not None else []
            try:
                for start in range(0, len(unique), _BATCH):
                    part = unique[start : start + _BATCH]
                    marks = ",".join("?" * len(part))
                    rows = conn.execute(  # type: ignore[union-attr]
                        f"SELECT key, dim, vector FROM embeddings "
                        f"WHERE model = ? AND precision = ? AND key IN ({marks})",
                        (model, precision, *part),
                    ).fetchall()
                    for key, width, blob in rows:
                        vec = _valid_vector(blob, width)
                        if vec is not None:
                            found[bytes(key)] = vec
            except (sqlite3.Error, TypeError, ValueError) as exc:
                self._disable(exc)
                found = {}
        if dim is None:
            dim = max((v.shape[0] for v in found.values()), default=0)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        hits = np.zeros(len(texts), dtype=bool)
        for i, key in enumerate(keys):
            got = found.get(key)
            if got is not None and got.shape[0] == dim:
                vectors[i] = got
                hits[i] = True
        return vectors, hits

    def store(self, model: str, precision: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors[i]`` as the embedding of ``texts[i]``; existing rows are replaced.
        A write that fails switches the cache off; it never fails the caller."""
        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        if vecs.ndim != 2 or vecs.shape[0] != len(texts):
            raise UsageError(f"need one vector row per text, got {vecs.shape} for {len(texts)}")
        dim = int(vecs.shape[1])
        rows = [
            (model, precision, text_key(t), dim, vecs[i].tobytes()) for i, t in enumerate(texts)
        ]
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                for start in range(0, len(rows), _BATCH):
                    # One short transaction per batch: other writers wait milliseconds.
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        conn.executemany(
                            "INSERT OR REPLACE INTO embeddings"
                            " (model, precision, key, dim, vector) VALUES (?, ?, ?, ?, ?)",
                            rows[start : start + _BATCH],
                        )
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._disable(exc)


def _valid_vector(blob: object, width: object) -> np.ndarray | None:
    """The stored row as a vector, or None when it is not a finite unit vector of its width."""
    if not isinstance(blob, bytes) or not isinstance(width, int) or width <= 0:
        return None
    if len(blob) != 4 * width:
        return None
    vec = np.frombuffer(blob, dtype="<f4")
    if not np.all(np.isfinite(vec)):
        return None
    if abs(float(np.dot(vec, vec)) - 1.0) > 2 * _NORM_TOLERANCE:
        return None
    return vec


def encode_cached(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None
) -> tuple[np.ndarray, int]:
    """Embed ``texts`` as documents, running the model only on cache misses.

    Returns ``(vectors, n_hits)``; new vectors are stored before returning.
    """
    texts = list(texts)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if not texts:
        return out, 0
    if cache is None:
        return np.asarray(embedder.encode(texts, kind="document"), dtype=np.float32), 0
    cached, hits = cache.lookup(embedder.name, embedder.cache_tag, texts, dim=embedder.dim)
    out[hits] = cached[hits]
    miss_idx = np.flatnonzero(~hits)
    if miss_idx.size:
        # Encode each distinct missing text once, then fan it back out.
        unique: dict[str, int] = {}
        for i in miss_idx:
            unique.setdefault(texts[i], len(unique))
        new_texts = list(unique)
        fresh = np.asarray(embedder.encode(new_texts, kind="document"), dtype=np.float32)
        out[miss_idx] = fresh[[unique[texts[i]] for i in miss_idx]]
        cache.store(embedder.name, embedder.cache_tag, new_texts, fresh)
    return out, int(hits.sum())
