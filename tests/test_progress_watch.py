"""Progress on a non-terminal stderr, and watch batch lines that name the changed files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from semsearch.cli import output

from .test_watch import _wait_for


def test_non_tty_progress_prints_a_line_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    err = io.StringIO()  # not a terminal
    monkeypatch.setattr(output.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(output.sys, "stderr", err)
    with output.Bar("Indexing") as bar:
        bar.update(1, 40)  # the first line at once, then one every few seconds
        clock[0] += output.PROGRESS_EVERY + 0.1
        bar.update(10, 40)
        clock[0] += 1.0
        bar.update(11, 40)  # too soon again
        clock[0] += output.PROGRESS_EVERY
        bar.update(30, 40)
    lines = err.getvalue().splitlines()
    assert lines == [
        "Indexing: 1/40 files (2%), 0s",
        "Indexing: 10/40 files (25%), 5s",
        "Indexing: 30/40 files (75%), 11s",
    ]


@pytest.mark.parametrize("verbose", [False, True])
def test_watch_batch_lines_name_the_changed_files(tmp_path, fake, caplog, verbose) -> None:
    import logging

    from semsearch import index_paths
    from semsearch.watch import Watcher

    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "keep.txt").write_text("a file about rivers")
    index_paths([docs], idx, embedder=fake)
    reports: list = []
    with (
        caplog.at_level(logging.INFO, logger="semsearch"),
        Watcher(idx, embedder=fake, on_batch=reports.append, debounce=1.0, step=0.3, tick=0.2,
                verbose=verbose),
    ):  # fmt: skip
        for i in range(5):
            (docs / f"n{i}.txt").write_text(f"note {i} about planets")
        _wait_for(lambda: any(r.changed for r in reports), "a batch")
    batch = next(r for r in reports if r.changed)
    assert sorted(batch.files) == sorted(str(docs / f"n{i}.txt") for i in range(batch.added))
    line = next(r.getMessage() for r in caplog.records if " added, " in r.getMessage())
    if verbose or batch.added <= 3:
        assert all(f"n{i}.txt" in line for i in range(batch.added))
    else:
        assert line.endswith(f" +{batch.added - 3} more"), line
        assert "n0.txt, n1.txt, n2.txt" in line


def test_import_semsearch_is_lazy_and_keeps_its_names() -> None:
    import subprocess
    import sys

    code = (
        "import sys, semsearch\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
        "assert set(semsearch.__all__) <= set(dir(semsearch))\n"
        "assert semsearch.UsageError.__name__ == 'UsageError'\n"
        "assert 'numpy' not in sys.modules\n"
        "for name in semsearch.__all__: getattr(semsearch, name)\n"
        "assert 'numpy' in sys.modules\n"
        "assert not hasattr(semsearch, 'nope')\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": root},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
