"""The fusion replays' own logic (benchmarks/ranking_*.py), on hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.ranking_adaptive import NORMS, W, _spread
from benchmarks.ranking_dump import feedback_of
from benchmarks.ranking_learned import FEATURES, fit, scores
from semsearch.search.feedback import Feedback


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("rm3_10_10_0.5", Feedback("rm3", 10, 10, 0.5)),
        ("bo1_3_10_0.7", Feedback("bo1", 3, 10, 0.7)),
        ("lucene", None),
        ("rm3_10_10", None),
    ],
)
def test_feedback_variant_names(variant: str, expected: Feedback | None) -> None:
    assert feedback_of(variant) == expected


def test_z_scores_by_hand() -> None:
    ref = np.array([4.0, 2.0, 0.0])  # mean 2, population sd sqrt(8/3)
    got = _spread(np.array([4.0, 2.0, 1.0]), ref, "z")
    sd = np.sqrt(8.0 / 3.0)
    assert got == pytest.approx([2.0 / sd, 0.0, -1.0 / sd])


def _collection(rng: np.random.Generator, n: int = 40) -> dict[str, np.ndarray]:
    """Queries whose best dense weight is 0.7 where feature 'log_terms' is high, else 0.2."""
    x = np.zeros((n, len(FEATURES)))
    high = rng.random(n) < 0.5
    x[:, FEATURES.index("log_terms")] = np.where(high, 1.0, -1.0)
    target = np.where(high, 0.7, 0.2)
    grid = np.zeros((len(NORMS), n, len(W)))
    grid[NORMS.index("bg")] = 1.0 - np.abs(W[None, :] - target[:, None])
    return {"feats": np.zeros((n, 4)), "x": x, "grid": grid, "code": np.zeros(n)}


def test_learned_model_finds_the_feature_that_predicts_the_weight() -> None:
    rng = np.random.default_rng(0)
    train = [_collection(rng), _collection(rng)]
    theta, mu, sd = fit(train)
    before = np.mean([scores(t, np.zeros_like(theta), mu, sd).mean() for t in train])
    after = np.mean([scores(t, theta, mu, sd).mean() for t in train])
    assert theta[FEATURES.index("log_terms")] > 0
    assert after > before + 0.1
    held = _collection(rng)
    assert scores(held, theta, mu, sd).mean() > scores(held, 0 * theta, mu, sd).mean()


def test_learned_model_stays_at_the_default_when_no_feature_helps() -> None:
    rng = np.random.default_rng(1)
    flat = _collection(rng)
    flat["grid"][NORMS.index("bg")] = 0.5  # every weight scores the same
    theta, _, _ = fit([flat])
    assert not theta.any()
