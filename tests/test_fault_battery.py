"""A quick run of the fault battery (``python -m tests.fault_battery`` runs the full one)."""

from __future__ import annotations

import pytest

from . import fault_battery


@pytest.mark.slow
def test_fault_battery_quick() -> None:
    tally = fault_battery.run(
        rounds=4,
        seconds=6.0,
        seed=5,
        kills=1,
        sizes=range(300, 900, 150),
        hostile_scale=0.05,
        watch_rounds=2,
    )
    assert tally.failures == []
    assert tally.kills == 4 + 2  # update/merge/remove/index, then two watch batches
    assert tally.checks > 150
