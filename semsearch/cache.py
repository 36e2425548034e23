"""Embedding cache: re-indexing unchanged chunks should not pay for the model again.

Vectors live in one SQLite file, keyed by (model identity, precision, sha256 of the chunk text),
stored as raw little-endian float32 bytes (never pickle). WAL mode plus a busy timeout let
several processes index at once; a lost race only means the same vector is written twice.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .embed import Embedder

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


def cache_dir() -> Path:
    """Root of semsearch's per-user caches: ``$SEMSEARCH_CACHE`` or ``~/.cache/semsearch``."""
    env = os.environ.get("SEMSEARCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semsearch"


def text_key(text: str) -> bytes:
    """The cache key of a chunk: sha256 of its UTF-8 text (surrogates kept, never an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Vectors already computed, per model and precision, so unchanged chunks skip the model."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

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
        """
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT key, dim, vector FROM embeddings "
                f"WHERE model = ? AND precision = ? AND key IN ({marks})",
                (model, precision, *part),
            ).fetchall()
            for key, width, blob in rows:
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.shape[0] == width:  # a truncated row is treated as a miss
                    found[bytes(key)] = vec
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
        """Remember ``vectors[i]`` as the embedding of ``texts[i]``; existing rows are replaced."""
        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        if vecs.ndim != 2 or vecs.shape[0] != len(texts):
            raise ValueError(f"need one vector row per text, got {vecs.shape} for {len(texts)}")
        dim = int(vecs.shape[1])
        rows = [
            (model, precision, text_key(t), dim, vecs[i].tobytes()) for i, t in enumerate(texts)
        ]
        for start in range(0, len(rows), _BATCH):
            # One short transaction per batch, so other writers wait milliseconds, not minutes.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, precision, key, dim, vector) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows[start : start + _BATCH],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


def encode_cached(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache
) -> tuple[np.ndarray, int]:
    """Embed ``texts`` as documents, running the model only on cache misses.

    Returns ``(vectors, n_hits)``; new vectors are stored before returning.
    """
    texts = list(texts)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if not texts:
        return out, 0
    cached, hits = cache.lookup(embedder.name, embedder.precision, texts, dim=embedder.dim)
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
        cache.store(embedder.name, embedder.precision, new_texts, fresh)
    return out, int(hits.sum())
