"""The Ray Data actor of a distributed build: loads the model once, then reads, chunks and
embeds one shard per row, and hands it back as ``.npy`` bytes plus JSON lines (no pickle)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import Embedder
from ..ingest.document import Document, Section
from ..ingest.read import read_document
from ..store.embedding_cache import EmbeddingCache, encode_cached
from ..util import write_atomic
from .engine import chunk_rows
from .settings import ChunkParams


class ShardWorker:
    """A Ray Data actor: loads the model once, then reads, chunks and embeds a shard per row."""

    def __init__(
        self,
        make_embedder: Callable[[], Embedder],
        chunk_tokens: int,
        overlap: int,
        out_dir: str | None,
        threads: int | None,
        cache: str | None = None,
    ) -> None:
        _limit_threads(threads)
        self.embedder = make_embedder()
        _limit_threads(threads)
        self.embedder.encode(["warm up"])  # load now: a broken model fails the actor, not a shard
        self.params = ChunkParams(chunk_tokens, overlap)
        self.out_dir = Path(out_dir) if out_dir else None
        self.cache = EmbeddingCache(cache) if cache else None

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, list[Any]] = {"shard": [], "vectors": [], "rows": []}
        for shard, described in zip(batch["shard"], batch["items"], strict=True):
            vectors, rows = self.run_shard(json.loads(str(described)))
            if self.out_dir is not None:
                write_atomic(self.out_dir / f"{int(shard):08d}.npy", vectors)
                write_atomic(self.out_dir / f"{int(shard):08d}.jsonl", rows.encode())
                vectors, rows = b"", ""
            out["shard"].append(int(shard))
            out["vectors"].append(vectors)
            out["rows"].append(rows)
        return {
            "shard": np.asarray(out["shard"], dtype=np.int64),
            "vectors": np.asarray(out["vectors"], dtype=object),
            "rows": np.asarray(out["rows"], dtype=object),
        }

    def run_shard(self, described: list[dict[str, str]]) -> tuple[bytes, str]:
        """One shard: ``.npy`` bytes of every chunk's vector, and JSON lines: the model that
        made them, then one line per item."""
        e = self.embedder
        texts: list[str] = []
        lines: list[str] = []
        for d in described:
            doc = self.read(d)
            if not isinstance(doc, Document):
                lines.append(json.dumps({"skip": doc}))
                continue
            rows = chunk_rows(doc, self.embedder, self.params)
            texts.extend(r.text for r in rows)
            about = {"sha256": doc.sha256, "title": doc.title, "kind": doc.kind,
                     "stat": doc.stat, "meta": doc.meta}  # fmt: skip
            lines.append(json.dumps({"rows": [list(r[2:]) for r in rows], **about}))
        vectors, hits = encode_cached(e, texts, self.cache)
        head = json.dumps({"model": [e.name, e.precision, e.dim], "cache_hits": hits})
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        return buf.getvalue(), "\n".join([head, *lines])

    def read(self, described: Mapping[str, str]) -> Document | str:
        """The item's document, or why it is skipped: ``"missing"`` or ``"unreadable"``."""
        if "path" not in described:
            sections = tuple(Section(*s) for s in json.loads(described["sections"]))
            return Document(
                described["doc_id"], described["source"], described["text"], described["sha256"],
                sections=sections,
            )  # fmt: skip
        path = Path(described["path"])
        if not path.exists():
            return "missing"
        return read_document(path) or "unreadable"


def _limit_threads(threads: int | None) -> None:
    """Keep ONNX Runtime and torch to the CPUs Ray gave this actor, so actors on one node do
    not oversubscribe it (each would otherwise use one thread per core of the machine). Called
    before the model loads (ONNX sessions take their thread count when made) and after it
    (torch, imported only by a torch embedder, can be capped at any time)."""
    if threads is None:
        return
    from ..embed import onnx_runtime

    onnx_runtime.limit_threads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, threads))
