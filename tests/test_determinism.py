"""A text's vector is the same, bit for bit, whatever it is embedded with.

Rebuilds, Ray workers, queries and document batches all embed one text in different company;
if its vector moved with the company, the same text would rank differently depending on how
it was indexed. Both precisions are checked: int8 quantises activations at run time, which
is where batch dependence used to come from.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from semsearch.embed import resolve_model
from semsearch.embed.onnx_export import ensure_onnx
from semsearch.embed.onnx_runtime import OnnxEmbedder

from .test_embed_onnx import QUERIES, _seed_paragraphs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dirs() -> dict[str, Path]:
    """The session's exports (conftest points SEMSEARCH_MODEL_CACHE at a temporary dir), int8
    with both weight widths: 7 bits (CPUs without VNNI) and 8 bits (VNNI CPUs)."""
    identity, location = resolve_model(None)
    cache = Path(os.environ["SEMSEARCH_MODEL_CACHE"])
    dirs = {
        f"int8-w{b}": ensure_onnx(identity, location, "int8", cache, weight_bits=b) for b in (7, 8)
    }
    return {**dirs, "fp32": ensure_onnx(identity, location, "fp32", cache)}


def _texts() -> list[str]:
    paragraphs = _seed_paragraphs()
    # Mixed lengths, an exact duplicate and texts that differ by one character, so a batch
    # holds both much longer and equally long company for each text.
    return [*paragraphs[:10], paragraphs[-1], paragraphs[0], paragraphs[0] + "!", *QUERIES]


@pytest.mark.parametrize("precision", ["int8-w7", "int8-w8", "fp32"])
def test_vector_does_not_depend_on_the_batch(model_dirs: dict[str, Path], precision: str) -> None:
    emb = OnnxEmbedder(model_dir=model_dirs[precision])
    texts = _texts()
    alone = np.vstack([emb.encode([t]) for t in texts])
    rng = random.Random(7)
    batches = [texts, texts[::-1]]
    for _ in range(3):  # random subsets in random order
        batches.append(rng.sample(texts, rng.randint(2, len(texts))))
    for batch in batches:
        got = emb.encode(batch)
        for row, text in zip(got, batch, strict=True):
            np.testing.assert_array_equal(row, alone[texts.index(text)])
    # The two identical texts agree, and a one-character change does move the vector.
    assert np.array_equal(alone[0], alone[11])
    assert not np.array_equal(alone[0], alone[12])
    # Queries go through the same path: a query alone equals the same query in a batch.
    q_alone = np.vstack([emb.encode([q], kind="query") for q in QUERIES])
    np.testing.assert_array_equal(emb.encode(QUERIES, kind="query"), q_alone)


@pytest.mark.parametrize("precision", ["int8-w7", "int8-w8", "fp32"])
def test_vector_does_not_depend_on_threads(model_dirs: dict[str, Path], precision: str) -> None:
    """Ray actors run with as many threads as they have CPUs; their vectors must still equal
    the local build's."""
    texts = _texts()
    one = OnnxEmbedder(model_dir=model_dirs[precision], threads=1).encode(texts)
    two = OnnxEmbedder(model_dir=model_dirs[precision], threads=2).encode(texts)
    np.testing.assert_array_equal(one, two)
