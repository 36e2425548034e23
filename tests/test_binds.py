"""``in_blocks``: every value bound once, in order, in blocks SQLite accepts."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from semsearch.store.binds import IN_BLOCK, in_blocks


@pytest.mark.parametrize("n", [0, 1, IN_BLOCK - 1, IN_BLOCK, IN_BLOCK + 1, 2 * IN_BLOCK + 7])
def test_blocks_cover_the_values_in_order_and_bind_as_sql(n: int) -> None:
    values = np.arange(n, dtype=np.int64)[::-1] * 3
    blocks = list(in_blocks(values))
    assert [v for _, part in blocks for v in part] == [int(v) for v in values]
    assert all(0 < len(part) <= IN_BLOCK for _, part in blocks)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(int(v),) for v in values])
    found = [
        x for marks, part in blocks
        for (x,) in conn.execute(f"SELECT x FROM t WHERE x IN ({marks})", part)
    ]  # fmt: skip
    assert sorted(found) == sorted(int(v) for v in values)
