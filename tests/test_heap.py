"""A searching process keeps its temporaries' pages (semsearch/search/heap.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from semsearch.search import heap

from .test_query_vectors import harbour_index

_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocations shaped like a hybrid query's (blocks of 0.2-1.5 MB, freed at its end), each
# round's minor page faults printed; with ``keep`` the thresholds are set first.
_ROUNDS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from semsearch.search import heap
    if sys.argv[1] == "keep":
        assert heap.keep_temporaries()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = []
    for round in range(40):
        before = faults()
        blocks = [np.ones((n, 384), np.float32) for n in (1024, 1024, 400, 1024, 600, 150)]
        blocks.append(np.concatenate(blocks[2:5]))
        del blocks
        out.append(faults() - before)
    print(" ".join(map(str, out)))
    """
)


@pytest.mark.skipif(not _GLIBC, reason="glibc's thresholds")
def test_kept_temporaries_fault_no_pages_after_the_first_round(tmp_path: Path) -> None:
    script = tmp_path / "rounds.py"
    script.write_text(_ROUNDS)
    env = {"PYTHONPATH": str(Path(heap.__file__).parents[2]), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, str(script), "keep"], env=env, capture_output=True, text=True, check=True
    )
    rounds = [int(x) for x in run.stdout.split()]
    assert len(rounds) == 40
    # The first round maps its pages; afterwards each block reuses the kept heap.
    assert sum(rounds[5:]) <= 5, rounds


def test_the_thresholds_are_set_once_at_the_second_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(heap, "keep_temporaries", lambda: calls.append(1) or True)
    monkeypatch.setattr(heap, "_searches", 0)
    index = harbour_index(tmp_path / "ix", 31, 3, (2, 6), backend="numpy")
    index.search("harbour gull", k=3, mode="hybrid")
    assert calls == []  # a one-query process never changes them
    index.search("keel", k=3, mode="dense")
    assert calls == [1]
    for mode in ("keyword", "hybrid", "dense"):
        index.search("tide", k=3, mode=mode)  # type: ignore[arg-type]
    assert calls == [1]


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_the_users_own_thresholds_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "131072")
    assert heap.keep_temporaries() is False


def test_nothing_is_set_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.keep_temporaries() is False
