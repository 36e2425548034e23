"""Lanes: a batch spread over one-thread sessions gives the same vectors as one session."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.embed import onnx_runtime, resolve_model
from semsearch.embed.onnx_export import ensure_onnx
from semsearch.embed.onnx_lanes import Lanes, split_by_cost
from semsearch.embed.onnx_runtime import OnnxEmbedder

from .test_determinism import _texts


@pytest.mark.parametrize("lanes", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 31])
def test_split_by_cost_takes_every_index_once_and_balances(lanes: int, n: int) -> None:
    rng = np.random.default_rng(n * 10 + lanes)
    costs = [int(c) for c in rng.integers(1, 300, size=n)]
    costs[: n // 3] = [costs[0]] * (n // 3) if n else []  # ties
    groups = split_by_cost(costs, lanes)
    assert len(groups) == lanes
    assert sorted(itertools.chain(*groups)) == list(range(n))
    assert all(g == sorted(g) for g in groups)
    loads = [sum(costs[i] for i in g) for g in groups]
    # Longest-first to the lightest group: no group exceeds another by more than one text.
    assert max(loads, default=0) - min(loads, default=0) <= max(costs, default=0)
    # Brute force on small inputs: never worse than 4/3 of the best split (LPT's bound).
    if n <= 7 and lanes <= 3:
        best = min(
            max(sum(c for c, g in zip(costs, labels, strict=True) if g == k) for k in range(lanes))
            for labels in itertools.product(range(lanes), repeat=n)
        )
        assert max(loads, default=0) <= best * 4 / 3 + 1e-9


def test_a_lane_error_reaches_the_caller_after_every_lane_stopped() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    lanes = Lanes(make, 3)
    ran: list[int] = []
    lock = threading.Lock()

    def run_one(session: Any, i: int) -> None:
        if i == 4:
            raise ValueError("text 4")
        with lock:
            ran.append(i)

    with pytest.raises(ValueError, match="text 4"):
        lanes.run([10] * 9, run_one)
    assert len(made) == 3
    lanes.run([1, 1], lambda s, i: None)
    assert len(made) == 3  # sessions are made once


@pytest.fixture(scope="module")
def model_dirs() -> dict[str, Path]:
    identity, location = resolve_model(None)
    cache = Path(os.environ["SEMSEARCH_MODEL_CACHE"])
    return {p: ensure_onnx(identity, location, p, cache) for p in ("int8", "fp32")}


@pytest.mark.slow
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_lanes_give_the_vectors_of_one_session(
    model_dirs: dict[str, Path], precision: str, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _texts()
    emb = OnnxEmbedder(model_dir=model_dirs[precision], threads=threads)
    alone = np.vstack([emb.encode([t]) for t in texts])  # one text: the shared session
    monkeypatch.setattr(onnx_runtime, "LANE_TOKENS", 1)
    assert emb._lanes is not None and emb._lanes.count == threads
    np.testing.assert_array_equal(emb.encode(texts), alone)
    np.testing.assert_array_equal(emb.encode(texts[::-1]), alone[::-1])
    assert emb._lanes._sessions is not None and len(emb._lanes._sessions) == threads


def test_small_batches_and_one_thread_stay_on_the_shared_session(
    model_dirs: dict[str, Path],
) -> None:
    assert OnnxEmbedder(model_dir=model_dirs["int8"], threads=1)._lanes is None
    emb = OnnxEmbedder(model_dir=model_dirs["int8"], threads=2)
    emb.encode(["a short text", "another one"])  # far under LANE_TOKENS: no lane sessions
    assert emb._lanes is not None and emb._lanes._sessions is None


def _runs_by_session(emb: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records, for each model run of ``emb``, which session ran it ("main" or "solo")."""
    ran: list[str] = []
    main = emb._session
    real_run = type(main).run

    def run(session: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append("main" if session is main else "solo")
        return real_run(session, *args, **kwargs)

    monkeypatch.setattr(type(main), "run", run)
    return ran


def _wait_for_solo(emb: OnnxEmbedder) -> Any:
    assert emb._solo is not None and emb._solo._making is not None
    return emb._solo._making.result()


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_a_short_text_alone_runs_on_a_one_thread_session_from_the_second(
    model_dirs: dict[str, Path], precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [t for t in _texts() if len(t.split()) < 30][:6]
    shared = OnnxEmbedder(model_dir=model_dirs[precision], threads=2)
    shared._solo = None  # every text on the two-thread session
    want = np.vstack([shared.encode([t], kind="query") for t in texts])
    emb = OnnxEmbedder(model_dir=model_dirs[precision], threads=2)
    ran = _runs_by_session(emb, monkeypatch)
    first = emb.encode([texts[0]], kind="query")
    assert emb._solo is not None and emb._solo._making is None  # one query: no second session
    emb.encode([texts[1]], kind="query")
    solo = _wait_for_solo(emb)
    assert solo is not emb._session
    assert solo.get_session_options().intra_op_num_threads == 1
    assert ran == ["main", "main"]  # (the second ran while the session was being made)
    again = np.vstack([emb.encode([t], kind="query") for t in texts])
    assert ran[2:] == ["solo"] * len(texts)
    # The same bits as the shared two-thread session gives.
    np.testing.assert_array_equal(first, want[:1])
    np.testing.assert_array_equal(again, want)


def test_long_texts_and_batches_stay_on_the_shared_session(
    model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = OnnxEmbedder(model_dir=model_dirs["int8"], threads=2)
    ran = _runs_by_session(emb, monkeypatch)
    emb.encode(["one"])
    emb.encode(["two"])
    _wait_for_solo(emb)
    long = " ".join(["word"] * (onnx_runtime.QUERY_TOKENS + 1))
    assert emb.count_tokens([long])[0] + 2 > onnx_runtime.QUERY_TOKENS
    emb.encode([long])
    emb.encode(["a short text", "another one"])
    assert ran[2:] == ["main", "main", "main"]
    emb.encode(["three"])
    assert ran[-1] == "solo"


def test_a_failed_one_thread_session_leaves_the_shared_one_answering(
    model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = OnnxEmbedder(model_dir=model_dirs["int8"], threads=2)
    assert emb._solo is not None

    def broken() -> Any:
        raise OSError("no memory for a second session")

    monkeypatch.setattr(emb._solo, "_make", broken)
    want = [emb.encode([t]) for t in ("one", "two")]
    with pytest.raises(OSError):
        _wait_for_solo(emb)
    np.testing.assert_array_equal(emb.encode(["one"]), want[0])
    np.testing.assert_array_equal(emb.encode(["two"]), want[1])
    assert OnnxEmbedder(model_dir=model_dirs["int8"], threads=1)._solo is None
