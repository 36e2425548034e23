"""Shared fixtures: a deterministic fake embedder for unit tests, the real model for behaviour."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from semsearch.embed import Embedder, Kind, normalize

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


class FakeEmbedder(Embedder):
    """Bag of hashed words: texts sharing words get similar vectors. Fast and deterministic."""

    name = "fake-bow"
    dim = 64

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: Sequence[str], *, kind: Kind = "document") -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
        return normalize(out)


def semsearch_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages logged by semsearch itself: other libraries' background threads (Ray's
    metrics poller, left over from an earlier test) may log into the same capture."""
    return [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "semsearch"]


@pytest.fixture(autouse=True)
def _fake_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake embedder stands in for a model semsearch knows, so refreshing an index it
    built may load it (an index's word alone loads only known models: D25)."""
    from semsearch.embed import models

    known = frozenset({*models.KNOWN_MODELS, FakeEmbedder.name})
    monkeypatch.setattr("semsearch.embed.models.KNOWN_MODELS", known)


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    from semsearch.embed import load_embedder

    return load_embedder()


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ONNX exports are shared by the whole session (exporting takes seconds), and set up
    before any session fixture loads a model, so the user's cache is never touched."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEMSEARCH_MODEL_CACHE", str(tmp_path_factory.mktemp("models")))
        mp.setenv("SEMSEARCH_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real index or caches; each test gets a fresh embedding cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SEMSEARCH_INDEX", str(home / "index"))
    monkeypatch.setenv("SEMSEARCH_CACHE", str(home / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def sigint_default() -> None:
    """For ``subprocess.Popen(preexec_fn=...)`` in tests that press Ctrl-C: a shell without
    job control starts background commands with SIGINT ignored, and a child inherits that, so
    the test restores the default before the child starts (as an interactive terminal has it).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
