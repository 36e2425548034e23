"""Making the static model: distilled once from the bundled transformer with model2vec.

model2vec embeds every token of the teacher's vocabulary with the teacher, reduces the
vectors with PCA and weights them by token frequency (SIF). That needs torch, transformers
and model2vec (the ``static`` extra) once; the result is cached beside the teacher's ONNX
export as a ``.npy`` table and the tokenizer JSON, read by :class:`.static.StaticEmbedder`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import MissingDependencyError, ModelError
from ..util import first_line, scratch_dir, write_atomic
from .onnx_export import ensure_cached, fingerprint, is_complete, model_cache_dir
from .static import FORMAT_VERSION, META_FILE, TOKENIZER_FILE, VECTORS_FILE

log = logging.getLogger("semsearch")

#: model2vec's defaults: 256 PCA dimensions, SIF weighting 1e-4.
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4


class Distilled(NamedTuple):
    """A static model in memory: one row per token id of ``tokenizer_json``."""

    vectors: np.ndarray
    tokenizer_json: str


def static_model_dir(identity: str, cache: Path) -> Path:
    """Where the static model distilled from ``identity`` lives (it may not exist yet)."""
    return model_cache_dir(identity, cache) / "static"


def ensure_static(identity: str, location: str, cache: Path, *, max_tokens: int) -> Path:
    """The cached static model distilled from the teacher at ``location``, made first if
    missing or stale (the teacher's files changed). Concurrent first runs distil once."""
    out = static_model_dir(identity, cache)
    stamp = fingerprint(location)

    def make() -> None:
        log.info("distilling the static model from %s (once, about a minute) …", identity)
        started = time.perf_counter()
        model = distil(location)
        seconds = time.perf_counter() - started
        write_static(
            out, model, teacher=identity, stamp=stamp, max_tokens=max_tokens, seconds=seconds
        )

    return ensure_cached(out, lambda: _is_current(out, identity, stamp), make, "static model")


def _is_current(out: Path, identity: str, stamp: str) -> bool:
    """Whether ``out`` holds a whole distillation of this teacher made with today's options
    (a cache distilled with other options is made again, never reused)."""
    expect = {"format": FORMAT_VERSION, "teacher": identity, "fingerprint": stamp, **_options()}
    return is_complete(out, META_FILE, expect, (VECTORS_FILE, TOKENIZER_FILE))


def _options() -> dict[str, object]:
    """The distillation options, as the meta records them."""
    return {"pca_dims": PCA_DIMS, "sif_coefficient": SIF_COEFFICIENT}


def distil(location: str) -> Distilled:
    """Run model2vec on the local teacher directory (no download: a local path is read as is)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        missing = (exc.name or "model2vec").split(".")[0]
        raise MissingDependencyError(missing, "static") from None
    for noisy in ("model2vec", "skeletoken", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        model = distill(location, pca_dims=PCA_DIMS, sif_coefficient=SIF_COEFFICIENT, device="cpu")
    except Exception as exc:  # any distiller failure becomes one line naming the teacher
        raise ModelError(
            f"cannot distil a static model from {location}: {first_line(exc)}"
        ) from None
    if model.weights is not None or model.token_mapping is not None:
        raise ModelError("model2vec returned a quantised vocabulary, which is not supported")
    vectors = np.asarray(model.embedding, dtype=np.float32)
    return Distilled(vectors, model.tokenizer.to_str())


def write_static(
    out: Path,
    model: Distilled,
    *,
    teacher: str,
    stamp: str,
    max_tokens: int,
    seconds: float = 0.0,
) -> None:
    """Store ``model`` in ``out``: the table, the tokenizer, then the meta that marks the
    directory complete. Each file is renamed into place, so a killed run leaves no half."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(model.tokenizer_json)
    vectors = np.ascontiguousarray(model.vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != tok.get_vocab_size():
        raise ModelError("the distilled vectors do not match the tokenizer")
    unk_token = getattr(tok.model, "unk_token", None)
    unk_id = tok.token_to_id(unk_token) if unk_token else None
    median = int(np.median([len(t) for t in tok.get_vocab()]))
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)  # the old files are no longer a whole
    with scratch_dir(out, "static-") as staged:
        np.save(staged / VECTORS_FILE, vectors, allow_pickle=False)
        (staged / TOKENIZER_FILE).write_text(model.tokenizer_json, encoding="utf-8")
        for name in (VECTORS_FILE, TOKENIZER_FILE):
            os.replace(staged / name, out / name)
    meta = {
        "format": FORMAT_VERSION,
        "teacher": teacher,
        "fingerprint": stamp,
        "digest": hashlib.sha256(vectors.tobytes()).hexdigest(),
        "dim": int(vectors.shape[1]),
        "max_tokens": int(max_tokens),
        "max_chars": int(max_tokens) * median,
        "unk_id": unk_id,
        **_options(),
        "distill_seconds": round(seconds, 1),
    }
    write_atomic(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
